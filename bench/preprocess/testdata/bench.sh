#!/usr/bin/env bash
# make bench-preprocess: images/s for decode + resize + normalise at 518, Go
# against Pillow on the same images in the same run, and their ratio.
# TAGS=turbojpeg decodes JPEGs with libjpeg-turbo (needs libturbojpeg0-dev).
#
# Wall-clock images/s depends on whatever else the machine runs; CPU time
# per image does not, so both are printed.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-/usr/bin/python3}
go=${GO:-go}
cpus=$(nproc)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

"$py" "$here/pil_bench.py" gen "$dir/img"
echo "images: $(ls "$dir/img" | wc -l) (6 RGB + 2 gray PNG 1024², 4 JPEG 1500×1000), target 518², load average $(cut -d' ' -f1 /proc/loadavg)"
# Rounds alternate Pillow and Go, so that both see the same load; each
# round's ratio compares neighbours in time, and the medians are printed.
rounds=${ROUNDS:-5}
(cd "$here/.." && "$go" test ${TAGS:+-tags "$TAGS"} -c -o "$dir/preprocess.test" .) >/dev/null
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
metric() { # metric $2 of the benchmark line for GOMAXPROCS=$1 in $3
  echo "$3" | awk -v want="$1" -v unit="$2" '$1 ~ /^BenchmarkFiles/ {
      n = split($1, p, "-"); c = (n > 1 ? p[n] : 1)
      for (i = 2; i <= NF; i++) if ($i == unit && c == want) print $(i-1) }'
}
: >"$dir/rounds"
for r in $(seq "$rounds"); do
  read -r pil pilcpu < <("$py" "$here/pil_bench.py" run "$dir/img")
  for c in 1 $cpus; do # one process per setting: its CPU time is its own
    gores=$(cd "$here/.." && "$dir/preprocess.test" -test.run '^$' -test.bench '^BenchmarkFiles$' -test.benchtime 20x -test.cpu "$c" -images "$dir/img")
    echo "$c $pil $pilcpu $(metric "$c" images/s "$gores") $(metric "$c" cpu-ms/image "$gores")" >>"$dir/rounds"
  done
done
col() { awk -v c="$1" -v k="$2" '$1 == c {print $k}' "$dir/rounds" | median; }
ratio() { awk -v c="$1" -v a="$2" -v b="$3" '$1 == c {print $a / $b}' "$dir/rounds" | median; }
printf '%-30s %7s  %9s  %s\n' "" "images/s" "CPU ms/img" "Go/Pillow (images/s, CPU)"
printf '%-30s %7.1f  %9.2f\n' "Pillow $("$py" -c 'import PIL; print(PIL.__version__)'), one process" "$(col 1 2)" "$(col 1 3)"
for c in 1 $cpus; do
  printf '%-30s %7.1f  %9.2f  %.2f× %.2f×\n' "Go, GOMAXPROCS=$c" "$(col "$c" 4)" "$(col "$c" 5)" "$(ratio "$c" 4 2)" "$(ratio "$c" 3 5)"
done
echo "(medians of $rounds rounds, each Pillow's median of 5 passes then Go's benchmark; ratios are per round, then"
echo " their median; CPU ratio = Pillow CPU ms / Go CPU ms, > 1 means Go does the work with less CPU)"
echo "per round (GOMAXPROCS, Pillow images/s, Pillow CPU ms, Go images/s, Go CPU ms):"
sed 's/^/  /' "$dir/rounds"
if [ "${TAGS:-}" = turbojpeg ]; then
  echo "JPEG decoder: libjpeg-turbo (build tag turbojpeg)"
else
  echo "JPEG decoder: Go image/jpeg (make bench-preprocess TAGS=turbojpeg for libjpeg-turbo)"
fi
