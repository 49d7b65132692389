#!/usr/bin/env python
"""One ranking rule for every space: the declared candidate rules (``mobile_mote.studies.rules``)
measured on development data (``--phase select``: writes the choice) or on the report data
(``--phase report``: every rule, the chosen one named, never used to choose).

NB201: a component table written by tools/fusion_study.py --table-out (released MOTE terms as
``released_landscape``/``released_speed``, read as ``landscape``/``speed``). NAS-Bench-Macro: the
component records of tools/component_table.py, split by ``macro_dev_keys.txt``.

    python tools/rule_study.py --phase select --nb201-table /tmp/nb201_dev_components.csv \\
        --out benchmarks/results/rule_selection.json
    python tools/rule_study.py --phase report --nb201-table benchmarks/results/fused_nb201_components.csv \\
        --exclude benchmarks/results/nb201_fusion_dev_selection_cells.txt --out benchmarks/results/rule_report.json
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mobile_mote.studies.rules import run

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--phase", choices=("select", "report", "check"), required=True,
                   help="select: choose on development data; report: every rule on report data; check: NB201 "
                   "against VKDNW's Table 1 (published figures beside ours)")
    p.add_argument("--nb201-table", default=None, help="NB201 component table (CSV)")
    p.add_argument("--nb201-benchmark", default=str(REPO.parent / "shared" / "data" / "nb201" / "benchmark.csv"))
    p.add_argument("--exclude", default=None, help="NB201 cells to leave out (one per line)")
    p.add_argument("--only", default=None, help="NB201: keep only these cells (one per line, or a records .jsonl)")
    p.add_argument("--macro-records", default=str(RESULTS / "macro_components.jsonl"))
    p.add_argument("--macro-dev-keys", default=str(RESULTS / "macro_dev_keys.txt"))
    p.add_argument("--selection", default=str(RESULTS / "rule_selection.json"), help="report phase: the choice")
    p.add_argument("--out", required=True)
    args = p.parse_args(argv)
    return run(args, "python tools/rule_study.py " + " ".join(argv if argv is not None else sys.argv[1:]))


if __name__ == "__main__":
    sys.exit(main())
