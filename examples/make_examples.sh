#!/usr/bin/env bash
# Rebuilds the example clips: speech synthesized by espeak-ng (so every clip here is machine-made),
# resampled to 16 kHz with sox, one copy re-encoded to MP3 by adfd's own decoder stack (PyAV).
#   examples/make_examples.sh      (needs espeak-ng and sox: apt-get install espeak-ng sox)
set -euo pipefail
cd "$(dirname "$0")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
espeak-ng -v en-us -s 150 -w "$tmp/a.wav" "The quick brown fox jumps over the lazy dog. Please call me back after six."
espeak-ng -v en-gb -s 135 -p 30 -w "$tmp/b.wav" "This recording was made by a speech synthesizer, not by a person."
sox "$tmp/a.wav" -r 16000 -b 16 espeak-en-us.wav
sox "$tmp/b.wav" -r 16000 -b 16 espeak-en-gb.flac
python - <<'PY'
import av
with av.open("espeak-en-gb.flac") as src, av.open("espeak-en-gb-32k.mp3", "w") as dst:
    out = dst.add_stream("libmp3lame", rate=16000, layout="mono")
    out.bit_rate = 32000
    for frame in src.decode(audio=0):
        frame.pts = None
        for packet in out.encode(frame):
            dst.mux(packet)
    for packet in out.encode(None):
        dst.mux(packet)
PY
ls -l espeak-*
