"""Quantities with units as typed on the command line: 300M, 0.3G, 4.5M, 20ms."""
from __future__ import annotations

import math
import re

from .errors import InputError

_SCALE = {"": 1.0, "k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12}
_COUNT_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?\d+)?)\s*([kmgt]?)\s*$", re.IGNORECASE)
_TIME_RE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[+-]?\d+)?)\s*(ms|s|us)?\s*$", re.IGNORECASE)


class UnitError(InputError):
    pass


def parse_count(text: str, what: str = "count") -> float:
    """'300M' -> 3e8, '0.3G' -> 3e8, '4.5M' -> 4.5e6, '1200000' -> 1.2e6."""
    m = _COUNT_RE.match(str(text))
    if not m:
        raise UnitError(f"cannot read {what} {text!r}; accepted: a number with an optional K, M, G or T suffix "
                        "(300M, 0.3G, 4.5M)")
    return _finite_positive(float(m.group(1)) * _SCALE[m.group(2).lower()], text, what)


def parse_milliseconds(text: str, what: str = "latency") -> float:
    """'20ms' -> 20.0, '0.02s' -> 20.0, '20' -> 20.0 (milliseconds)."""
    m = _TIME_RE.match(str(text))
    if not m:
        raise UnitError(f"cannot read {what} {text!r}; accepted: a number with ms, s or us (20ms, 0.02s)")
    unit = (m.group(2) or "ms").lower()
    return _finite_positive(float(m.group(1)) * {"ms": 1.0, "s": 1e3, "us": 1e-3}[unit], text, what)


def _finite_positive(value: float, text: str, what: str) -> float:
    if not math.isfinite(value):  # 1e400 reads as infinity: no bound at all, and a run named ...inf...
        raise UnitError(f"{what} {text!r} is beyond any finite number; accepted: a finite positive number, "
                        "e.g. 300M or 20ms")
    if value <= 0:
        raise UnitError(f"{what} {text!r} must be positive")
    return value


def parse_list(text: str, parse, what: str) -> list[float]:
    """Comma-separated budgets: '200M,300M,400M'."""
    parts = [p for p in str(text).split(",") if p.strip()]
    if not parts:
        raise UnitError(f"no {what} given in {text!r}")
    return [parse(p, what) for p in parts]


def fmt_count(value: float) -> str:
    for suffix, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= scale:
            return f"{value / scale:.1f}{suffix}"
    return f"{value:g}"
