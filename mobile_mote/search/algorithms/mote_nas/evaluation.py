"""The evaluation stage: a short real training of the top-k candidates; the best one wins.

On NB201 with the benchmark table, "short real training" is the table's 12-epoch accuracy and
its measured training time (as the paper does). Elsewhere (NAS-Bench-Macro included: it has no
short-training figure) the reduced architecture is trained longer than the estimator does and tested
on the proxy data's held-out split.
"""
from __future__ import annotations


class TableEvaluator:
    """A benchmark's own short-training figure (NB201: 12-epoch accuracy and its training time)."""

    def __init__(self, benchmark):
        self.benchmark = benchmark
        self.describe = benchmark.evaluation_source

    def __call__(self, arch: str) -> dict:
        return self.benchmark.short_training(arch)


class TrainingEvaluator:
    """``early_stop_acc`` with a longer schedule than the estimator's, no landscape walk."""

    def __init__(self, space, data, seed: int = 0, device: str = "cpu", epochs: int = 12, **overrides):
        from ....estimators import get_estimator
        self.space, self.data, self.seed, self.device = space, data, seed, device
        self.est = get_estimator("early_stop_acc", epochs=epochs, points=0, **overrides)
        self.describe = (f"reduced architecture trained {epochs} epochs on the proxy data, accuracy on its "
                         "test split (training split if it has none)")

    def __call__(self, arch: str) -> dict:
        rec = self.est.estimate(self.space, arch, self.data, self.seed, self.device)
        acc = None if rec.score is None else 100.0 * rec.score
        return {"accuracy": acc, "seconds": rec.seconds, "source": "trained", "status": rec.status,
                "error": rec.error}


def evaluator_for(ctx):
    """The run's evaluation stage: the benchmark's short-training figure when it has one, else a
    short real training of the reduced network on the proxy data."""
    if ctx.benchmark is not None and ctx.benchmark.short_training is not None:
        return TableEvaluator(ctx.benchmark)
    data = ctx.data
    if data is None:
        from ....data.default_data import resolve_proxy_data
        data = resolve_proxy_data(ctx.spec.proxy_data, quiet=True)
    shared = {k: v for k, v in ctx.spec.estimator_config.items() if k in ctx.estimator.evaluation_keys}
    return TrainingEvaluator(ctx.space, data, ctx.spec.seed, ctx.spec.device, ctx.algorithm_config.eval_epochs,
                             **shared)
