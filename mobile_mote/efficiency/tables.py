"""Per-architecture latency tables (CSV: a key column, one column of milliseconds per device), checked on load.

A table is keyed by ``arch`` (canonical strings of the space) or by a benchmark's ``index`` (NB201's
latency_ms.csv), translated through the index the caller gives (``index_for``: the benchmark's own index
table, which this module never reads itself). Loading refuses, with one line, a
cell that is not a finite positive number, a table whose architectures are not the space's, and a table
that lacks any architecture of the space, so a search never stops on a missing key half-way.
"""
from __future__ import annotations

import csv
import math
from pathlib import Path

from ..errors import InputError

KEYS = ("arch", "index")


def read_latency_columns(path: str | Path, devices) -> dict[str, dict]:
    """``{device: {key: ms}}`` for several columns, in one pass; keys are ints for an ``index`` table."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"latency table {path} does not exist; expected a CSV with an 'index' or 'arch' column "
                         "and one column of milliseconds per device")
    devices = list(devices)
    try:
        return _read_columns(path, devices)
    except (UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"latency table {path} is not a readable CSV ({type(e).__name__}); expected an 'index' or "
                         "'arch' column and one column of milliseconds per device") from None


def _read_columns(path: Path, devices: list) -> dict[str, dict]:
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        key = next((k for k in KEYS if k in header), None)
        if key is None:
            raise InputError(f"latency table {path} has no 'index' or 'arch' column; expected a CSV with one of "
                             "them and one column of milliseconds per device")
        cols = [c for c in header if c not in KEYS]
        missing = [d for d in devices if d not in cols]
        if missing:
            raise InputError(f"latency table {path} has no column {', '.join(map(repr, missing))}; "
                             f"devices: {', '.join(cols)}")
        out: dict[str, dict] = {d: {} for d in devices}
        for n, r in enumerate(reader, 2):
            k = r.get(key)
            if key == "index":
                try:
                    k = int(k)
                except (TypeError, ValueError):
                    raise InputError(f"latency table {path}:{n}: index {k!r} is not a whole number") from None
            elif not k:
                raise InputError(f"latency table {path}:{n}: empty arch")
            for d in devices:
                v = r.get(d)
                try:
                    ms = float(v)
                except (TypeError, ValueError):
                    ms = math.nan
                if not (math.isfinite(ms) and ms > 0):
                    raise InputError(f"latency table {path}:{n}: {d} = {v!r} is not a positive number of "
                                     "milliseconds; every cell must be one")
                out[d][k] = ms
    return out


class LatencyTable:
    """Latency (ms) of every architecture of a finite space on one device, from a table."""

    def __init__(self, path: str | Path, device: str, space, index_for=None):
        """``index_for(path)`` gives the index of a table keyed by a benchmark's index: anything with
        ``arch_at(i) -> cell string`` (the search passes NB201's, ``benchmarks.nb201.NB201Index.beside``)."""
        if not space.accepts_latency_tables():
            raise InputError(f"a per-architecture latency table cannot list every architecture of {space.name}; "
                             "use a per-block LUT (--latency-lut, built by `mote latency-lut`)")
        if not device:
            raise InputError("--latency-table needs --latency-device (a column of the table, e.g. pixel2)")
        raw = read_latency_columns(path, [device])[device]
        index = None
        if raw and isinstance(next(iter(raw)), int):
            if index_for is None:
                raise InputError(f"latency table {path} is keyed by a benchmark's index; it needs the benchmark's "
                                 "index table (--benchmark) to name its architectures")
            index = index_for(path)
        self.ms: dict[str, float] = {}
        for k, v in raw.items():
            text = index.arch_at(k) if index is not None else k
            try:
                arch = space.table_key(text)
            except InputError as e:
                raise InputError(f"latency table {path} does not belong to space {space.name}: its architecture "
                                 f"{str(text)[:60]!r} is not one ({str(e).splitlines()[0][:120]})") from None
            self.ms[arch] = v
        size = space.size()
        if len(self.ms) != size:
            raise InputError(f"latency table {path} lists {len(self.ms)} of the {size} architectures of "
                             f"{space.name}; a table must list every one")
        self.device = device
        self.space = space
        self.describe = f"table {Path(path).name}, device {device}"

    def __call__(self, arch: str) -> float:
        return self.ms[self.space.table_key(arch)]

    def floor_ms(self) -> float:
        return min(self.ms.values())
