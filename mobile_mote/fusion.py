"""Population-rank fusion of estimator components (AZ-NAS's sum of log-ranks).

Each component is a score where higher is better (the record convention). Within a population of N
networks a component's values are ranked 1..N (ties share their mean rank), and a network's fused
score is ``sum_c log(rank_c / N)``: 0 for a network best on every component, very negative for one
that is last on any. Nothing is fitted to benchmark accuracies; the score depends only on the
population, so it is recomputed whenever the population changes (``fuse`` over the current pool).

A component that came out non-finite for a network ("flagged": a zero-cost proxy of a network whose
output ignores its input, a training run that diverged) is that network's worst possible value: it
enters as -inf and ranks last (ties share their mean rank). A component that is missing altogether (a
failed estimate: nothing is known) gives the network no fused score (None): a rank invented for it
would move every other network's score.
"""
from __future__ import annotations

import csv
import gzip
import math
from pathlib import Path
from typing import Mapping, Sequence

from .errors import InputError


#: The ranking rule for every space, chosen on development data among the rules declared beforehand
#: (``mobile_mote.studies.rules.CANDIDATE_RULES``; record: benchmarks/results/rule_selection.json).
#: ``mote fuse`` without --components applies it to the components a table has; ``fused`` and
#: ``mote-z`` take it as their default components (``fused`` without MOTE's terms, which need training).
DEFAULT_RULE: tuple[str, ...] = ("landscape", "speed", "vkdnw", "expressivity", "trainability", "macs", "jacov",
                                  "naswot")  # "mote_vkdnw_agg_naswot", chosen 2026-12-04
MOTE_TERMS = ("landscape", "speed")


def log_rank_sum(columns: Mapping[str, Sequence[float | None]]) -> list[float | None]:
    """The fused score of every network: ``sum_c log(rank_c / N)`` over the components in ``columns``."""
    from scipy.stats import rankdata
    if not columns:
        raise InputError("fusion needs at least one component")
    lengths = {len(v) for v in columns.values()}
    if len(lengths) != 1:
        raise InputError(f"components have different lengths {sorted(lengths)}; each needs one value per network")
    n = lengths.pop()
    ok = [all(_finite(col[i]) for col in columns.values()) for i in range(n)]
    members = [i for i in range(n) if ok[i]]
    out: list[float | None] = [None] * n
    if not members:
        return out
    total = [0.0] * len(members)
    for col in columns.values():
        ranks = rankdata([float(col[i]) for i in members], method="average")
        for j, r in enumerate(ranks):
            total[j] += math.log(r / len(members))
    for j, i in enumerate(members):
        out[i] = total[j]
    return out


def _finite(v) -> bool:
    """Rankable: a number, ±inf included (-inf: the worst value), not NaN and not missing."""
    return v is not None and isinstance(v, (int, float)) and not math.isnan(v)


def read_component_table(path: str | Path, components: Sequence[str] | None = None) -> tuple[list[str], dict[str, list]]:
    """(archs, {component: values}) from a CSV with an ``arch`` column and one column per component.

    ``components`` None: every column but ``arch`` (no selection: AZ-NAS sums all its proxies alike).
    Empty cells are missing values.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError(f"component table {p} does not exist; expected a CSV with an 'arch' column and "
                         "one column per component (higher is better)")
    try:
        opener = gzip.open if p.suffix == ".gz" else open  # a committed table may be gzipped
        with opener(p, "rt", newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            if "arch" not in header:
                raise InputError(f"{p}: no 'arch' column (columns: {', '.join(header) or 'none'}); expected arch "
                                 "plus one column per component")
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error, OSError, EOFError) as e:
        why = ("not UTF-8 text" if isinstance(e, UnicodeDecodeError) else
               "a damaged gzip file" if isinstance(e, (OSError, EOFError)) else str(e).splitlines()[0])
        raise InputError(f"component table {p} is not a readable CSV ({why}); expected a CSV with an 'arch' "
                         "column and one column per component") from None
    if not rows:
        raise InputError(f"component table {p} has a header and no rows; expected one row per network")
    available = [c for c in header if c != "arch"]
    if components is None:
        components = available
    missing = [c for c in components if c not in available]
    if missing or not components:
        raise InputError(f"{p}: component(s) {missing or '(none)'} not in the table; accepted: {', '.join(available)}")
    archs, seen = [], set()
    cols: dict[str, list] = {c: [] for c in components}
    for line, row in enumerate(rows, start=2):
        a = (row.get("arch") or "").strip()
        if not a:
            raise InputError(f"{p}:{line}: empty arch")
        if a in seen:
            raise InputError(f"{p}:{line}: arch {a!r} appears twice; one row per network")
        seen.add(a)
        archs.append(a)
        for c in components:
            cols[c].append(_number(row.get(c), f"{p}:{line}: {c}"))
    return archs, cols


def _number(text, where: str) -> float | None:
    if text is None or str(text).strip() == "":
        return None
    try:
        return float(text)
    except ValueError:
        raise InputError(f"{where}: {text!r} is not a number; expected a score (higher is better) or an empty cell") from None


def fuse_table(table: str | Path, out: str | Path, components: Sequence[str] | None = None) -> dict:
    """Read ``table``, write ``arch,score`` (the fused score; empty where a component is missing) to ``out``.
    ``components`` None: the components of ``DEFAULT_RULE`` the table has."""
    from .atomic import write_text
    if components is None:
        _, header = read_component_table(table)
        components = [c for c in DEFAULT_RULE if c in header]
        if not components:
            raise InputError(f"component table {table} has none of the default rule's components "
                             f"({', '.join(DEFAULT_RULE)}); name the columns to fuse with --components")
    archs, cols = read_component_table(table, components)
    scores = log_rank_sum(cols)
    lines = ["arch,score"] + [f"{a},{'' if s is None else repr(s)}" for a, s in zip(archs, scores)]
    try:
        write_text(Path(out), "\n".join(lines) + "\n")
    except OSError as e:  # named by the file asked for, not by the temporary written beside it
        raise InputError(f"cannot write {out}: {e.strerror or type(e).__name__}; choose a writable --out") from None
    return {"networks": len(archs), "fused": sum(s is not None for s in scores), "components": list(cols)}


def carried(estimator: str | None) -> tuple[str, ...]:
    """Components a record of ``estimator`` carries in its terms besides its own score (its class's
    ``carries``; none for a name no estimator has, e.g. a table's column)."""
    from .estimators.registry import ESTIMATORS
    return ESTIMATORS.get(estimator).carries if estimator in ESTIMATORS else ()


def source_of(component: str, available) -> str:
    """The estimator whose records give ``component``: its own if ``available`` has it, else one that carries it."""
    if component in available:
        return component
    for est in sorted(available):
        if component in carried(est):
            return est
    return component


def record_components(record: Mapping) -> dict[str, float | None]:
    """A record's components, each higher = better: its score under its estimator's name (-inf when it
    was flagged non-finite), and for MOTE also ``mote``, ``landscape`` and ``speed`` (the terms are
    losses, so negated); a ``mote-z`` record adds every component it computed."""
    status = record.get("status")
    if status not in ("ok", "flagged"):
        return {}
    score = record.get("score")
    name = record.get("estimator")
    out = {name: -math.inf if status == "flagged" and score is None else score} if name else {}
    terms = record.get("terms") or {}
    proxies = terms.get("proxies") or {}
    for k, v in (terms.get("components") or {}).items():  # mote-z keeps its own; a flagged proxy ranks last
        if k not in out:
            out[k] = -math.inf if v is None and (proxies.get(k) or {}).get("status") == "flagged" else v
    for k in carried(name):
        v = terms.get(k)
        if k not in out and isinstance(v, (int, float)):
            out[k] = -math.inf if math.isnan(v) else float(v)
    if "landscape" in terms:
        out["landscape"] = -terms["landscape"]
    if "speed" in terms:
        out["speed"] = -terms["speed"]
    return out
