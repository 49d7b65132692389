"""What a run needs, built once from its spec: the space, the algorithm's class and settings, the
costs with their latency source, the estimator, the benchmark, the proxy data and what the algorithm's
final step needs. Building it checks every option that needs no store and no scoring, so bad input
fails before any run state exists."""
from __future__ import annotations

import sys
from dataclasses import replace
from functools import cached_property, partial

from ..efficiency import Constraint, check_achievable, make_costs
from ..errors import InputError
from .spec import RunSpec, check_run_name


class RunContext:
    def __init__(self, spec: RunSpec, log=None):
        from mobile_mote.search_spaces import get_space

        from ..devices import resolve_device
        from ..estimators import get_estimator

        # The device first (banana, cuda without a GPU: one line, no run state). Without torch here, so
        # later input errors stay quick; what needs torch (auto on a GPU machine) launch_run asks in full.
        # The caller's spec is left as given: the context holds its own copy.
        spec = replace(spec, device=resolve_device(spec.device, import_torch=False))
        check_run_name(spec.name)  # runs/<name> stays inside the runs folder
        self.spec = spec
        self.log = log or (lambda msg: print(msg, file=sys.stderr))
        self.space = get_space(spec.space)
        from .algorithms import algorithm_class
        self.algorithm_class = algorithm_class(spec.algorithm)
        self.algorithm_config = self.algorithm_class.config_of(spec.algorithm_config)
        self.algorithm_class.check_config(self.algorithm_config, self.space.size())
        self.algorithm_class.check_run(self)
        # a table keyed by a benchmark's index is translated through --benchmark (or benchmark.csv beside it)
        from ..benchmarks.nb201 import NB201Index
        self.costs = make_costs(self.space, spec.latency_table, spec.latency_device, spec.latency_lut,
                                partial(NB201Index.beside, explicit=spec.benchmark))
        wants_latency = (any(c.max_latency_ms for c in spec.constraints)
                         or self.algorithm_class.uses_latency(self.algorithm_config))
        if wants_latency and self.costs.latency is None:
            raise InputError("a latency budget or objective needs a latency source: --latency-table with "
                             "--latency-device (finite spaces such as nb201), or --latency-lut (block spaces, "
                             "from `mote latency-lut`)")
        check_achievable(self.space, spec.constraints, self.costs)
        self.estimator = get_estimator(spec.estimator, **spec.estimator_config)
        from ..concurrent import check_workers
        check_workers(self.estimator, spec.workers)
        self.config_hash = self.estimator.config_hash()
        self.benchmark = None
        from ..benchmarks import load_benchmark, packaged_benchmark
        bench = spec.benchmark or packaged_benchmark(spec.space)  # reporting only: the search never reads it
        if bench:
            self.benchmark = load_benchmark(bench, spec.space, spec.benchmark_dataset)

    # -- built on first use, once ---------------------------------------------------------------
    @cached_property
    def data(self):
        """The reduced data set (None for estimators that never look at images)."""
        if not self.estimator.needs_data:
            return None
        from ..data.default_data import resolve_proxy_data
        return resolve_proxy_data(self.spec.proxy_data)

    @cached_property
    def prepared(self):
        """What the algorithm's final step needs (``Algorithm.prepare``: MOTE-NAS's evaluation stage)."""
        return self.algorithm_class.prepare(self)

    def make_algorithm(self):
        return self.algorithm_class.for_run(self)

    def rank(self, records: dict[str, dict]) -> dict[str, dict]:
        """``records`` by arch with the score the search ranks by (``search/ranking.py``)."""
        from .ranking import pool_ranked_by_arch
        return pool_ranked_by_arch(self.estimator, records)

    def ranked(self, records: list[dict]) -> list[dict]:
        """``records`` with the score the search ranks by (``search/ranking.py``)."""
        from .ranking import pool_ranked
        return pool_ranked(self.estimator, records)


def loosest_constraint(constraints: list[Constraint]) -> Constraint:
    """The bound every budget shares: per cost, the largest value when every budget bounds it."""
    def widest(key):
        vals = [getattr(c, key) for c in constraints]
        return max(vals) if vals and all(v for v in vals) else None
    return Constraint(widest("max_macs"), widest("max_params"), widest("max_latency_ms"))
