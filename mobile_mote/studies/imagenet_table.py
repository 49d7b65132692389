"""The paper's ImageNet-1K comparison beside this toolkit's own rows (``tools/imagenet_table.py``): published
rows from ``published.json`` with their sources, and the presets and search runs with MACs and params counted
here, the search cost from the run record and top-1 from a finished retraining's model card, or "pending"."""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

from ..atomic import write_text
from ..errors import InputError
from ..winner import WinnerRecord
from . import published as figures

NA = "n/a"
PENDING = "pending"

def _fmt_m(n: int) -> str:
    return f"{n / 1e6:.1f} M"


def _is_gpu(device) -> bool:
    d = str(device or "").lower()
    return d.startswith("cuda") or d.startswith("gpu") or d.startswith("rocm")


def _num(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def read_card(path: Path) -> dict | None:
    """A model_card.json as a dict, or None when it is not a readable JSON object."""
    try:
        card = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return card if isinstance(card, dict) else None


def cards_in(d: Path) -> list[Path]:
    """model_card.json in ``d`` itself, else one level below it."""
    if (d / "model_card.json").is_file():
        return [d / "model_card.json"]
    return sorted(d.glob("*/model_card.json")) if d.is_dir() else []


def top1_of(card_paths: list[Path], space: str, arch_canonical: str, sp) -> tuple[float | None, str | None]:
    """The first numeric top1 among cards whose (space, arch) is this one (cards without an arch count as
    belonging to the folder they sit in)."""
    for p in card_paths:
        card = read_card(p)
        if card is None or not _num(card.get("top1")):
            continue
        if card.get("space") not in (None, space):
            continue
        if card.get("arch") is not None:
            try:
                if sp.canonical(card["arch"]) != arch_canonical:
                    continue
            except Exception:
                continue
        return float(card["top1"]), str(p)
    return None, None


def presets() -> list[tuple[str, str]]:
    """(space, preset name) of every space whose networks are timm models retrainable on ImageNet."""
    from mobile_mote.search_spaces import get_space, list_spaces
    out = []
    for name in list_spaces():
        info = get_space(name).timm_model_info()
        if info is not None and info.get("preset"):
            out.append((name, info["preset"]))
    return out


def load_winner(path: Path) -> WinnerRecord:
    """The run's winner record (``WinnerRecord.from_file``: InputError naming the bad key)."""
    return WinnerRecord.from_file(path)


def find_runs(runs_dir: Path) -> list[tuple[str, Path, Path]]:
    """(label, winner file, run folder) for every run under ``runs_dir`` (or ``runs_dir`` being one run)."""
    out = []
    run_dirs = [runs_dir] if (runs_dir / "winner.json").is_file() else sorted(p for p in runs_dir.iterdir() if p.is_dir())
    for rd in run_dirs:
        multi = sorted((rd / "winners").glob("*.json")) if (rd / "winners").is_dir() else []
        if multi:
            out += [(f"{rd.name}/{p.stem}", p, rd) for p in multi]
        elif (rd / "winner.json").is_file():
            out.append((rd.name, rd / "winner.json", rd))
    return out


def search_cost(w: WinnerRecord) -> dict:
    cs = w.cost_seconds or {}
    total = cs.get("total")
    if not _num(total):
        return {"seconds": None, "text": NA, "device": w.device}
    gpu = _is_gpu(w.device)
    out = {"seconds": float(total), "estimator_seconds": cs.get("estimator"),
           "evaluation_seconds": cs.get("evaluation"), "device": w.device}
    if gpu:
        out["gpu_days"] = float(total) / 86400.0
        out["text"] = f"{total:,.0f} GPU-s ({out['gpu_days']:.3g} GPU-days, {w.device})"
    else:
        out["text"] = f"{total:,.0f} CPU seconds"
    return out


def toolkit_rows(runs_dir: Path | None, retrain_dirs: list[Path]) -> tuple[list[dict], list[str]]:
    from mobile_mote.search_spaces import get_space

    extra_cards = [p for d in retrain_dirs for p in cards_in(d)]
    rows, used = [], set()
    items = [(name, "preset", WinnerRecord(space=s, arch=get_space(s).presets()[name]), None) for s, name in presets()]
    if runs_dir is not None:
        items += [(label, "search run", load_winner(wf), (wf, rd)) for label, wf, rd in find_runs(runs_dir)]
    for label, kind, w, where in items:
        try:
            sp = get_space(w.space)
            arch = sp.canonical(w.arch)
            macs, params = int(sp.macs(arch)), int(sp.params(arch))
        except Exception as e:
            src = where[0] if where else label
            raise InputError(f"{src}: cannot count architecture ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); "
                             "accepted: a winner.json with a valid space and arch") from None
        cards = (cards_in(where[1] / "retrain") if where else []) + extra_cards
        top1, top1_src = top1_of(cards, sp.name, arch, sp)
        if top1_src:
            used.add(top1_src)
        row = {"model": label, "kind": kind, "status": "measured here", "space": sp.name, "arch": arch,
               "macs": macs, "params": params, "macs_text": _fmt_m(macs), "params_text": f"{params / 1e6:.2f} M",
               "top1": top1 if top1 is not None else PENDING, "top1_source": top1_src}
        if kind == "search run":
            row["search_cost"] = search_cost(w)
            row["winner_file"] = str(where[0])
            recorded = (w.macs, w.params)
            if recorded != (macs, params):
                row["note"] = f"run record says MACs {recorded[0]}, params {recorded[1]}; recomputed here"
        else:
            row["search_cost"] = {"seconds": None, "text": "n/a (preset)"}
        rows.append(row)
    unmatched = [str(p) for p in extra_cards if str(p) not in used]
    return rows, unmatched


def render(published: list[dict], rows: list[dict], unmatched: list[str]) -> str:
    lines = ["## ImageNet-1K: published figures", "",
             "| model | top-1 % | MACs | params | search cost | source |", "|---|---|---|---|---|---|"]
    for r in published:
        lines.append(f"| {r['model']} | {r['top1']} | {r['macs']} | {r['params']} | {r['search_cost']} | "
                     f"published: {r['source']} |")
    lines += ["", "## This toolkit (MACs/params: analytic counters at 224; top-1: retraining model card or pending)", "",
              "| model | space | top-1 % | MACs | params | search cost | top-1 from |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        top1 = f"{r['top1']:.2f}" if _num(r["top1"]) else r["top1"]
        lines.append(f"| {r['model']} | {r['space']} | {top1} | {r['macs_text']} | {r['params_text']} | "
                     f"{r['search_cost']['text']} | {r['top1_source'] or '-'} |")
    for p in unmatched:
        lines.append(f"\nNote: {p} matches no row (its space/arch is not a preset or a run's winner, or top1 is not numeric).")
    return "\n".join(lines) + "\n"


def run(args, command: list[str]) -> int:
    """The table for the tool's arguments: prints it and writes ``args.out`` (recording ``command``); 2 after a
    one-line error."""
    try:
        runs_dir = None
        if args.runs is not None:
            runs_dir = Path(args.runs)
            if not runs_dir.is_dir():
                raise InputError(f"runs folder {runs_dir} does not exist; accepted: a folder holding <name>/winner.json")
        retrain = []
        for d in args.retrain:
            d = Path(d)
            if not d.is_dir():
                raise InputError(f"retrain folder {d} does not exist; accepted: a folder holding model_card.json")
            retrain.append(d)
        rows, unmatched = toolkit_rows(runs_dir, retrain)
    except InputError as e:
        print(f"imagenet_table: {e}", file=sys.stderr)
        return 2
    from ..provenance import provenance
    published = [{**r, "status": "published"} for r in figures.published("imagenet")["rows"]]
    text = render(published, rows, unmatched)
    print(text, end="")
    record = {"published": published, "toolkit": rows, "unmatched_retrain_cards": unmatched,
              "macs_note": "multiply-accumulates of conv and linear layers (papers: FLOPs)",
              "provenance": provenance(command)}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text(out, json.dumps(record, indent=2) + "\n")
    return 0
