#!/usr/bin/env bash
# Every GPU figure of benchmarks/README.md in one command (needs a CUDA GPU and ../shared/data).
#   bash tools/gpu_benchmarks.sh            # writes benchmarks/results/*_gpu*.json
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU visible'"
# 1. MOTE at paper settings: seconds per cell, ours vs a plain DataLoader/fp32 loop, same cells
python tools/bench_estimator.py --device cuda --profile paper --n 20 --tag gpu_paper
# 2. Kendall tau on >= 300 random NB201 cells: MOTE and the paper's Figure-7 baselines
python tools/correlation.py --n 300 --device cuda --tag gpu \
    --estimators mote,tse,synflow,ntk,zico,early_stop_acc
# 3. the paper's Table 1 with real MOTE scores (shared store: each cell scored once)
python tools/search_table.py --estimator mote --device cuda --seeds 10 --tag gpu_mote \
    --work-dir runs/nb201_table_gpu
# 4. MODNAS on NB201 at the paper's settings (3 seeds; resumable), then the hypervolume table against the
#    true front on the 6 zero-shot devices: hypernetwork, untrained control, MOTE-Pareto evolution and
#    random search with MOTE scores (paper profile, scored on the GPU on demand), 24 cells each
for s in 0 1 2; do
    mote modnas --profile paper --device cuda --seed "$s" --resume --quiet \
        --latency-table ../shared/data/nb201/latency_ms.csv --benchmark ../shared/data/nb201/benchmark.csv \
        --proxy-data ../shared/data/proxy_cifar100_10/train --out "runs/modnas_paper_s$s"
done
python tools/nb201_pareto.py --accuracy-source live --estimator mote --profile paper --device cuda \
    --n 24 --seeds 0,1,2 --cache runs/nb201_pareto_live_mote_paper.jsonl --tag modnas_gpu \
    --hypernetwork runs/modnas_paper_s0/fronts.json,runs/modnas_paper_s1/fronts.json,runs/modnas_paper_s2/fronts.json
