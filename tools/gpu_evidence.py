#!/usr/bin/env python
"""Every GPU figure from one short run: stages that each write their results as they finish.

    bash tools/gpu_evidence.sh --prepare         # here: fill the carried data folder, print the device call
    python3 tools/gpu_evidence.py --data .gpu_evidence_data --out-dir "$OUT"   # there: one H100/H200, < 8 min
    python3 tools/gpu_evidence.py --dry-run      # every stage on CPU at tiny settings (the rehearsal runs it)

a. speed    seconds per NB201 cell at paper settings on 16 fixed cells: each of our modes (eager or
            CUDA-graph step one candidate at a time, eager with W workers on the device; graph with several
            workers is refused, one capture per process) vs a plain DataLoader fp32 loop, same cells, same
            run; each mode under a time cap (the cells it finished are named). The best mode is the fastest
            one without a failed cell; stages b and d run in it.
b. nb201    Kendall tau at paper settings on up to 300 seeded cells of NB201's development split: mote, its
            two terms, tse and early_stop_acc (read off MOTE's run), four proxies, and the fused score
            (mote-z's default components, ranked as mote-z ranks them) against C10 / C100 / IN16
c. released rank agreement of our per-cell MOTE and terms with the released values on those cells
d. macro    tau of MOTE at paper settings on up to 200 NAS-Bench-Macro networks, beside FLOPs
e. retrain  images/s of the recipe step vs a plain loop, mobilenetv2_100 and mobilenetv3_large_100 at 224,
            and the projected GPU-hours of the 200-epoch recipe on 8 GPUs
f. search   what time remains (at most ``search_s``): `mote search --space mbv3 --flops 400M` at paper
            settings -> candidates per minute -> projected GPU-days of a full search (--dry-run: macro at 50M)

Every stage has a cap (``*_cap_s`` of ``mobile_mote.studies.gpu_evidence.SETTINGS``): it stops scoring when
the next chunk would not finish inside it (the last chunk's time is the guess), keeps what it measured and
says how many cells it reached. Writes ``<out>/gpu_evidence.json`` after every stage and
``<out>/gpu_evidence_nb201.jsonl`` (one record per cell and estimator) as cells finish. Data come from
``--data`` alone (the folder ``--prepare`` fills).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # this checkout's code, installed or not (the GPU machine has it uninstalled)
    sys.path.insert(0, str(REPO))
SHARED = REPO.parent / "shared" / "data"
CARRIED = REPO / ".gpu_evidence_data"  # filled by `bash tools/gpu_evidence.sh --prepare`, carried to the GPU

from mobile_mote.studies.gpu_evidence import STAGES, run  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dry-run", action="store_true", help="every stage on CPU at tiny settings")
    p.add_argument("--data", default=None, help="the data folder: proxy_cifar100_10/ and nb201/{benchmark,"
                   "official_mote_dev}.csv (default: .gpu_evidence_data in the repository if --prepare made it, "
                   "else ../shared/data)")
    p.add_argument("--out-dir", default=str(REPO / "benchmarks" / "results"))
    p.add_argument("--copy-to", default=os.environ.get("OUT"), help="a second folder for the results (default $OUT; "
                   "'' for none)")
    p.add_argument("--budget-s", type=float, default=None, help="no stage starts after this many seconds (default: "
                   "the settings' budget, 420 on the GPU)")
    p.add_argument("--stages", default=",".join(STAGES))
    p.add_argument("--require-all", action="store_true", help="exit 1 unless every asked stage is measured")
    return run(p.parse_args(argv), CARRIED if CARRIED.is_dir() else SHARED)


if __name__ == "__main__":
    raise SystemExit(main())
