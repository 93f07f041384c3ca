#!/usr/bin/env bash
# Splits and feature files of ../shared/data/devset for docs/results.md and the default model.
#   recipes/devset_features.sh [DEVSET_DIR] [WORK_DIR]
# Group split: 60/20/20 % of utterances, no utterance group (a real clip and its resynthesized
# copies) on two sides; a fifth validates (with a tenth, the 7 bona fide validation clips make
# early stopping a coin toss). Cross-family split: the same groups, with the held-out families removed
# from train and val, so they appear only in test.
set -euo pipefail
DEVSET=${1:-../shared/data/devset}
WORK=${2:-out/devset}
HOLD_OUT=(vits glowtts-hifigan diffwave squeezewave griffinlim clarinet)
FEATURES=(-f cqt -f stft -f wt -f stft-lf -f stft-mel -f stft-gam)

adfd split "$DEVSET/manifest.tsv" -o "$WORK/splits/group" --val 0.2 --test 0.2 --seed 0
adfd split "$DEVSET/manifest.tsv" -o "$WORK/splits/xfam" --val 0.2 --test 0.2 --seed 0 \
    $(printf -- '--hold-out %s ' "${HOLD_OUT[@]}")
for part in train val test; do
    adfd featurize "$WORK/splits/group/$part.tsv" -o "$WORK/group-$part.h5" "${FEATURES[@]}" --jobs 2
done
# The cross-family test set is the group test set; only train and val differ.
for part in train val; do
    adfd featurize "$WORK/splits/xfam/$part.tsv" -o "$WORK/xfam-$part.h5" "${FEATURES[@]}" --jobs 2
done
