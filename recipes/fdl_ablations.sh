#!/usr/bin/env bash
# Every ablation of the feature decomposition paper (fdl.v1) on one corpus: the full model and each
# ablation trained on TRAIN, early-stopped on VAL, scored on TEST; then the table with bootstrap
# confidence intervals (recipes/fdl_ablation_table.py). Each ablation changes only the settings its
# row names; the speed and codec input augmentation stays on in all of them.
#   recipes/fdl_ablations.sh TRAIN-wave.h5 VAL-wave.h5 TEST-wave.h5 OUT_DIR [adfd train options ...]
# Waveform feature files (adfd featurize -f wave). Options after OUT_DIR go to every `adfd train`
# (default: the paper's optimizer, --lr 1e-4 --weight-decay 0.01 --batch-size 128 --patience 3).
# ONLY="full no-blending" runs those rows only; a row whose OUT_DIR/NAME.json exists is skipped.
# Writes OUT_DIR/NAME.{safetensors,train.json,tsv,json} and OUT_DIR/table.md.
set -euo pipefail
if [ $# -lt 4 ]; then
    sed -n '2,10p' "$0" >&2
    exit 2
fi
TRAIN=$1 VAL=$2 TEST=$3 OUT=$4
shift 4
OPTIONS=("$@")
[ ${#OPTIONS[@]} -gt 0 ] || OPTIONS=(--lr 1e-4 --weight-decay 0.01 --batch-size 128 --patience 3)
# name | --set KEY=VALUE ... | where in the paper (the paper's row labels, as read from its tables)
GRID=(
    "full||the full model"
    "beta0-only|synth_weight=0 content_weight=0 contrastive_weight=0 adversarial_weight=0|Table X (a): beta_0 alone"
    "no-synth-loss|synth_weight=0|Table X: without beta_1 (L_s, L_con_s)"
    "no-content-loss|content_weight=0|Table X: without beta_2 (speed and compression)"
    "no-contrastive-loss|contrastive_weight=0|Table X: without beta_3 (L_con_cls)"
    "single-stream|streams=single|Table X: one block 4, no decomposition"
    "no-synth-stream|streams=content|Table X: content stream only"
    "no-content-stream|streams=synthesizer|Table X: synthesizer stream only"
    "no-adversarial|adversarial=false|Table XI: without L_adv"
    "no-blending|feature_blending=false|Table XI: without feature blending"
    "no-shuffle|feature_shuffle=false|Table XI: without feature shuffle"
    "no-feature-augmentation|feature_blending=false feature_shuffle=false|Table XI: neither blending nor shuffle"
    "no-con-s|synth_contrastive=false|Fig. 5: without L_con_s"
    "no-con-cls|cls_contrastive=false|Fig. 5: without L_con_cls"
    "no-pseudo-labels|content_task=none|Table XII: no pseudo-label losses"
    "f0-content-task|content_task=f0|Table XII: F0 prediction instead of speed and compression"
)
mkdir -p "$OUT"
for row in "${GRID[@]}"; do
    IFS='|' read -r name sets _ <<<"$row"
    if [ -n "${ONLY:-}" ] && [[ " $ONLY " != *" $name "* ]]; then continue; fi
    stem="$OUT/$name"
    [ -f "$stem.json" ] && continue  # done in an earlier run
    args=()
    for kv in $sets; do args+=(--set "$kv"); done
    adfd train "$TRAIN" --val "$VAL" -m fdl.v1 ${args[@]+"${args[@]}"} "${OPTIONS[@]}" -o "$stem.safetensors" --force
    adfd score --features "$TEST" -m "$stem.safetensors" -o "$stem.tsv"
    adfd evaluate "$stem.tsv" --json > "$stem.json"
done
printf '%s\n' "${GRID[@]}" | python "$(dirname "$0")/fdl_ablation_table.py" "$OUT" > "$OUT/table.md"
cat "$OUT/table.md"
