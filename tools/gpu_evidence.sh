#!/usr/bin/env bash
# Every GPU figure from one short run (tools/gpu_evidence.py): ~8 minutes on one H100/H200 including
# warm-up, results in benchmarks/results/ and, when the device tool runs it, in $OUT as well.
#   bash tools/gpu_evidence.sh              # on the GPU machine
#   bash tools/gpu_evidence.sh --dry-run    # every stage on CPU at tiny settings (< 3 minutes)
set -euo pipefail
cd "$(dirname "$0")/.."
exec python tools/gpu_evidence.py "$@"
