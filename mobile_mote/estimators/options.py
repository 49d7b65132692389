"""What an estimator option may hold, checked once when the estimator is made.

An estimator lists its rules in ``OPTIONS`` (``{field: rule}``, merged along the class hierarchy);
a Config field without a rule gets one from its annotation (``int``, ``int | None``, ``float``,
``bool``, ``str``). ``check_config`` is the one place that refuses a setting: one line,
``estimator 'mote': epochs 0; accepted: a whole number, 1 or more``.
"""
from __future__ import annotations

import math
import numbers
import typing
from dataclasses import dataclass, fields, replace

from ..errors import InputError


@dataclass(frozen=True)
class Rule:
    """One option's accepted values; ``accepted`` is the text the error message shows."""

    kind: str  # whole | real | choice | flag | text
    minimum: float | None = None
    exclusive: bool = False  # minimum itself excluded (real numbers)
    choices: tuple = ()
    optional: bool = False  # None accepted too

    def ok(self, value) -> bool:
        if value is None:
            return self.optional
        if self.kind == "flag":
            return isinstance(value, bool)
        if self.kind == "text":
            return isinstance(value, str)
        if self.kind == "choice":
            return isinstance(value, str) and value in self.choices
        if isinstance(value, bool):  # True is an int to Python, never a number here
            return False
        if self.kind == "whole":
            if not isinstance(value, numbers.Integral):
                return False
        elif not isinstance(value, numbers.Real) or not math.isfinite(value):
            return False
        if self.minimum is None:
            return True
        return value > self.minimum if self.exclusive else value >= self.minimum

    @property
    def accepted(self) -> str:
        if self.kind == "flag":
            text = "true or false"
        elif self.kind == "text":
            text = "a string"
        elif self.kind == "choice":
            text = ", ".join(self.choices)
        else:
            text = "a whole number" if self.kind == "whole" else "a finite number"
            if self.minimum is not None:
                m = int(self.minimum) if float(self.minimum).is_integer() else self.minimum
                text += f", above {m}" if self.exclusive else f", {m} or more"
        return f"{text}, or none" if self.optional else text


def whole(minimum: int | None = None, optional: bool = False) -> Rule:
    """An int (never a bool), at least ``minimum``."""
    return Rule("whole", minimum=minimum, optional=optional)


def real(minimum: float | None = None, exclusive: bool = False, optional: bool = False) -> Rule:
    """A finite int or float (never a bool), at least (or, ``exclusive``, above) ``minimum``."""
    return Rule("real", minimum=minimum, exclusive=exclusive, optional=optional)


def positive() -> Rule:
    """A finite number above 0."""
    return real(0, exclusive=True)


def choice(*options: str) -> Rule:
    return Rule("choice", choices=tuple(options))


def flag() -> Rule:
    return Rule("flag")


def text() -> Rule:
    return Rule("text")


_BY_TYPE = {int: whole, float: real, bool: flag, str: text}


def _from_annotation(hint) -> Rule | None:
    optional = False
    args = typing.get_args(hint)
    if args and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        if len(rest) != 1:
            return None
        hint, optional = rest[0], True
    make = _BY_TYPE.get(hint)
    if make is None:
        return None
    return replace(make(), optional=optional)


def option_rules(cls) -> dict[str, Rule]:
    """{field: rule} for every field of ``cls.Config``: ``OPTIONS`` along the MRO, else the annotation."""
    declared: dict[str, Rule] = {}
    for klass in reversed(cls.__mro__):
        declared.update(vars(klass).get("OPTIONS", {}))
    hints = typing.get_type_hints(cls.Config)
    out = {}
    for f in fields(cls.Config):
        rule = declared.get(f.name) or _from_annotation(hints.get(f.name))
        if rule is not None:
            out[f.name] = rule
    return out


def check_config(name: str, cls, config) -> None:
    """Refuse the first option of ``config`` (a Config instance) that its rule does not accept."""
    rules = option_rules(cls)
    for f in fields(config):
        rule = rules.get(f.name)
        value = getattr(config, f.name)
        if rule is not None and not rule.ok(value):
            raise InputError(f"estimator {name!r}: {f.name} {value!r}; accepted: {rule.accepted}")
