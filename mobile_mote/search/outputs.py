"""What a search that picks winners (MOTE-NAS and its variants) leaves in runs/<name>/: winner.json,
summary.md, summary.json and plots, and what `mote search` prints of them."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from ..atomic import write_text as _atomic_write
from ..units import fmt_count

# The exit status of a search that ran but found no winner for a budget: every candidate failed, or
# none was scored. Bad input is 2, an interrupt 130, a winner for every budget 0.
NO_WINNER = 3


def non_dominated(points: list[tuple[float, float]]) -> list[int]:
    """Indices of points not dominated under (maximise score, minimise cost)."""
    order = sorted(range(len(points)), key=lambda i: (points[i][1], -points[i][0]))
    front, best = [], -np.inf
    for i in order:
        if points[i][0] > best:
            front.append(i)
            best = points[i][0]
    return front


def winner_record(summary: dict, w: dict) -> dict:
    """The winner as the retraining step reads it: arch, timm arch_def, costs, score, provenance
    (``mobile_mote.winner.WinnerRecord``, the one reader and writer of winner.json, as a plain dict)."""
    from mobile_mote.search_spaces import get_space

    from ..winner import WinnerRecord
    return WinnerRecord.from_summary(summary, w, get_space(summary["space"])).to_dict()


def write_outputs(run_dir: Path, summary: dict, pool: list[dict], constraints) -> None:
    run_dir = Path(run_dir)
    winners = [winner_record(summary, w) for w in summary["winners"] if w.get("arch")]
    if winners:
        _atomic_write(run_dir / "winner.json", json.dumps(winners[0], indent=2))
    if len(winners) > 1:
        (run_dir / "winners").mkdir(exist_ok=True)
        for w, wsum in zip(winners, [w for w in summary["winners"] if w.get("arch")]):
            _atomic_write(run_dir / "winners" / f"{wsum['label']}.json", json.dumps(w, indent=2))
    _atomic_write(run_dir / "summary.json", json.dumps(summary, indent=1))
    _atomic_write(run_dir / "summary.md", render_summary(summary))
    try:
        plot_run(run_dir, summary, pool, constraints)
    except Exception as e:  # a plot never costs the run its results
        print(f"mote search: plots skipped ({type(e).__name__}: {e})")


def render_summary(s: dict, top: int = 10) -> str:
    lines = [f"# Search `{s['run']}`", "",
             f"- space **{s['space']}**, algorithm **{s['algorithm']}**, estimator **{s['estimator']}** "
             f"(config {s['estimator_config_hash']}), seed {s['seed']}, device {s['device']}",
             f"- candidates scored: {s['candidates']} ({s['failed']} failed); this session scored "
             f"{s['scored_this_session']}, took {s['taken_from_store']} from the store",
             f"- estimator seconds (sum over candidates): {s['estimator_seconds']:.1f}",
             f"- evaluation stage: {s['evaluation']}"]
    if s.get("data_quality") == "demo":
        lines.append("- **proxy data: demo quality** (the offline MNIST fallback; not for real searches)")
    lines.append("")
    for w in s["winners"]:
        c = w["constraint"]
        budget = ", ".join(f"{k.replace('max_', '')} <= {fmt_count(v) if 'latency' not in k else f'{v:g} ms'}"
                           for k, v in c.items() if v) or "none"
        lines.append(f"## Budget: {budget}")
        if not w.get("arch"):
            lines += [f"No winner: {w.get('error')}", ""]
            continue
        ev = w.get("evaluation") or {}
        lines += [f"- winner: `{w['arch']}`",
                  f"- MACs {fmt_count(w['macs'])} ({w['macs']:,}), params {fmt_count(w['params'])} ({w['params']:,})"
                  + (f", latency {w['latency_ms']:.3g} ms" if w.get("latency_ms") is not None else ""),
                  f"- score {w['score']:.5g}" + (f", evaluation accuracy {ev['accuracy']:.2f} %" if ev.get("accuracy") is not None else "")]
        if w.get("final_accuracy") is not None:
            lines.append(f"- {w['final_accuracy_source']}: **{w['final_accuracy']:.2f} %**"
                         + (f", rank {w['final_rank_networks']} of {w['feasible_networks']} feasible networks "
                            f"({w['final_rank']} of {w['feasible_architectures']} keys; best "
                            f"{w['best_feasible_accuracy']:.2f} %)" if w.get("final_rank_networks") else
                            f", rank {w['final_rank']} of {w['feasible_architectures']} feasible (best "
                            f"{w['best_feasible_accuracy']:.2f} %)" if w.get("final_rank") else ""))
        lines += ["", "| rank | score | eval acc % | arch |", "|---|---|---|---|"]
        for i, t in enumerate(w["top_k"][:top], 1):
            acc = (t.get("evaluation") or {}).get("accuracy")
            lines.append(f"| {i} | {t['score']:.5g} | {'-' if acc is None else f'{acc:.2f}'} | `{t['arch']}` |")
        lines.append("")
    lines += ["Plots: `score_vs_macs.png`, `best_per_iteration.png`, `cost.png`.", ""]
    return "\n".join(lines)


def _data_note(summary: dict) -> str:
    return " (DEMO data: offline MNIST)" if summary.get("data_quality") == "demo" else ""


def plot_run(run_dir: Path, summary: dict, pool: list[dict], constraints) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [r for r in pool if r.get("score") is not None]
    if ok:
        fig, ax = plt.subplots(figsize=(6, 4.2))
        macs = np.array([r["macs"] for r in ok]) / 1e6
        sc = np.array([r["score"] for r in ok])
        ax.scatter(macs, sc, s=8, alpha=0.5, label="candidates")
        front = non_dominated(list(zip(sc, macs)))
        f = sorted(front, key=lambda i: macs[i])
        ax.plot(macs[f], sc[f], "r.-", label="non-dominated (score, MACs)")
        for c in constraints:
            if c.max_macs:
                ax.axvline(c.max_macs / 1e6, color="k", ls="--", lw=1)
        for w in summary["winners"]:
            if w.get("arch"):
                ax.scatter([w["macs"] / 1e6], [w["score"]], marker="*", s=160, color="gold", edgecolor="k", zorder=5)
        ax.set_xlabel("MACs (M)")
        ax.set_ylabel(f"{summary['estimator']} score (higher is better)")
        ax.set_title(f"{summary['run']}: {len(ok)} candidates" + _data_note(summary))
        ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(run_dir / "score_vs_macs.png", dpi=110)
        plt.close(fig)
    hist = summary.get("history", [])
    if hist:
        fig, ax = plt.subplots(figsize=(6, 3.6))
        its = [h["iteration"] for h in hist]
        ax.plot(its, [h["best"] if h["best"] is not None else np.nan for h in hist], "o-")
        ax2 = ax.twinx()
        ax2.bar(its, [h["scored"] for h in hist], alpha=0.25, color="gray")
        ax2.set_ylabel("newly scored")
        ax.set_xlabel("iteration")
        ax.set_ylabel("best score in pool")
        ax.set_title(f"{summary['run']}: best score per iteration" + _data_note(summary), fontsize=10)
        fig.tight_layout()
        fig.savefig(run_dir / "best_per_iteration.png", dpi=110)
        plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 3.4))
    evals = sum(w.get("evaluation_seconds", 0.0) for w in summary["winners"])
    parts = {"estimator": summary["estimator_seconds"], "evaluation stage": evals}
    ax.bar(list(parts), list(parts.values()), color=["tab:blue", "tab:orange"])
    for i, v in enumerate(parts.values()):
        ax.text(i, v, f"{v:.0f} s", ha="center", va="bottom")
    ax.set_ylabel("seconds")
    ax.set_title("cost breakdown" + _data_note(summary))
    fig.tight_layout()
    fig.savefig(run_dir / "cost.png", dpi=110)
    plt.close(fig)


def print_winners(spec, summary: dict) -> int:
    """What `mote search` prints: one JSON line per budget's winner; NO_WINNER when a budget has none
    (its files are written all the same)."""
    status = 0
    for w in summary["winners"]:
        if not w.get("arch"):
            print(f"{w['label']}: no winner ({w.get('error')})", file=sys.stderr)
            status = NO_WINNER
            continue
        line = {"budget": w["label"], "arch": w["arch"], "macs": w["macs"], "params": w["params"], "score": w["score"]}
        if w.get("evaluation") and w["evaluation"].get("accuracy") is not None:
            line["evaluation_accuracy"] = w["evaluation"]["accuracy"]
        if w.get("final_accuracy") is not None:
            line["final_accuracy"] = w["final_accuracy"]
            if w.get("final_rank_networks") is not None:
                line["final_rank"] = (f"{w['final_rank_networks']} of {w['feasible_networks']} networks "
                                      f"({w['final_rank']} of {w['feasible_architectures']} keys)")
            elif w.get("final_rank") is not None:
                line["final_rank"] = f"{w['final_rank']} of {w['feasible_architectures']}"
        print(json.dumps(line))
    print(f"results in {spec.run_dir}/ (winner.json, summary.md, plots); `mote show {spec.run_dir}`", file=sys.stderr)
    return status
