#!/usr/bin/env bash
# make bench-preprocess: images/s for decode + resize + normalise at 518, Go
# against Pillow on the same images in the same run, and their ratio.
# TAGS=turbojpeg decodes JPEGs with libjpeg-turbo (needs libturbojpeg0-dev).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
py=${PYTHON:-/usr/bin/python3}
go=${GO:-go}
cpus=$(nproc)
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT

"$py" "$here/pil_bench.py" gen "$dir"
echo "images: $(ls "$dir" | wc -l) in $dir (6 RGB + 2 gray PNG 1024², 4 JPEG 1500×1000)"
pil=$("$py" "$here/pil_bench.py" run "$dir")
gores=$(cd "$here/.." && "$go" test ${TAGS:+-tags "$TAGS"} -run '^$' -bench '^BenchmarkFiles$' -count 5 -cpu "1,$cpus" . -args -images "$dir")
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'; }
rate() { # images/s of the benchmark lines for GOMAXPROCS=$1
  echo "$gores" | awk -v want="$1" '$1 ~ /^BenchmarkFiles/ {
      n = split($1, p, "-"); c = (n > 1 ? p[n] : 1)
      for (i = 2; i <= NF; i++) if ($i == "images/s" && c == want) print $(i-1) }' | median
}
printf '%-34s %8.1f images/s (median of 5 passes)\n' "Pillow $("$py" -c 'import PIL; print(PIL.__version__)'), one process" "$pil"
for c in 1 $cpus; do
  r=$(rate "$c")
  printf '%-34s %8.1f images/s  ratio Go/Pillow %.2f\n' "Go, GOMAXPROCS=$c" "$r" "$(echo "$r $pil" | awk '{print $1/$2}')"
done
if [ "${TAGS:-}" = turbojpeg ]; then
  echo "JPEG decoder: libjpeg-turbo (build tag turbojpeg)"
else
  echo "JPEG decoder: Go image/jpeg (make bench-preprocess TAGS=turbojpeg for libjpeg-turbo)"
fi
