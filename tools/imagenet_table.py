#!/usr/bin/env python
"""The paper's ImageNet-1K comparison beside this toolkit's own rows.

Published rows (never measured here; each carries its source): MobileNetV2, MobileNetV3-Large, OFA,
ZiCo and MOTE-NAS. Toolkit rows: the two presets (``mobilenetv2_100``, ``mobilenetv3_large_100``) and
every search run found under ``--runs`` (``<runs>/<name>/winner.json``, or ``winners/*.json`` for a
multi-budget run). For those, MACs and params are computed here with the analytic counters
(``space.macs`` / ``space.params``), the search cost comes from the run record (GPU-days only when
the run's device was a GPU, otherwise CPU seconds), and top-1 comes from a finished retraining:
a ``model_card.json`` with a numeric ``top1`` found in ``<run>/retrain/`` (or one level below it) or
in a ``--retrain DIR`` whose card names the same (space, arch). Anything else says "pending".

    python tools/imagenet_table.py                                   # published rows + presets
    python tools/imagenet_table.py --runs runs --retrain out/mbv3_400m_retrain
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mobile_mote.studies.imagenet_table import run

REPO = Path(__file__).resolve().parents[1]
DEFAULT_OUT = REPO / "benchmarks" / "results" / "imagenet_table.json"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", help="folder of search runs (<runs>/<name>/winner.json) or one run folder")
    p.add_argument("--retrain", action="append", default=[], metavar="DIR",
                   help="a retraining output folder holding model_card.json (repeatable)")
    p.add_argument("--out", default=str(DEFAULT_OUT), help="JSON output (default: %(default)s)")
    return run(p.parse_args(argv), [sys.argv[0], *(argv if argv is not None else sys.argv[1:])])


if __name__ == "__main__":
    sys.exit(main())
