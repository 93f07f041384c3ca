#!/usr/bin/env bash
# The ensemble paper's best system (Table III), end to end: CQT-CNN, STFT&LF-CNN, STFT&Gam-CNN,
# ConvNeXt-Tiny on STFT&LF (C7) and Whisper-MLP, fused by the mean of their probabilities (the paper's eq. 2).
#   recipes/paper_best.sh TRAIN VAL TEST OUT_DIR
# TRAIN, VAL and TEST: anything `adfd featurize` reads (folders, manifests, In-the-Wild); for
# ASVspoof protocols, featurize with --protocol yourself and start at the training step.
# Environment (tests/cli/test_paper_best.py makes everything tiny):
#   WHISPER        the Whisper network: a folder, or a repo id in the local Hugging Face cache
#                  (openai/whisper-base: the paper's 512-dimensional Whisper embeddings)
#   TRAIN_OPTS     options for every `adfd train` (--epochs 20 --patience 3: this recipe's choice; the paper
#                  gives no epochs, early stopping, batch size or learning rate, so adfd's defaults stand for them)
#   CNN_OPTS       options for the three CNNs
#   CONVNEXT_OPTS  options for ConvNeXt-Tiny (--pretrained imagenet: fine-tuned from ImageNet, as the paper's
#                  backbones are; the weights come from the torch hub cache)
# Writes OUT_DIR/{train,val,test}.h5, one .safetensors (and .train.json) per model,
# OUT_DIR/test-scores.tsv (the fused scores) and OUT_DIR/test-metrics.json.
set -euo pipefail
TRAIN_SET=$1 VAL_SET=$2 TEST_SET=$3 OUT=$4
WHISPER=${WHISPER:-openai/whisper-base}
read -r -a TRAIN_OPTS <<<"${TRAIN_OPTS:---epochs 20 --patience 3}"
read -r -a CNN_OPTS <<<"${CNN_OPTS:-}"
read -r -a CONVNEXT_OPTS <<<"${CONVNEXT_OPTS:---pretrained imagenet}"
mkdir -p "$OUT"

# 1. Features: three spectrogram front-ends and Whisper embeddings, one pass over each corpus.
FEATURES=(-f cqt -f stft-lf -f stft-gam -e "whisper=$WHISPER")
adfd featurize "$TRAIN_SET" -o "$OUT/train.h5" "${FEATURES[@]}"
adfd featurize "$VAL_SET" -o "$OUT/val.h5" "${FEATURES[@]}"
adfd featurize "$TEST_SET" -o "$OUT/test.h5" "${FEATURES[@]}"

# 2. The five models.
for feature in cqt stft-lf stft-gam; do
    adfd train "$OUT/train.h5" --val "$OUT/val.h5" -m cnn.v1 -f "$feature" "${TRAIN_OPTS[@]}" "${CNN_OPTS[@]}" \
        -o "$OUT/$feature-cnn.safetensors"
done
adfd train "$OUT/train.h5" --val "$OUT/val.h5" -m convnext_tiny.v1 -f stft-lf "${TRAIN_OPTS[@]}" "${CONVNEXT_OPTS[@]}" \
    -o "$OUT/stft-lf-convnext.safetensors"
adfd train "$OUT/train.h5" --val "$OUT/val.h5" -m mlp.v1 -f whisper "${TRAIN_OPTS[@]}" -o "$OUT/whisper-mlp.safetensors"

# 3. Score the test set with all five (mean fusion of their probabilities) and evaluate.
MODELS=()
for name in cqt-cnn stft-lf-cnn stft-gam-cnn stft-lf-convnext whisper-mlp; do MODELS+=(-m "$OUT/$name.safetensors"); done
adfd score --features "$OUT/test.h5" "${MODELS[@]}" -o "$OUT/test-scores.tsv"
adfd evaluate "$OUT/test-scores.tsv" --json > "$OUT/test-metrics.json"
# New recordings are scored from their audio the same way (Whisper embeddings computed on the fly):
#   adfd score suspect.wav "${MODELS[@]}"
