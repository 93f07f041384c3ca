#!/usr/bin/env bash
# The bundled default model: three compact ensemble-paper CNNs (CQT, STFT&LF, STFT&Gam) trained on
# the group split of ../shared/data/devset, fused by the mean of their probabilities.
#   recipes/default_model.sh [DEVSET_DIR] [WORK_DIR]
# Reruns from scratch; uses the splits and feature files of recipes/devset_features.sh (made when
# missing). Copies the three model files into adfd_core/default_model/ and prints the group-wise
# and cross-family test metrics for the model card (cross-family: the same recipe with six
# families held out of training).
set -euo pipefail
DEVSET=${1:-../shared/data/devset}
WORK=${2:-out/devset}
OUT="$WORK/default"
PACKAGE=adfd_core/default_model
# A quarter of Table I's width, Dense 64: 0.29 M parameters, 1.2 MB per model file.
COMPACT=(--set channels=16,32,64 --set dense=64)
TRAIN=(--epochs 30 --patience 6 --batch-size 32 --lr 1e-3 --seed 0 --device auto)

[ -f "$WORK/xfam-val.h5" ] || recipes/devset_features.sh "$DEVSET" "$WORK"
mkdir -p "$OUT"
for split in group xfam; do
    for feature in cqt stft-lf stft-gam; do
        adfd train "$WORK/$split-train.h5" --val "$WORK/$split-val.h5" -m cnn.v1 -f "$feature" "${COMPACT[@]}" \
            "${TRAIN[@]}" -o "$OUT/$split-$feature-cnn.safetensors" --force
    done
    adfd score --features "$WORK/group-test.h5" -o "$OUT/$split-test.tsv" \
        -m "$OUT/$split-cqt-cnn.safetensors" -m "$OUT/$split-stft-lf-cnn.safetensors" -m "$OUT/$split-stft-gam-cnn.safetensors"
    echo "== $split split, test set (fused):"
    adfd evaluate "$OUT/$split-test.tsv" | tee "$OUT/$split-test.txt"
done
for feature in cqt stft-lf stft-gam; do
    cp "$OUT/group-$feature-cnn.safetensors" "$PACKAGE/$feature-cnn.safetensors"
done
