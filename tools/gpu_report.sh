#!/usr/bin/env bash
# The real-GPU report, in one run on a machine with a GPU: tunes convshade's GEMM for the
# standard suite, then prints one table per case: median ms, GFLOP/s, % of the adapter's
# measured f32 peak (an FMA kernel), and, where PyTorch with CUDA is installed, the time ratio
# to PyTorch (TF32 off). Builds nothing when CONVSHADE_BIN names a binary or one is built.
#
#   tools/gpu_report.sh                      # the whole suite
#   FILTER='^(gemm_4096|conv_S4_fwd)$' PYTHON=/tmp/vt/bin/python tools/gpu_report.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${CONVSHADE_BIN:-target/release/convshade}
[ -x "$bin" ] || cargo build --release -p convshade-cli
out=${REPORT_DIR:-$(mktemp -d)}
mkdir -p "$out"
filter=${FILTER:-.}
py=${PYTHON:-python3}

"$bin" tune --filter "$filter"
compare=()
if "$py" -c 'import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)' 2>/dev/null; then
  "$py" tools/bench_torch.py --device cuda --filter "$filter" --json "$out/torch.json"
  compare=(--compare "$out/torch.json")
else
  echo "gpu_report: no PyTorch with CUDA ($py): no PyTorch column" >&2
fi
# the tilings tuned above, nothing timed inside the measured runs
CONVSHADE_TUNE=cached "$bin" bench --device gpu --peak --filter "$filter" \
  --json "$out/convshade.json" "${compare[@]}"
echo "reports: $out"
