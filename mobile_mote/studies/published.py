"""Published figures as data (``published.json``): one place, each entry with its source, so that a table
shows them beside ours without any figure living in code."""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path


@lru_cache(maxsize=1)
def _all() -> dict:
    return json.loads(Path(__file__).with_name("published.json").read_text())


def published(name: str) -> dict:
    """The entry ``name`` of ``published.json`` (a fresh copy: callers may add to it)."""
    return json.loads(json.dumps(_all()[name]))
