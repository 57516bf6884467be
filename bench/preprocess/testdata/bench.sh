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

"$py" "$here/pil_bench.py" gen "$dir"
echo "images: $(ls "$dir" | wc -l) (6 RGB + 2 gray PNG 1024², 4 JPEG 1500×1000), target 518², load average $(cut -d' ' -f1 /proc/loadavg)"
read -r pil pilcpu < <("$py" "$here/pil_bench.py" run "$dir")
gores=$(cd "$here/.." && "$go" test ${TAGS:+-tags "$TAGS"} -run '^$' -bench '^BenchmarkFiles$' -count 5 -cpu "1,$cpus" . -args -images "$dir")
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
metric() { # median of metric $2 over the benchmark lines for GOMAXPROCS=$1
  echo "$gores" | awk -v want="$1" -v unit="$2" '$1 ~ /^BenchmarkFiles/ {
      n = split($1, p, "-"); c = (n > 1 ? p[n] : 1)
      for (i = 2; i <= NF; i++) if ($i == unit && c == want) print $(i-1) }' | median
}
printf '%-30s %7s  %9s  %s\n' "" "images/s" "CPU ms/img" "Go/Pillow (images/s, CPU)"
printf '%-30s %7.1f  %9.2f\n' "Pillow $("$py" -c 'import PIL; print(PIL.__version__)'), one process" "$pil" "$pilcpu"
for c in 1 $cpus; do
  r=$(metric "$c" images/s)
  m=$(metric "$c" cpu-ms/image)
  printf '%-30s %7.1f  %9.2f  %.2f× %.2f×\n' "Go, GOMAXPROCS=$c" "$r" "$m" \
    "$(echo "$r $pil" | awk '{print $1/$2}')" "$(echo "$pilcpu $m" | awk '{print $1/$2}')"
done
echo "(medians of 5 passes; CPU ratio = Pillow CPU ms / Go CPU ms, > 1 means Go does the work with less CPU)"
if [ "${TAGS:-}" = turbojpeg ]; then
  echo "JPEG decoder: libjpeg-turbo (build tag turbojpeg)"
else
  echo "JPEG decoder: Go image/jpeg (make bench-preprocess TAGS=turbojpeg for libjpeg-turbo)"
fi
