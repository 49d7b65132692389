"""KEY=VALUE overrides of estimator options, as ``--set`` takes them (the CLI and the tools alike)."""
from __future__ import annotations

from .errors import InputError


def parse_set(items: list[str] | None) -> dict:
    """--set key=value pairs for estimator options (ints, floats, booleans and strings)."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise InputError(f"--set {item!r}: expected key=value, e.g. --set epochs=12")
        k, v = item.split("=", 1)
        for conv in (int, float):
            try:
                v = conv(v)
                break
            except ValueError:
                continue
        if v in ("true", "false"):
            v = v == "true"
        out[k.strip().replace("-", "_")] = v
    return out
