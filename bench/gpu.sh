#!/usr/bin/env bash
# The GPU checks in one run, for a machine lent for a few minutes (about 5 min on an H100):
#   1. featurize throughput on CUDA (bench/featurize.py, the corpus used REPEAT times), and on the CPU beside it;
#   2. every front-end on CUDA against the same front-end on the CPU, on the same files;
#   3. each model family trained end to end on CUDA with bf16 (adfd train), then scored and evaluated:
#      cnn.v1 and resnet18.v1 on stft-lf, fdl.v1 on waveforms, wavespec.v1 (random XLS-R 300M weights);
#   4. the training and WaveSpec throughput benchmarks on CUDA.
#   bench/gpu.sh CORPUS OUT [DEVICE]     # CORPUS: a manifest (with groups) in the folder of its audio
# LOGS=DIR puts only the text results there. QUICK=1 bench/gpu.sh CORPUS OUT cpu: a dry run on a small machine (one epoch, two timed steps, no WaveSpec).
set -uo pipefail  # a failing step is reported and the rest still run: the machine is lent for minutes
CORPUS=$1
OUT=$2
DEVICE=${3:-cuda}
QUICK=${QUICK:-0}
LOGS=${LOGS:-$OUT}  # the text results; OUT also holds feature and model files
mkdir -p "$OUT" "$LOGS"
STEP_SECONDS=${STEP_SECONDS:-150}  # no one command may take more: a hang must not eat the whole lease
adfd() { timeout "$STEP_SECONDS" python -m adfd_cli "$@"; }
step() { echo "== $* ($(date +%T))" | tee -a "$LOGS/steps.log"; }
timed() {  # LABEL COMMAND...: run it, then say how long it took
    local label=$1 t0
    shift
    t0=$(date +%s%N)
    "$@"
    echo "$label $(( ($(date +%s%N) - t0) / 1000000 )) ms"
}
jobs=$(( $(nproc) > 8 ? 8 : $(nproc) ))
repeat=$([ "$QUICK" = 1 ] && echo 1 || echo 8)
epochs=$([ "$QUICK" = 1 ] && echo 1 || echo 3)
steps=$([ "$QUICK" = 1 ] && echo 2 || echo 30)

step "machine"
python -c "import torch; print('torch', torch.__version__, '| cuda', torch.cuda.is_available() and torch.cuda.get_device_name())"

step "1. featurize throughput"
audio_dir=$([ -d "$CORPUS" ] && echo "$CORPUS" || dirname "$CORPUS")
for feature in stft-lf cqt; do
    timeout "$STEP_SECONDS" python bench/featurize.py --corpus "$audio_dir" --repeat "$repeat" --feature "$feature" --device "$DEVICE" --jobs "$jobs" --skip-librosa
    timeout "$STEP_SECONDS" python bench/featurize.py --corpus "$audio_dir" --repeat "$repeat" --feature "$feature" --device cpu --jobs "$jobs" --skip-librosa
done 2>&1 | tee "$LOGS/featurize_throughput.txt"

step "2. front-ends on $DEVICE against the CPU"
FEATURES=(-f stft-lf -f stft-mel -f stft-gam -f cqt -f cqt-lf -f wt -f wt-mel -f logspec -f cqt2)
adfd featurize "$CORPUS" -o "$OUT/cpu.h5" "${FEATURES[@]}" --device cpu --jobs "$jobs" --force
adfd featurize "$CORPUS" -o "$OUT/dev.h5" "${FEATURES[@]}" --device "$DEVICE" --jobs "$jobs" --force
python - "$OUT/cpu.h5" "$OUT/dev.h5" <<'EOF' | tee "$LOGS/frontend_agreement.txt"
import sys
import numpy as np
from adfd_core.store import FeatureFile
with FeatureFile(sys.argv[1]) as cpu, FeatureFile(sys.argv[2]) as dev:
    for name in cpu.features:
        a, b = cpu.all_rows(name), dev.all_rows(name)
        scale = float(np.abs(a).max())
        print(f"{name:9} rows {len(a):5}  max |cpu - {sys.argv[2].split('/')[-1]}| = {float(np.abs(a - b).max()):.3g}"
              f"  (largest value {scale:.3g})")
EOF

step "3. training, scoring and evaluation on $DEVICE"
adfd split "$CORPUS" -o "$OUT/splits" --val 0.2 --test 0.25
for part in train val test; do
    adfd featurize "$OUT/splits/$part.tsv" -o "$OUT/$part.h5" -f stft-lf -f wave --jobs "$jobs" --force
done
TRAIN=(--val "$OUT/val.h5" --epochs "$epochs" --device "$DEVICE" --workers 4 --seed 0 --force)
run_model() {  # NAME MODEL [train options...]: train, score the test part, evaluate
    local name=$1 model=$2
    shift 2
    timed "$name: train" adfd train "$OUT/train.h5" -m "$model" -o "$OUT/$name.safetensors" "${TRAIN[@]}" "$@"
    timed "$name: score" adfd score --features "$OUT/test.h5" -m "$OUT/$name.safetensors" --device "$DEVICE" -o "$OUT/$name.tsv" --force
    adfd evaluate "$OUT/$name.tsv" --json | python -c "import json, sys; print('$name', {k: v for k, v in json.load(sys.stdin).items() if not isinstance(v, (dict, list))})"
}
{
    run_model cnn cnn.v1 -f stft-lf
    run_model resnet18 resnet18.v1 -f stft-lf
    run_model fdl fdl.v1 -f wave --batch-size 32 --lr 1e-4
    [ "$QUICK" = 1 ] || run_model wavespec wavespec.v1 -f wave --batch-size 8 --lr 1e-5 --set pretrained=none
} 2>&1 | tee "$LOGS/train_score.txt"

step "4. throughput benchmarks"
timeout "$STEP_SECONDS" python bench/train.py --device "$DEVICE" --steps "$steps" --case cnn.v1 --case resnet18.v1 --case convnext_tiny.v1 \
    --case "fdl.v1:synthesizers=a,b,c,d" 2>&1 | tee "$LOGS/train_throughput.txt"
[ "$QUICK" = 1 ] || timeout "$STEP_SECONDS" python bench/wavespec.py --device "$DEVICE" --steps "$((steps / 3 + 1))" 2>&1 | tee "$LOGS/wavespec_throughput.txt"
step "done"
