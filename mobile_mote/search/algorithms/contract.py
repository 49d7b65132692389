"""What every search algorithm is to the driver and the CLI: pymoo's ask/tell shape, timm's registration.

An algorithm is a class registered under a name (``@register_algorithm("nsga2")``) with

- ``Config``: a dataclass of its settings (``validate(space_size)``, ``to_dict()``); a field whose
  metadata holds ``cli_option(...)`` is a command-line option of the command that runs it;
- ``PROFILES``: its settings per ``--profile`` name (beside the ``Config`` they set);
- ``for_run(ctx)``: the instance for a run (``ctx``: ``search.context.RunContext``);
- ``start(state, records)`` / ``ask(rng)`` / ``tell(records, scored)`` / ``done``, with a JSON-able
  ``state`` whose ``counter`` key counts the finished steps (the driver stores it with each step);
- ``finish(ctx, store, stats, progress)``: its final step; writes its outputs, returns the summary;
- ``report(spec, summary)``: what the CLI prints of that summary (its exit status, None for 0).

The driver owns the RNG, the store, resume and progress; an algorithm never sees a model.
"""
from __future__ import annotations

import numbers
from dataclasses import asdict, fields

import numpy as np

# What a run's time can hold: at most this many iterations (MOTE-NAS) or generations (NSGA-II), and at
# most MAX_DRAW candidates drawn in one iteration. Far above any setting of the paper (k <= 100).
MAX_STEPS = 10_000
MAX_DRAW = 1_000_000


def check_whole(name: str, value, lo: int, hi: int, why: str = "") -> None:
    """InputError unless ``value`` is a whole number in ``lo..hi`` (``why``: what the bound is)."""
    from ...errors import InputError
    if not isinstance(value, numbers.Integral) or isinstance(value, bool) or not lo <= value <= hi:
        raise InputError(f"{name} {value!r}; accepted: a whole number from {lo} to {hi:,}"
                         + (f" ({why})" if why else ""))


def cli_option(help: str, type=None, choices=None) -> dict:
    """Field metadata making a ``Config`` field the option ``--field-name`` (default: the profile's,
    then the field's), e.g. ``k: int = field(default=10, metadata=cli_option("...", int))``."""
    return {"cli": {"help": help, "type": type, "choices": choices}}


def rng_from_state(state: dict | None, seed) -> np.random.Generator:
    rng = np.random.Generator(np.random.PCG64(seed))
    if state:
        rng.bit_generator.state = state
    return rng


class Algorithm:
    name: str  # set by the registration
    command = "search"  # the CLI command that runs it: "search" (winners) or "pareto" (a front)
    help = ""  # a few words for --algorithm's help
    option_group = "search"  # the title of its options in the command's help
    Config: type
    PROFILES: dict[str, dict] = {}
    resumable: tuple[str, ...] = ()  # Config fields a resume may change (how long it runs)
    reporting_only: tuple[str, ...] = ()  # RunSpec fields it only reports on: not part of a run's identity
    unit = "iter"
    counter = "iteration"
    state: dict

    # -- configuration ------------------------------------------------------------------------------
    @classmethod
    def config_of(cls, values) -> object:
        """The ``Config`` of ``values`` (a dict of settings, or a ``Config`` already); an unknown
        setting is an InputError naming the accepted ones."""
        if isinstance(values, cls.Config):
            return values
        cls.check_settings(values)
        return cls.Config(**values)

    @classmethod
    def check_settings(cls, values) -> None:
        from ...errors import InputError
        names = [f.name for f in fields(cls.Config)]
        unknown = [k for k in values if k not in names]
        if unknown:
            raise InputError(f"algorithm {cls.name} has no setting {unknown[0]!r}; accepted: {', '.join(names)}")

    @classmethod
    def check_config(cls, config, space_size: int | None = None) -> None:
        config.validate(space_size)

    @classmethod
    def identity(cls, config) -> dict:
        """What of its settings must match for a resume."""
        return {k: v for k, v in config.to_dict().items() if k not in cls.resumable}

    @classmethod
    def cli_fields(cls) -> list:
        return [f for f in fields(cls.Config) if "cli" in f.metadata]

    # -- what a run needs of it before anything is scored -------------------------------------------
    @classmethod
    def check_run(cls, ctx) -> None:
        """InputError for a run it cannot do (``ctx.spec``, ``ctx.algorithm_config``)."""

    @classmethod
    def uses_latency(cls, config) -> bool:
        """Whether it reads candidates' latency (then the run needs a latency source)."""
        return False

    @classmethod
    def first_step(cls, config) -> tuple[int, str]:
        """Candidates its first step scores, and what a step is called (for the CPU cost notice)."""
        raise NotImplementedError

    @classmethod
    def prepare(cls, ctx):
        """What its final step needs that bad input can break, built before any run state exists."""
        return None

    @classmethod
    def for_run(cls, ctx) -> "Algorithm":
        raise NotImplementedError

    # -- ask / tell -----------------------------------------------------------------------------------
    def start(self, state: dict | None = None, records: dict[str, dict] | None = None) -> None:
        """Begin (``state`` None) or resume from a saved state and every record the run already has."""
        raise NotImplementedError

    def ask(self, rng: np.random.Generator) -> list[str]:
        raise NotImplementedError

    def tell(self, records: list[dict], scored: int | None = None) -> None:
        """The records of the asked candidates (``scored``: how many were scored now, not read back)."""
        raise NotImplementedError

    @property
    def done(self) -> bool:
        return bool(self.state["done"])

    @property
    def step(self) -> int:
        """Index of the last finished step (the store commits under it)."""
        return self.state[self.counter] - 1

    def progress(self) -> tuple[int, int]:
        """(steps done, steps in all) for the progress bar."""
        raise NotImplementedError

    def postfix(self) -> dict:
        return {}

    # -- the end ----------------------------------------------------------------------------------------
    def finish(self, ctx, store, stats: dict, progress: bool = False) -> dict:
        raise NotImplementedError

    @classmethod
    def report(cls, spec, summary: dict) -> int | None:
        raise NotImplementedError


class ConfigBase:
    """What every ``Config`` dataclass answers besides its fields."""

    def validate(self, space_size: int | None = None) -> None:
        pass

    def to_dict(self) -> dict:
        return asdict(self)
