#!/usr/bin/env bash
# The long GPU runs (hours): the ten-seed search tables and MODNAS at the paper's settings. The short
# figures (seconds per cell, tau on 300 cells, macro tau, retraining throughput) come from
# `bash tools/gpu_evidence.sh` in about eight minutes.
#   bash tools/gpu_benchmarks.sh            # writes benchmarks/results/*_gpu*.json
set -euo pipefail
cd "$(dirname "$0")/.."
python -c "import torch; assert torch.cuda.is_available(), 'no CUDA GPU visible'"
# 1. the paper's Table 1 with real MOTE scores and with mote-z (a shared store per estimator: each cell
#    scored once)
for est in mote mote-z; do
    python tools/search_table.py --estimator "$est" --device cuda --seeds 10 --tag "gpu_$est" \
        --work-dir "runs/nb201_table_gpu_$est"
done
# 2. the NAS-Bench-Macro table: MOTE-NAS k=5/10, EF, RS over 10 seeds under 40M/50M/60M MACs, MOTE and mote-z
for est in mote mote-z; do
    python tools/search_table.py --space macro --estimator "$est" --device cuda --seeds 10 \
        --methods "MOTE-NAS (k=5),MOTE-NAS (k=10),MOTE-NAS-EF,MOTE-NAS-RS (k=10)" \
        --tag "gpu_$est" --work-dir "runs/macro_table_gpu_$est"
done
# 2b. the same table from the committed component table's scores (the chosen rule, MACs, naswot), with the
#    rows whose evaluation stage trains the top-k on the proxy data (k = 5/10, RS): a lookup on a CPU is
#    only the EF rows (benchmarks/README.md, "NAS-Bench-Macro search table from the component table")
for rule in fused macs naswot; do
    flag=""; [ "$rule" != fused ] && flag="--rule $rule"
    python tools/component_table.py --space macro --records benchmarks/results/macro_components.jsonl --limit 0 \
        --scores-out "runs/macro_scores_$rule.csv" --scores-max-macs 60M $flag
    python tools/search_table.py --space macro --scores "runs/macro_scores_$rule.csv" --device cuda --seeds 10 \
        --methods "MOTE-NAS (k=5),MOTE-NAS (k=10),MOTE-NAS-RS (k=10)" --tag "lookup_${rule}_k_gpu" \
        --work-dir "runs/macro_table_lookup_${rule}_k"
done
# 3. MODNAS on NB201 at the paper's settings (3 seeds; resumable), then the hypervolume table against the
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
