"""Scores read from a file of per-cell scores computed earlier (e.g. by tools/correlation.py).

It lets the search logic run anywhere (a CPU check of scores computed on a GPU). The record's
``seconds`` is the recorded cost of computing the score, not the look-up, so search costs stay honest;
a file without seconds gives cost 0 and says so in the terms.
"""
from __future__ import annotations

import csv
import json
import time
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .base import Estimator, device_name
from .record import Estimate
from .registry import register_estimator

_CACHE: dict[str, dict[str, tuple[float | None, float | None]]] = {}


def read_scores(path: str) -> dict[str, tuple[float | None, float | None]]:
    """{arch: (score, seconds)} from JSON lines (our records) or a CSV with arch,score[,seconds]."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"precomputed scores {p} do not exist; expected JSON lines of score records or a CSV "
                         "with columns arch,score[,seconds]")
    key = f"{p.resolve()}:{p.stat().st_mtime_ns}"
    if key in _CACHE:
        return _CACHE[key]
    out: dict[str, tuple[float | None, float | None]] = {}
    if p.suffix == ".csv":
        with open(p, newline="") as f:
            reader = csv.DictReader(f)
            if not {"arch", "score"} <= set(reader.fieldnames or []):
                raise InputError(f"{p}: a CSV of precomputed scores needs columns arch,score[,seconds]")
            for r in reader:
                out[r["arch"]] = (float(r["score"]) if r["score"] not in ("", "None") else None,
                                  float(r["seconds"]) if r.get("seconds") not in (None, "") else None)
    else:
        for n, line in enumerate(p.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
                out[r["arch"]] = (r.get("score"), r.get("seconds"))
            except (json.JSONDecodeError, KeyError):
                raise InputError(f"{p}:{n}: not a score record (JSON with 'arch' and 'score')") from None
    _CACHE[key] = out
    return out


@register_estimator("precomputed")
class Precomputed(Estimator):
    needs_data = False

    @dataclass
    class Config:
        path: str = ""

    def estimate(self, space, arch, data, seed: int = 0, device="cpu") -> Estimate:
        arch = space.canonical(arch)
        table = read_scores(self.config.path)
        t0 = time.perf_counter()
        rec = Estimate(space=space.name, arch=arch, estimator=self.name, score=None, config=self.config_dict(),
                       config_hash=self.config_hash(), seed=seed, device=device_name(device))
        if arch not in table:
            rec.status, rec.error = "failed", f"not in the precomputed scores {self.config.path}"
        else:
            score, seconds = table[arch]
            rec.score = score
            rec.status = "ok" if score is not None else "failed"
            rec.terms = {"source": self.config.path,
                         "seconds_source": "recorded" if seconds is not None else "not recorded (counted as 0)"}
            rec.seconds = float(seconds or 0.0)
            return rec
        rec.seconds = time.perf_counter() - t0
        return rec
