"""What every multi-objective algorithm (``mote pareto --algorithm``) shares: its objectives, the run's
feasibility and objective rows, and its final step, the front over everything it evaluated
(``search/pareto_outputs.py`` writes it). A subclass is the search itself: ask/tell, ``Config``
(an ``ObjectivesConfig``), ``archive()`` and ``describe()``."""
from __future__ import annotations

from dataclasses import dataclass, field

from ...plain import json_safe
from .contract import Algorithm, ConfigBase, cli_option

OBJECTIVES = ("score", "macs", "params", "latency")
DEFAULT_OBJECTIVES = ("score", "latency")


def parse_objectives(text: str) -> tuple:
    return tuple(o.strip() for o in text.split(",") if o.strip())


@dataclass
class ObjectivesConfig(ConfigBase):
    objectives: tuple = field(default=DEFAULT_OBJECTIVES, metadata=cli_option(  # at least two distinct names
        f"two or more of {', '.join(OBJECTIVES)}, comma-separated (default {','.join(DEFAULT_OBJECTIVES)}); "
        "score is maximised, the costs minimised", parse_objectives))

    def validate(self, space_size: int | None = None) -> None:
        from ...errors import InputError
        objs = tuple(self.objectives)
        bad = [o for o in objs if o not in OBJECTIVES]
        if bad:
            raise InputError(f"objective {bad[0]!r}; accepted: {', '.join(OBJECTIVES)} (two or more, comma-separated)")
        if len(set(objs)) != len(objs) or len(objs) < 2:
            raise InputError(f"objectives {','.join(objs) or '(none)'}; accepted: two or more distinct of "
                             f"{', '.join(OBJECTIVES)}, e.g. score,latency")

    def to_dict(self) -> dict:
        d = super().to_dict()
        d["objectives"] = list(self.objectives)
        return d


class FrontSearch(Algorithm):
    command = "pareto"
    label = "multi-objective search"  # the front plot's title names it
    reporting_only = ("benchmark", "benchmark_dataset")  # the benchmark only annotates the front

    @classmethod
    def uses_latency(cls, config) -> bool:
        return "latency" in config.objectives

    @classmethod
    def check_run(cls, ctx) -> None:
        from ...errors import InputError
        if len(ctx.spec.constraints) > 1:
            raise InputError("mote pareto takes one bound per cost (e.g. --flops 300M); the front covers every "
                             "budget below it")

    @staticmethod
    def run_feasible(ctx):
        """``feasible(arch)``: every hard bound of the run."""
        constraints, costs = ctx.spec.constraints, ctx.costs
        return lambda a: all(c.admits(costs(a)) for c in constraints)

    @staticmethod
    def run_objectives(ctx, objectives):
        """``objectives(archs, records by arch) -> (n, m)`` minimised objectives, ranked as the run ranks."""
        from ..pareto_outputs import objective_rows
        objectives = tuple(objectives)
        return lambda archs, records: objective_rows(objectives, archs, ctx.rank(records), ctx.costs)

    def archive(self) -> list[str]:
        """Every architecture it evaluated, in order."""
        raise NotImplementedError

    def describe(self, summary: dict) -> str:
        """The search in a few words for summary.md (its settings included)."""
        return self.name

    def summary_extra(self) -> dict:
        """Its own counters for the summary."""
        return {}

    def finish(self, ctx, store, stats: dict, progress: bool = False) -> dict:
        from ..finish import common_summary
        from ..pareto_outputs import pareto_result, write_pareto_outputs
        spec, state = ctx.spec, self.state
        known = {r["arch"]: r for r in store.run_records(spec.name)}  # with the generation that added each
        known = {r["arch"]: r for r in ctx.ranked(list(known.values()))}  # ranked as the search ranked them
        evaluated = [known[a] for a in self.archive() if a in known]
        truth = ctx.benchmark.truth() if ctx.benchmark is not None else None
        objectives = tuple(self.cfg.objectives)
        result = pareto_result(spec, ctx.space, objectives, evaluated, ctx.costs, truth,
                               ctx.benchmark.truth_source if ctx.benchmark is not None else None)
        common = common_summary(ctx, stats, evaluated)
        summary = {
            **{k: common[k] for k in ("run", "space", "algorithm", "profile")}, "objectives": list(objectives),
            "objective_sense": "minimised inside the search; score enters negated (higher is better)",
            **{k: common[k] for k in ("estimator", "estimator_config", "estimator_config_hash")},
            "pareto": self.cfg.to_dict(), "constraints": common["constraints"],
            "latency_source": ctx.costs.latency_source, "seed": spec.seed, "device": spec.device,
            "evaluated": len(evaluated),
            "failed": sum(r.get("status") != "ok" for r in evaluated),
            **{k: common[k] for k in ("scored_this_session", "taken_from_store", "estimator_seconds",
                                      "wall_seconds_this_session")},
            "drawn": state.get("drawn_total"), "infeasible_drawn": state.get("infeasible_total"),
            **self.summary_extra(),
            **{k: result[k] for k in ("front_size", "hypervolume", "true_accuracy_source") if k in result},
            "front": result["front"], "history": state.get("history", []),
        }
        write_pareto_outputs(spec.run_dir, summary, result, self.describe(summary), self.label)
        store.save_result(spec.name, "pareto", json_safe(summary))
        return summary

    @classmethod
    def report(cls, spec, summary: dict) -> int | None:
        from ..pareto_outputs import print_front
        print_front(spec, summary)
        return None
