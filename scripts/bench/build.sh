#!/usr/bin/env bash
# make bench-build: `dapobench models build` of a ViT-L/14@336 DAPO model at
# 518 px from seeded random weights of the real sizes (an F32 safetensors
# file of 1.7 GB, written once), timed and its peak RSS measured, RUNS
# times; with BIN_BEFORE, an older binary in the same rounds. Prints the
# medians and the peak RSS as a multiple of the weights file's size.
#
#   make bench-build [RUNS=3] [BIN_BEFORE=/path/to/old/dapobench]
set -euo pipefail
bin=${BIN:-bin/dapobench}
before=${BIN_BEFORE:-}
runs=${RUNS:-3}
go=${GO:-go}
work=${BENCH_DIR:-.cache/bench-build}
mkdir -p "$work"
weights=$work/ViT-L-14-336.seeded.safetensors
if [ ! -f "$weights" ]; then
  echo "writing seeded ViT-L weights to $weights"
  DAPOBENCH_SEEDED_WEIGHTS=$PWD/$weights "$go" test -count=1 -run '^TestWriteSeededWeights$' ./clip/ >/dev/null
fi
size=$(stat -c %s "$weights")
log=$work/build.log
: >"$log"
echo "models build ViT-L-14-336 dapo@518 from $((size / 1000000)) MB of weights, $runs rounds, load average $(cut -d' ' -f1 /proc/loadavg), $(nproc) CPUs"
for r in $(seq "$runs"); do
  for b in ${before:+before} after; do
    exe=$bin; [ "$b" = before ] && exe=$before
    rm -rf "$work/model"
    /usr/bin/time -f "$b %e %M %U %S" -a -o "$log" "$exe" models build --weights "$weights" --arch ViT-L-14-336 \
      --variant dapo --image-size 518 --out "$work/model" >/dev/null 2>"$work/stderr.txt" || { cat "$work/stderr.txt"; exit 1; }
  done
done
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
col() { awk -v l="$1" -v c="$2" '$1 == l {print $c}' "$log" | median; }
printf '%-8s %9s %10s %9s %13s\n' "" "wall s" "CPU s" "RSS GB" "RSS/weights"
for b in ${before:+before} after; do
  rss=$(col "$b" 3)
  printf '%-8s %9.1f %10.1f %9.2f %13.2f\n' "$b" "$(col "$b" 2)" "$(awk -v l="$b" '$1 == l {print $4+$5}' "$log" | median)" \
    "$(echo "$rss" | awk '{print $1*1024/1e9}')" "$(echo "$rss $size" | awk '{print $1*1024/$2}')"
done
echo "(medians of $runs rounds)"
