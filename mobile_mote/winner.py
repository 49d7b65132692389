"""The winner record: what ``mote search`` leaves in ``runs/<name>/winner.json`` and retraining reads.

``WinnerRecord`` is the one reader and writer of that file. A search writes
``WinnerRecord.from_summary(summary, winner, space).to_json()``; retraining (``train.build_winner``,
``train.register_winner``) and the tools (``tools/imagenet_table.py``) read it with
``WinnerRecord.from_file(path)``, where ``path`` is the file or the run folder holding it.

Reading checks every key it knows: a missing file, bad JSON, a missing ``space`` / ``arch``, a value of
the wrong type (``"macs": "lots"``, a fractional ``params``, a non-string ``arch``) or a newer
``schema_version`` than this code knows is an ``InputError`` whose one line names the key and what is
accepted. Records written before the schema was versioned (no ``schema_version``) read as version 0;
keys this code does not know are kept in ``extra`` and written back unchanged.

>>> rec = WinnerRecord.from_file("runs/mbv3_400m")          # doctest: +SKIP
>>> rec.space, rec.macs, rec.timm_arch_def[0]               # doctest: +SKIP
"""
from __future__ import annotations

import json
import math
import numbers
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import InputError

SCHEMA_VERSION = 1
WINNER_FILE = "winner.json"
REQUIRED = ("space", "arch")


def _is_int(v) -> bool:
    if isinstance(v, bool):
        return False
    if isinstance(v, numbers.Integral):
        return True
    return isinstance(v, numbers.Real) and math.isfinite(float(v)) and float(v).is_integer()


def _is_num(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool)


def _is_arch_def(v) -> bool:
    return isinstance(v, list) and all(isinstance(s, list) and all(isinstance(b, str) for b in s) for s in v)


def _is_cost_seconds(v) -> bool:
    return isinstance(v, dict) and all(isinstance(k, str) and (x is None or _is_num(x)) for k, x in v.items())


# key -> (check, coerce, what is accepted); every key but space/arch may also be null
_CHECKS: dict[str, tuple[Any, Any, str]] = {
    "space": (lambda v: isinstance(v, str) and bool(v), str, "a search space name such as mbv3"),
    "arch": (lambda v: isinstance(v, str) and bool(v), str, "the architecture string the search printed"),
    "macs": (lambda v: _is_int(v) and v >= 0, int, "a whole number of multiply-accumulates >= 0, or null"),
    "params": (lambda v: _is_int(v) and v >= 0, int, "a whole number of parameters >= 0, or null"),
    "latency_ms": (_is_num, float, "a number of milliseconds, or null"),
    "score": (_is_num, float, "a number (the estimator's score), or null"),
    "constraint": (lambda v: isinstance(v, dict), dict, "an object such as {\"max_macs\": 400000000}, or null"),
    "evaluation": (lambda v: isinstance(v, dict), dict, "an object (the evaluation stage's result), or null"),
    "estimator": (lambda v: isinstance(v, str), str, "an estimator name such as mote, or null"),
    "estimator_config": (lambda v: isinstance(v, dict), dict, "an object of estimator settings, or null"),
    "algorithm": (lambda v: isinstance(v, str), str, "a search algorithm name such as mote-nas, or null"),
    "search": (lambda v: isinstance(v, dict), dict, "an object of search settings, or null"),
    "seed": (_is_int, int, "a whole number, or null"),
    "device": (lambda v: isinstance(v, str), str, "a device name such as cpu or cuda:0, or null"),
    "cost_seconds": (_is_cost_seconds, dict, "an object of seconds such as {\"estimator\": 12.5, \"total\": 20.0}, "
                                             "or null"),
    "final_accuracy": (_is_num, float, "a percentage, or null"),
    "final_accuracy_source": (lambda v: isinstance(v, str), str, "a sentence naming where the accuracy is from, "
                                                                 "or null"),
    "final_rank": (lambda v: _is_int(v) and v >= 1, int, "a whole number, 1 or more, or null"),
    "feasible_architectures": (lambda v: _is_int(v) and v >= 1, int, "a whole number, 1 or more, or null"),
    "best_feasible_accuracy": (_is_num, float, "a percentage, or null"),
    "timm_arch_def": (_is_arch_def, list, "a list of stages, each a list of timm block strings, or null"),
    "schema_version": (lambda v: _is_int(v) and v >= 0, int, f"a whole number 0..{SCHEMA_VERSION}"),
    "provenance": (lambda v: isinstance(v, dict), dict, "an object (versions, command, data source), or null"),
    "data_quality": (lambda v: isinstance(v, str), str, "a word such as demo or full, or null"),
}


@dataclass
class WinnerRecord:
    """One search winner: architecture, costs, score and where they came from (schema ``SCHEMA_VERSION``)."""

    space: str
    arch: str
    macs: int | None = None
    params: int | None = None
    latency_ms: float | None = None
    score: float | None = None
    constraint: dict | None = None
    evaluation: dict | None = None
    estimator: str | None = None
    estimator_config: dict | None = None
    algorithm: str | None = None
    search: dict | None = None
    seed: int | None = None
    device: str | None = None
    cost_seconds: dict | None = None
    final_accuracy: float | None = None
    final_accuracy_source: str | None = None
    final_rank: int | None = None  # the winner's rank by true accuracy among the benchmark's feasible networks
    feasible_architectures: int | None = None
    best_feasible_accuracy: float | None = None
    timm_arch_def: list | None = None
    schema_version: int = SCHEMA_VERSION
    provenance: dict | None = None  # what produced the record (versions, command, data source)
    data_quality: str | None = None  # what the proxy data was, e.g. "demo" (the offline MNIST fallback)
    extra: dict = field(default_factory=dict)  # keys this version does not know, kept as they were
    path: Path | None = field(default=None, compare=False, repr=False)  # the file it was read from

    # -- writing -----------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The JSON object: ``schema_version`` first, then the search's keys in their usual order;
        ``final_accuracy`` / ``final_accuracy_source`` only when an accuracy is known."""
        out: dict = {"schema_version": self.schema_version}
        for f in fields(self):
            if f.name in ("schema_version", "extra", "path"):
                continue
            if f.name in ("final_accuracy", "final_accuracy_source", "final_rank", "feasible_architectures",
                          "best_feasible_accuracy") and getattr(self, f.name) is None:
                continue
            out[f.name] = getattr(self, f.name)
        for k, v in self.extra.items():
            out.setdefault(k, v)
        return out

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def write(self, path) -> Path:
        """Write atomically to ``path`` (a folder gets ``winner.json``); returns the file written."""
        from .atomic import write_text
        p = Path(path)
        if p.is_dir():
            p = p / WINNER_FILE
        write_text(p, self.to_json() + "\n")
        return p

    # -- reading -----------------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, data, where: str = "winner record") -> "WinnerRecord":
        """A checked record from a parsed JSON object; ``where`` starts every error message."""
        if not isinstance(data, dict):
            raise InputError(f"{where}: a winner record is a JSON object, got {type(data).__name__}; accepted: "
                             "the winner.json mote search writes")
        for key in REQUIRED:
            if key not in data or data[key] is None:
                raise InputError(f"{where}: missing key {key!r}; a winner record needs 'space' and 'arch'; "
                                 "accepted: the winner.json mote search writes (runs/<name>/winner.json)")
        values: dict = {}
        for key, (check, coerce, accepted) in _CHECKS.items():
            if key not in data:
                continue
            v = data[key]
            if v is None and key not in REQUIRED and key != "schema_version":
                values[key] = None
                continue
            if not check(v):
                shown = repr(v)
                shown = shown if len(shown) <= 60 else shown[:57] + "..."
                raise InputError(f"{where}: key {key!r} is {shown} ({type(v).__name__}); accepted: {accepted}")
            values[key] = coerce(v)
        version = values.get("schema_version", 0)  # no schema_version: written before records were versioned
        if version > SCHEMA_VERSION:
            raise InputError(f"{where}: schema_version {version} is newer than this mobile_mote reads; accepted: "
                             f"0..{SCHEMA_VERSION} (update mobile_mote to read it)")
        values["schema_version"] = version
        extra = {k: v for k, v in data.items() if k not in _CHECKS}
        return cls(**values, extra=extra)

    @classmethod
    def from_json(cls, text, where: str = "winner record") -> "WinnerRecord":
        try:
            data = json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError, TypeError) as e:
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise InputError(f"{where}: not JSON ({first}); accepted: the winner.json mote search writes") from None
        return cls.from_dict(data, where)

    @classmethod
    def from_file(cls, path) -> "WinnerRecord":
        """Read ``path``: a winner.json, or a run folder holding one."""
        p = winner_file(path)
        if not p.is_file():
            raise InputError(f"winner file {str(p)!r} not found; expected the winner.json a search writes "
                             "(or the run folder holding it)")
        try:
            text = p.read_bytes().decode("utf-8")
        except UnicodeDecodeError as e:
            raise InputError(f"{p}: not JSON (not UTF-8 text: {e.reason}); accepted: the winner.json mote search "
                             "writes") from None
        except OSError as e:
            raise InputError(f"cannot read winner file {p} ({e.strerror or e})") from None
        rec = cls.from_json(text, where=str(p))
        rec.path = p
        return rec

    @classmethod
    def from_summary(cls, summary: dict, winner: dict, space=None) -> "WinnerRecord":
        """The record of one winner of a finished search (``summary`` as ``mote search`` builds it,
        ``winner`` one entry of ``summary["winners"]``, ``space`` the search space or its name)."""
        if space is None or isinstance(space, str):
            from mobile_mote.search_spaces import get_space
            space = get_space(space or summary["space"])
        est_s = summary["estimator_seconds"]
        eval_s = winner.get("evaluation_seconds", 0.0)
        data = {"space": summary["space"], "arch": winner["arch"], "macs": winner["macs"], "params": winner["params"],
                "latency_ms": winner.get("latency_ms"), "score": winner["score"], "constraint": winner["constraint"],
                "evaluation": winner.get("evaluation"), "estimator": summary["estimator"],
                "estimator_config": summary["estimator_config"], "algorithm": summary["algorithm"],
                "search": summary["search"], "seed": summary["seed"], "device": summary["device"],
                "cost_seconds": {"estimator": est_s, "evaluation": eval_s, "total": est_s + eval_s},
                "timm_arch_def": space.arch_def(winner["arch"]) if winner["arch"] else None,
                "provenance": summary.get("provenance"), "data_quality": summary.get("data_quality"),
                "schema_version": SCHEMA_VERSION}
        for k in ("final_accuracy", "final_accuracy_source", "final_rank", "feasible_architectures",
                  "best_feasible_accuracy", "final_rank_networks", "feasible_networks"):
            if winner.get(k) is not None:
                data[k] = winner[k]
        return cls.from_dict(data, where=f"winner of search {summary.get('run', summary['space'])!r}")


def winner_file(path) -> Path:
    """The winner.json a path stands for: the path itself, or ``<folder>/winner.json``."""
    p = Path(path)
    return p / WINNER_FILE if p.is_dir() else p


__all__ = ["SCHEMA_VERSION", "WINNER_FILE", "WinnerRecord", "winner_file"]
