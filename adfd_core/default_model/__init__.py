"""The bundled default model: three compact CNNs whose files sit in this folder (see MODEL_CARD.md).

Made by recipes/default_model.sh; `adfd score` uses them when no -m is given.
"""
