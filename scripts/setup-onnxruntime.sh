#!/usr/bin/env bash
# Unpacks the CPU onnxruntime shared library from the npm package
# onnxruntime-node into a cache folder. Idempotent: does nothing when the
# library is already there with the pinned checksum.
set -euo pipefail

# Usage: setup-onnxruntime.sh VERSION [DEST]. The Makefile passes the version
# onnx/runner is built against (ORTVersion); the library's checksum is pinned
# per version and platform, and a library that does not match is never
# installed.
version=${1:?usage: setup-onnxruntime.sh VERSION [DEST]}
case "$(uname -s)/$(uname -m)" in
  Linux/x86_64) arch=x64 ;;
  Linux/aarch64) arch=arm64 ;;
  *) echo "setup-onnxruntime: no onnxruntime-node build for $(uname -s)/$(uname -m); set ONNXRUNTIME_LIB" >&2; exit 1 ;;
esac
case "$version/$arch" in
  1.24.1/x64) lib_sha256=53ef1ac028dd1b05554b8da28d9159eb3876f99868193d2aaa6e67f0243c23d4 ;;
  1.24.1/arm64) lib_sha256=7954e8bdedb497f830c6a679e818d98399b7f4d81ade1126c3e0be74d28111ab ;;
  *) echo "setup-onnxruntime: no pinned checksum for onnxruntime-node $version on linux/$arch; add it here" >&2; exit 1 ;;
esac
member=package/bin/napi-v6/linux/$arch/libonnxruntime.so.1
dest=${2:-.cache/onnxruntime-$version}
lib=$dest/libonnxruntime.so.1

if [ -f "$lib" ] && echo "$lib_sha256  $lib" | sha256sum -c --status; then
  exit 0
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "setup-onnxruntime: fetching onnxruntime-node@$version from npm" >&2
(cd "$tmp" && npm pack --silent "onnxruntime-node@$version" >/dev/null)
tar -xzf "$tmp/onnxruntime-node-$version.tgz" -C "$tmp" "$member"
echo "$lib_sha256  $tmp/$member" | sha256sum -c --status ||
  { echo "setup-onnxruntime: checksum mismatch for $member" >&2; exit 1; }
mkdir -p "$dest"
mv "$tmp/$member" "$lib.tmp"
mv "$lib.tmp" "$lib"
echo "setup-onnxruntime: $lib" >&2
