#!/usr/bin/env bash
# The feature decomposition detector (fdl.v1) and its single-stream ablation on ../shared/data/devset:
# waveform feature files of the group and cross-family splits (recipes/devset_features.sh makes the
# splits), training on each, scoring the shared test set, evaluation. The paper's optimizer settings
# (Adam, lr 1e-4, weight decay 0.01, early stop after 3 epochs without a better validation AUC);
# batch 32 instead of 128 (453 training clips) and at most 8 epochs on a 2-core CPU.
#   recipes/devset_features.sh && recipes/devset_fdl.sh [WORK_DIR]
# Writes WORK_DIR/results/{group,xfam}-{fdl,fdl-single}.{safetensors,train.json,tsv,json}.
set -euo pipefail
WORK=${1:-out/devset}
OUT="$WORK/results"
mkdir -p "$OUT"
for part in group/train group/val group/test xfam/train xfam/val; do
    adfd featurize "$WORK/splits/$part.tsv" -o "$WORK/${part%/*}-${part#*/}-wave.h5" -f wave --jobs 2
done
TRAIN=(--epochs 8 --patience 3 --batch-size 32 --lr 1e-4 --weight-decay 0.01 --seed 0 --workers 2 --device auto)
SYSTEMS=(
    "fdl"
    "fdl-single --set streams=single"
)
for split in group xfam; do
    for system in "${SYSTEMS[@]}"; do
        read -r name extra <<<"$system"
        stem="$OUT/$split-$name"
        [ -f "$stem.json" ] && continue  # done in an earlier run
        # shellcheck disable=SC2086
        adfd train "$WORK/$split-train-wave.h5" --val "$WORK/$split-val-wave.h5" -m fdl.v1 "${TRAIN[@]}" $extra \
            -o "$stem.safetensors" --force
        adfd score --features "$WORK/group-test-wave.h5" -m "$stem.safetensors" -o "$stem.tsv" --force  # the model was just remade
        adfd evaluate "$stem.tsv" --json > "$stem.json"
    done
done
