"""Convert a CTranslate2 Whisper folder to a transformers folder and prove it by transcribing a known sentence.

    python recipes/whisper_from_wheels.py CT2_FOLDER OUT_FOLDER SPEECH.wav "the sentence spoken"

Exits 1 when a word of the sentence is missing from the transcript (case and punctuation ignored).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import torch

from adfd_core import audio
from adfd_core.frontends.ct2_whisper import convert


def words(text: str) -> list[str]:
    return re.findall(r"[a-z']+", text.lower())


def transcribe(folder: Path, wav: Path) -> str:
    """Greedy transcript of the first 30 s of ``wav`` by the transformers Whisper in ``folder``."""
    from transformers import WhisperForConditionalGeneration, WhisperProcessor

    processor = WhisperProcessor.from_pretrained(folder)
    model = WhisperForConditionalGeneration.from_pretrained(folder).eval()
    wave = audio.load(wav)
    features = processor(wave, sampling_rate=audio.TARGET_SR, return_tensors="pt").input_features
    extra = {"language": "en", "task": "transcribe"} if model.generation_config.is_multilingual else {}
    with torch.inference_mode():
        ids = model.generate(features, num_beams=1, **extra)
    return processor.batch_decode(ids, skip_special_tokens=True)[0].strip()


def main() -> int:
    ct2, out, wav, sentence = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
    convert(ct2, out)
    text = transcribe(out, wav)
    missing = [w for w in words(sentence) if w not in set(words(text))]
    print(f"{out}: {text!r}", file=sys.stderr)
    if missing:
        print(f"{out}: the transcript lacks {', '.join(missing)}", file=sys.stderr)
        return 1
    print(f"{out}: every word of the sentence transcribed", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
