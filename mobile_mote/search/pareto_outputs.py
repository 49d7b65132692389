"""What a multi-objective run leaves in runs/<name>/: the front (front.json, front.csv), every evaluated
candidate (evaluated.csv), summary.json / summary.md and front.png.

Objectives are minimised inside the search; ``score`` enters negated (higher scores are better) and a
candidate whose estimator failed gets ``+inf`` there. The front is the set of non-dominated candidates
among everything the run evaluated.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

from ..atomic import atomic_path as _atomic_path, write_text as _atomic_write
from ..pareto import hypervolume_2d, normalise, ranks_and_crowding
from ..plain import json_safe as _json_safe


def objective_rows(objectives, archs, known: dict, costs) -> np.ndarray:
    """The (n, m) MINIMISED objectives of ``archs``: -score (+inf when it failed), MACs, params, ms."""
    rows = []
    for a in archs:
        c, s = costs(a), known[a].get("score")
        vals = {"score": math.inf if s is None else -float(s), "macs": float(c["macs"]), "params": float(c["params"]),
                "latency": math.inf if c["latency_ms"] is None else float(c["latency_ms"])}
        rows.append([vals[o] for o in objectives])
    return np.asarray(rows, dtype=float).reshape(len(rows), len(objectives))


# -- the front --------------------------------------------------------------------------------------
def pareto_result(spec, space, objectives, evaluated: list[dict], costs, truth, truth_source=None) -> dict:
    """Ranks of every evaluated candidate, the front with its crowding, and (two objectives) its
    normalised hypervolume, overall and after each generation."""
    F = objective_rows(objectives, [r["arch"] for r in evaluated], {r["arch"]: r for r in evaluated}, costs)
    valid = np.isfinite(F).all(axis=1)  # a failed score (or a missing latency) has no place on a front
    idx = np.nonzero(valid)[0]
    rank = np.full(len(evaluated), -1)
    crowd = np.full(len(evaluated), np.nan)
    if len(idx):
        r, c = ranks_and_crowding(F[idx])
        rank[idx], crowd[idx] = r, c
    rows = []
    for i, rec in enumerate(evaluated):
        c = costs(rec["arch"])
        row = {"arch": rec["arch"], "generation": rec.get("iteration"), "status": rec.get("status"),
               "score": rec.get("score"), "macs": c["macs"], "params": c["params"], "latency_ms": c["latency_ms"],
               "rank": int(rank[i]) if rank[i] >= 0 else None}
        if truth is not None:
            row["true_accuracy"] = truth.get(rec["arch"])
        rows.append(row)
    front_idx = sorted((i for i in idx if rank[i] == 0), key=lambda i: tuple(F[i]))
    front = []
    for i in front_idx:
        p = {**rows[i], "objective_vector": [float(v) for v in F[i]],
             "crowding": None if math.isinf(crowd[i]) else float(crowd[i]), "boundary": bool(math.isinf(crowd[i]))}
        p.pop("rank")
        arch_def = space.arch_def(p["arch"])
        if arch_def is not None:
            p["timm_arch_def"] = arch_def
        front.append(p)
    out = {"rows": rows, "front": front, "front_size": len(front), "F": F, "valid": valid}
    if truth is not None:
        out["true_accuracy_source"] = f"{truth_source} (reporting only; the search never saw it)"
    if len(objectives) == 2 and len(idx):
        lo, hi = F[idx].min(axis=0), F[idx].max(axis=0)
        gens = np.asarray([r["generation"] if r["generation"] is not None else 0 for r in rows])

        def hv(mask):
            sel = idx[mask[idx]]
            return hypervolume_2d(normalise(F[sel], lo, hi), (1.0, 1.0)) if len(sel) else 0.0
        out["hypervolume"] = {
            "value": hv(np.ones(len(rows), bool)),
            "by_generation": [hv(gens <= g) for g in range(int(gens.max()) + 1)],
            "objectives": list(objectives), "reference_point": [1.0, 1.0],
            "normalisation": (f"each minimised objective mapped by min -> 0, max -> 1 over the {len(idx)} "
                              "evaluated candidates with finite objectives; points on the reference (a "
                              "per-objective maximum) add nothing"),
            "lo": [float(v) for v in lo], "hi": [float(v) for v in hi]}
    return out


_UNITS = {"macs": ("MACs (M)", 1e-6), "params": ("params (M)", 1e-6)}


def axis_label(objective: str, summary: dict) -> tuple[str, str, float]:
    """(label with unit, record key, scale) of one objective in natural units."""
    if objective == "score":
        return f"{summary['estimator']} score (higher is better)", "score", 1.0
    if objective == "latency":
        return f"latency (ms; {summary.get('latency_source') or 'no source'})", "latency_ms", 1.0
    label, scale = _UNITS[objective]
    return label, objective, scale


def _csv_text(rows: list[dict], columns: list[str]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r[k]) for k in columns})
    return buf.getvalue()


def write_pareto_outputs(run_dir: Path, summary: dict, result: dict, describe: str, label: str) -> None:
    """front.json, front.csv, evaluated.csv, summary.json, summary.md, then front.png (a failed plot
    costs nothing else). Every file is written to a temporary name and moved into place. ``describe``:
    the search in a few words for summary.md; ``label``: its name for the plot's title."""
    run_dir = Path(run_dir)
    objectives = summary["objectives"]
    front_doc = {k: summary[k] for k in ("run", "space", "objectives", "objective_sense", "estimator",
                                         "estimator_config_hash", "latency_source", "constraints", "evaluated")}
    for k in ("hypervolume", "true_accuracy_source"):
        if k in summary:
            front_doc[k] = summary[k]
    front_doc["crowding_note"] = "crowding null = infinite (a boundary point of the front)"
    front_doc["points"] = summary["front"]
    _atomic_write(run_dir / "front.json", json.dumps(_json_safe(front_doc), indent=1))
    extra = ["true_accuracy"] if "true_accuracy_source" in summary else []
    obj_cols = [f"objective_{o}" for o in objectives]
    flat = [{**p, **dict(zip(obj_cols, p["objective_vector"]))} for p in summary["front"]]
    _atomic_write(run_dir / "front.csv", _csv_text(
        flat, ["arch", "score", "macs", "params", "latency_ms", *obj_cols, "crowding", "generation", *extra]))
    rows = [{**r, "on_front": r["rank"] == 0} for r in result["rows"]]
    _atomic_write(run_dir / "evaluated.csv", _csv_text(
        rows, ["arch", "generation", "status", "score", "macs", "params", "latency_ms", "rank", "on_front", *extra]))
    _atomic_write(run_dir / "summary.json", json.dumps(_json_safe(summary), indent=1))
    _atomic_write(run_dir / "summary.md", render_pareto_summary(summary, describe))
    try:
        plot_front(run_dir / "front.png", summary, result, label)
    except Exception as e:  # a plot never costs the run its results
        print(f"mote pareto: front.png skipped ({type(e).__name__}: {e})", file=sys.stderr)


def render_pareto_summary(s: dict, describe: str, top: int = 50) -> str:
    from ..units import fmt_count
    bounds = ", ".join(f"{k.replace('max_', '')} <= {v:g}" for c in s["constraints"] for k, v in c.items() if v)
    lines = [f"# Pareto search `{s['run']}`", "",
             f"- space **{s['space']}**, {describe}, estimator **{s['estimator']}** "
             f"(config {s['estimator_config_hash']}), seed {s['seed']}, device {s['device']}",
             f"- objectives: {', '.join(s['objectives'])} ({s['objective_sense']})",
             f"- latency: {s['latency_source'] or 'none'}; hard bounds: {bounds or 'none'}",
             f"- evaluated {s['evaluated']} ({s['failed']} failed); this session scored {s['scored_this_session']}, "
             f"took {s['taken_from_store']} from the store; estimator seconds {s['estimator_seconds']:.1f}",
             f"- front: **{s['front_size']}** non-dominated candidates among the evaluated"]
    if "hypervolume" in s:
        lines.append(f"- hypervolume (normalised, reference (1, 1)): **{s['hypervolume']['value']:.4f}**")
    lines += [""]
    acc = "true_accuracy_source" in s
    lines += ["| # | score | MACs | params | latency ms |" + (" true acc % |" if acc else "") + " arch |",
              "|---|---|---|---|---|" + ("---|" if acc else "") + "---|"]
    for i, p in enumerate(s["front"][:top], 1):
        lat = "-" if p["latency_ms"] is None else f"{p['latency_ms']:.4g}"
        sc = "-" if p["score"] is None else f"{p['score']:.5g}"
        ta = "" if not acc else (" - |" if p.get("true_accuracy") is None else f" {p['true_accuracy']:.2f} |")
        lines.append(f"| {i} | {sc} | {fmt_count(p['macs'])} | {fmt_count(p['params'])} | {lat} |{ta} `{p['arch']}` |")
    if len(s["front"]) > top:
        lines.append(f"| … | {len(s['front']) - top} more in front.csv | | | |" + (" |" if acc else "") + " |")
    if acc:
        lines += ["", f"True accuracy: {s['true_accuracy_source']}."]
    lines += ["", "Files: `front.json`, `front.csv`, `evaluated.csv`, `front.png`, `summary.json`.", ""]
    return "\n".join(lines)


def plot_front(path: Path, summary: dict, result: dict, label: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    o1, o2 = summary["objectives"][:2]
    if o1 == "score":  # score reads best on the y axis, a cost on the x axis
        o1, o2 = o2, o1
    (xl, xk, xs), (yl, yk, ys) = axis_label(o1, summary), axis_label(o2, summary)
    ok = [r for r in result["rows"] if r.get(xk) is not None and r.get(yk) is not None]
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    ax.scatter([r[xk] * xs for r in ok], [r[yk] * ys for r in ok], s=10, c="0.7",
               label=f"evaluated ({len(ok)})")
    front = [p for p in summary["front"] if p.get(xk) is not None and p.get(yk) is not None]
    fx = np.array([p[xk] * xs for p in front])
    fy = np.array([p[yk] * ys for p in front])
    if len(front):
        order = np.argsort(fx, kind="stable")
        if len(summary["objectives"]) == 2:
            ax.step(fx[order], fy[order], where="post", color="tab:red", lw=1)
        ax.scatter(fx, fy, s=28, color="tab:red", edgecolor="k", zorder=5, label=f"Pareto front ({len(front)})")
    ax.set_xlabel(xl)
    ax.set_ylabel(yl)
    title = f"{summary['run']}: {summary['space']}, {label}"
    if "hypervolume" in summary:
        title += f", HV {summary['hypervolume']['value']:.3f}"
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    with _atomic_path(path, tmp=path.with_name(f".{path.name}.{os.getpid()}.tmp.png")) as tmp:
        fig.savefig(tmp, dpi=110)  # matplotlib reads the format from the suffix
    plt.close(fig)


def print_front(spec, summary: dict) -> None:
    """What `mote pareto` prints: one JSON line per front point, then where the files are."""
    for p in summary["front"]:
        line = {"arch": p["arch"], "score": p["score"], "macs": p["macs"], "params": p["params"],
                "latency_ms": p["latency_ms"], "objectives": dict(zip(summary["objectives"], p["objective_vector"]))}
        if "true_accuracy" in p:
            line["true_accuracy"] = p["true_accuracy"]
        print(json.dumps(line))
    hv = summary.get("hypervolume")
    print(f"front: {summary['front_size']} non-dominated of {summary['evaluated']} evaluated"
          + (f", hypervolume {hv['value']:.4f} (normalised, ref (1, 1))" if hv else "")
          + f"; results in {spec.run_dir}/ (front.json, front.csv, evaluated.csv, front.png, summary.md)",
          file=sys.stderr)
