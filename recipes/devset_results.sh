#!/usr/bin/env bash
# The ensemble paper's systems on ../shared/data/devset: train each on the group split and on the
# cross-family split (recipes/devset_features.sh makes both), score the shared test set, evaluate.
#   recipes/devset_features.sh && recipes/devset_results.sh [WORK_DIR]
# Writes WORK_DIR/results/{group,xfam}-SYSTEM.{safetensors,train.json,tsv,json}; then
#   python recipes/results_table.py WORK_DIR/results   prints the tables of docs/results.md.
set -euo pipefail
WORK=${1:-out/devset}
OUT="$WORK/results"
mkdir -p "$OUT"
TRAIN=(--epochs 15 --patience 4 --batch-size 32 --lr 1e-3 --seed 0 --device auto)
# system name, model, feature, extra options (later options win)
SYSTEMS=(
    "stft-cnn cnn.v1 stft"
    "cqt-cnn cnn.v1 cqt"
    "wt-cnn cnn.v1 wt"
    "stft-lf-cnn cnn.v1 stft-lf"
    "stft-mel-cnn cnn.v1 stft-mel"
    "stft-gam-cnn cnn.v1 stft-gam"
    "cqt-rnn rnn.v2 cqt"
    "cqt-crnn crnn.v2 cqt"
    "cqt-convnext convnext_tiny.v1 cqt --set input_size=none --epochs 5 --patience 2"  # 28 M parameters on 2 CPU cores
)
for split in group xfam; do
    for system in "${SYSTEMS[@]}"; do
        read -r name model feature extra <<<"$system"
        stem="$OUT/$split-$name"
        [ -f "$stem.json" ] && continue  # done in an earlier run
        # shellcheck disable=SC2086
        adfd train "$WORK/$split-train.h5" --val "$WORK/$split-val.h5" -m "$model" -f "$feature" \
            "${TRAIN[@]}" $extra -o "$stem.safetensors" --force
        adfd score --features "$WORK/group-test.h5" -m "$stem.safetensors" -o "$stem.tsv" --force  # the model was just remade
        adfd evaluate "$stem.tsv" --json > "$stem.json"
    done
    # The paper's best spectrogram ensemble (its Whisper-MLP member comes with the embedding issue).
    adfd fuse "$OUT/$split-cqt-cnn.tsv" "$OUT/$split-stft-lf-cnn.tsv" "$OUT/$split-stft-gam-cnn.tsv" \
        "$OUT/$split-cqt-convnext.tsv" -o "$OUT/$split-ensemble.tsv"
    adfd evaluate "$OUT/$split-ensemble.tsv" --json > "$OUT/$split-ensemble.json"
done
