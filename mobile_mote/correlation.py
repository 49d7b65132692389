"""Rank agreement of estimators with NB201 ground truth: the logic behind tools/correlation.py."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from scipy import stats

from .benchmarks.nb201 import NB201Row

TARGETS = ("cifar10", "cifar100", "imagenet16")


def rank_agreement(scores, truth) -> dict:
    """Kendall tau-b and Spearman rho over the pairs where both are finite."""
    s = np.asarray([np.nan if v is None else v for v in scores], dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    ok = np.isfinite(s) & np.isfinite(t)
    if ok.sum() < 3:
        return {"kendall_tau": None, "spearman_rho": None, "n": int(ok.sum())}
    return {"kendall_tau": float(stats.kendalltau(s[ok], t[ok]).statistic),
            "spearman_rho": float(stats.spearmanr(s[ok], t[ok]).statistic),
            "n": int(ok.sum())}


def table_baselines(archs: list[str], table: dict[str, NB201Row], space) -> dict[str, dict[str, list]]:
    """Scores that need no training here: the table's 12-epoch accuracy, our MACs and params.

    ``acc12`` is read from the benchmark (it was measured there, not here) and is labelled so.
    """
    out = {"acc12 (benchmark table)": {}, "macs": {}, "params": {}}
    for d in TARGETS:
        out["acc12 (benchmark table)"][d] = [table[a].acc12.get(d) for a in archs]
    classes = {"cifar10": 10, "cifar100": 100, "imagenet16": 120}
    res = {"cifar10": 32, "cifar100": 32, "imagenet16": 16}
    for d in TARGETS:
        out["macs"][d] = [space.macs(a, res[d], classes[d]) for a in archs]
        out["params"][d] = [space.params(a, classes[d]) for a in archs]
    return out


def mote_views(records: list[dict]) -> dict[str, list]:
    """Per-term scores from MOTE records: landscape alone, speed alone (wall and cost time)."""
    views: dict[str, list] = {"mote: landscape term": [], "mote: speed term": [], "mote: speed term (cost time)": []}
    for r in records:
        t = r.get("terms", {}) if r.get("status") == "ok" else {}
        views["mote: landscape term"].append(-t["landscape"] if "landscape" in t else None)
        views["mote: speed term"].append(-t["speed"] if "speed" in t else None)
        if "train_losses" in t and "reduced_macs" in t and "samples_per_epoch" in t:
            cost = 3.0 * t["reduced_macs"] * t["samples_per_epoch"] / 1e9
            views["mote: speed term (cost time)"].append(-float(np.sum(np.asarray(t["train_losses"]) / cost)))
        else:
            views["mote: speed term (cost time)"].append(None)
    return views


def read_jsonl(path: Path) -> list[dict]:
    """Records of a JSON-lines file; a torn last line (a kill mid-write) is dropped."""
    out = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def plot_ranks(path: Path, archs: list[str], scores: dict[str, list], truth: list[float], target: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = list(scores)
    cols = min(3, len(names))
    rows = int(np.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.6 * rows), squeeze=False)
    t_rank = stats.rankdata(truth)
    for ax, name in zip(axes.flat, names):
        s = np.asarray([np.nan if v is None else v for v in scores[name]], dtype=float)
        ok = np.isfinite(s)
        ax.scatter(stats.rankdata(s[ok]), t_rank[ok], s=6, alpha=0.6)
        tau = rank_agreement(s, truth)["kendall_tau"]
        ax.set_title(f"{name}\n\u03c4={tau:.3f}" if tau is not None else name, fontsize=9)
        ax.set_xlabel("estimator rank")
        ax.set_ylabel(f"{target} rank (true accuracy)")
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_tau_cost(path: Path, summary: dict, target: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    names = [n for n in summary if summary[n]["agreement"][target]["kendall_tau"] is not None]
    taus = [summary[n]["agreement"][target]["kendall_tau"] for n in names]
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * len(names)), 4))
    ax.bar(range(len(names)), taus, color="tab:blue")
    for i, n in enumerate(names):
        sec = summary[n].get("seconds_per_cell")
        label = "table" if sec is None else f"{sec:.2g}s"
        ax.text(i, taus[i], label, ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(names)))
    ax.set_xticklabels(names, rotation=35, ha="right", fontsize=8)
    ax.set_ylabel(f"Kendall \u03c4 vs {target} 200-epoch accuracy")
    ax.set_title("rank agreement (label: seconds per cell on this machine)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
