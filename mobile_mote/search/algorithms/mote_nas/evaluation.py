"""The evaluation stage: a short real training of the top-k candidates; the best one wins.

On NB201 with the benchmark table, "short real training" is the table's 12-epoch accuracy and
its measured training time (as the paper does). Elsewhere (NAS-Bench-Macro included: it has no
short-training figure) the reduced architecture is trained longer than the estimator does and tested
on the proxy data's held-out split.

An evaluator is a second fidelity scored like the search's own: a scorer (``search/scorer.py``'s
interface) whose records go through ``score_candidates`` into the store under (space, arch, its
config hash, its seed), so a killed stage resumes candidate by candidate and a rerun reads them back.
``evaluation(record)`` turns a stored record into the stage's evaluation (what winners.json shows).
"""
from __future__ import annotations

from ....estimators.record import Estimate, config_hash


class _Evaluator:
    num_processes = 1
    chunk = 1  # stored one by one: a kill loses at most the evaluation in flight

    def score(self, archs: list[str]) -> list[dict]:
        return [self.record(a) for a in archs]


class TableEvaluator(_Evaluator):
    """A benchmark's own short-training figure (NB201: 12-epoch accuracy and its training time)."""
    seed = 0  # the table's figure is the same for every seed: one record serves them all

    def __init__(self, benchmark, space_name: str):
        self.benchmark, self.space_name = benchmark, space_name
        self.describe = benchmark.evaluation_source
        self.config = {"estimator": "short_training", "source": benchmark.evaluation_source}
        self.config_hash = config_hash(self.config)

    def record(self, arch: str) -> dict:
        ev = self.benchmark.short_training(arch)
        return Estimate(space=self.space_name, arch=arch, estimator="short_training", score=ev.get("accuracy"),
                        terms=ev, config=self.config, config_hash=self.config_hash, seed=self.seed, device="table",
                        seconds=ev.get("seconds") or 0.0, status="ok" if ev.get("accuracy") is not None else "failed",
                        error=ev.get("error")).to_dict()

    @staticmethod
    def evaluation(rec: dict) -> dict:
        return rec["terms"]


class TrainingEvaluator(_Evaluator):
    """``early_stop_acc`` with a longer schedule than the estimator's, no landscape walk. Its records
    are that estimator's own, so a search scored by the same configuration shares them."""

    def __init__(self, space, data, seed: int = 0, device: str = "cpu", epochs: int = 12, **overrides):
        from ....estimators import get_estimator
        self.space, self.data, self.seed, self.device = space, data, seed, device
        self.est = get_estimator("early_stop_acc", epochs=epochs, points=0, **overrides)
        self.config_hash = self.est.config_hash()
        self.describe = (f"reduced architecture trained {epochs} epochs on the proxy data, accuracy on its "
                         "test split (training split if it has none)")

    def record(self, arch: str) -> dict:
        return self.est.estimate(self.space, arch, self.data, self.seed, self.device).to_dict()

    @staticmethod
    def evaluation(rec: dict) -> dict:
        acc = None if rec["score"] is None else 100.0 * rec["score"]
        return {"accuracy": acc, "seconds": rec["seconds"], "source": "trained", "status": rec["status"],
                "error": rec["error"]}


def evaluator_for(ctx):
    """The run's evaluation stage: the benchmark's short-training figure when it has one, else a
    short real training of the reduced network on the proxy data."""
    if ctx.benchmark is not None and ctx.benchmark.short_training is not None:
        return TableEvaluator(ctx.benchmark, ctx.space.name)
    data = ctx.data
    if data is None:
        from ....data.default_data import resolve_proxy_data
        data = resolve_proxy_data(ctx.spec.proxy_data, quiet=True)
    shared = {k: v for k, v in ctx.spec.estimator_config.items() if k in ctx.estimator.evaluation_keys}
    return TrainingEvaluator(ctx.space, data, ctx.spec.seed, ctx.spec.device, ctx.algorithm_config.eval_epochs,
                             **shared)
