#!/usr/bin/env bash
# make bench-run: the pipeline against its own image tower, on seeded DAPO
# models of real sizes (ViT-B/16 at 224 px, ViT-L/14@336 at 518 px) over the
# MVTec-AD fixture, on the CPU. For each model and round it measures, in one
# run so that the machine's load hits every figure alike:
#
#   tower   dapobench models bench: the tower alone on N images, load
#           included (load_seconds + N / images_per_s)
#   first   dapobench run --scheme dapo, feature and text caches empty:
#           wall time and peak RSS
#   second  dapobench run --variant dapo/e1 over the warm cache
#   warm    dapobench run --scheme dapo, text features and the model's
#           hashes cached, image features not (the pipeline's steady state)
#
# and prints the medians and the ratios: throughput = tower / run time
# (1.0 means the run is as fast as its tower alone), second / first.
# BIN_BEFORE, a dapobench binary built from an earlier commit, is measured
# in the same rounds (its first and second runs; it has no text cache).
#
#   make bench-run [RUNS=3] [MODELS="vitb vitl"] [CATEGORY=bottle] [BIN_BEFORE=/path/to/old/dapobench]
set -euo pipefail
bin=${BIN:-bin/dapobench}
before=${BIN_BEFORE:-}
runs=${RUNS:-3}
models=${MODELS:-vitb vitl}
work=${BENCH_DIR:-.cache/bench-run}
mkdir -p "$work"
cache=$work/cache
data=$work/data

[ -d "$data/mvtec" ] || "$bin" fixtures gen --out "$data" >/dev/null
sel=()
if [ -n "${CATEGORY:-}" ]; then sel=(--category "$CATEGORY"); fi
n=$(find "$data/mvtec/${CATEGORY:-}" -path '*/test/*' -name '*.png' | wc -l)

model_dir() {
  case $1 in
    vitb) echo "$work/vitb-dapo-224" ;;
    vitl) echo "$work/vitl-dapo-518" ;;
  esac
}
build_model() {
  local dir; dir=$(model_dir "$1")
  [ -f "$dir/model.json" ] && return
  case $1 in
    vitb) "$bin" models tiny --arch-config scripts/bench/ViT-B-16.json --variant dapo --out "$dir" >/dev/null ;;
    vitl) "$bin" models tiny --arch ViT-L-14-336 --variant dapo --image-size 518 --out "$dir" >/dev/null ;;
  esac
}

# timed LABEL BIN VARIANT OUT: runs BIN run --scheme dapo --variant VARIANT
# into OUT over the fixture, appends "LABEL seconds maxrss_kb" to $log.
timed() {
  local label=$1 exe=$2 variant=$3 out=$4
  /usr/bin/time -f "%e %M" -o "$work/time.txt" "$exe" run --dataset mvtec --root "$data/mvtec" "${sel[@]}" --model "$dir" \
    --scheme dapo --variant "$variant" --device cpu --cache "$cache" --out "$out" --quiet >/dev/null 2>"$work/stderr.txt" ||
    { cat "$work/stderr.txt"; exit 1; }
  echo "$label $(cat "$work/time.txt")" >>"$log"
}
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
col() { awk -v l="$1" -v c="$2" '$1 == l {print $c}' "$log" | median; }

echo "dapobench run against its image tower: $n images (${CATEGORY:-all categories}), $runs rounds, load average $(cut -d' ' -f1 /proc/loadavg), $(nproc) CPUs"
for m in $models; do
  build_model "$m"
  dir=$(model_dir "$m")
  log=$work/$m.log
  : >"$log"
  for r in $(seq "$runs"); do
    "$bin" models bench --model "$dir" --device cpu --images "$n" --json >"$work/tower.json"
    python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print("tower", j["load_seconds"] + j["images"]/j["images_per_s"], j["peak_rss_bytes"]//1024, j["images_per_s"], j["fraction_of_peak"])' "$work/tower.json" >>"$log"
    for b in ${before:+before} after; do
      exe=$bin; [ "$b" = before ] && exe=$before
      rm -rf "$cache" "$work/out"
      timed "$b-first" "$exe" dapo "$work/out/first"
      timed "$b-second" "$exe" dapo/e1 "$work/out/second"
      if [ "$b" = after ]; then
        find "$cache" -mindepth 1 -maxdepth 1 ! -name text ! -name models -exec rm -rf {} +
        timed "$b-warm" "$exe" dapo "$work/out/warm"
      fi
    done
  done
  tower=$(col tower 2)
  printf '\n%s (%s): tower alone %.1f s for %d images (%.3f images/s, %.0f%% of the CPU'"'"'s matrix-product peak), peak RSS %.2f GB\n' \
    "$m" "$dir" "$tower" "$n" "$(col tower 4)" "$(echo "$(col tower 5)" | awk '{print 100*$1}')" "$(echo "$(col tower 3)" | awk '{print $1*1024/1e9}')"
  printf '  %-8s %9s %9s %11s %12s %14s\n' "" "first s" "RSS GB" "second s" "second/first" "tower/first"
  for b in ${before:+before} after; do
    f=$(col "$b-first" 2); s=$(col "$b-second" 2); rss=$(col "$b-first" 3)
    printf '  %-8s %9.1f %9.2f %11.1f %12.3f %14.3f\n' "$b" "$f" "$(echo "$rss" | awk '{print $1*1024/1e9}')" "$s" \
      "$(echo "$s $f" | awk '{print $1/$2}')" "$(echo "$tower $f" | awk '{print $1/$2}')"
  done
  w=$(col after-warm 2)
  printf '  %-8s %9.1f %9.2f %11s %12s %14.3f   (text features cached: the steady state)\n' "warm" "$w" \
    "$(echo "$(col after-warm 3)" | awk '{print $1*1024/1e9}')" "" "" "$(echo "$tower $w" | awk '{print $1/$2}')"
done
echo "(medians of $runs rounds; tower/first is the end-to-end throughput as a share of the tower's own, load included)"
