"""Plain data: numpy scalars and arrays turned into JSON's own types, so state and summaries round-trip."""
from __future__ import annotations

import json

import numpy as np


def json_safe(obj):
    return json.loads(json.dumps(obj, default=_default))


def _default(o):
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(type(o).__name__)
