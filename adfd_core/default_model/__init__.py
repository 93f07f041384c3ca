"""The bundled default model: whisper-probe.safetensors (Whisper-base's first encoder blocks and a
small head, self-contained) and calibration.json (its LLR calibration and operating point); see
MODEL_CARD.md.

Made by recipes/default_model.sh; `adfd score` uses them when no -m is given.
"""
