"""What an architecture is: NB201 cells and MobileNet-style block spaces behind one interface.

>>> from search_spaces import get_space
>>> space = get_space("mbv2")
>>> space.macs("mobilenetv2_100")
300774272
"""
from __future__ import annotations

from typing import Callable

from .base import ArchError, SearchSpace, encoding_distance
from .block_space import CONFIGS as BLOCK_CONFIGS, BlockSpace, BlockSpaceConfig
from .macro import MacroSpace
from .nb201 import NB201Space

_REGISTRY: dict[str, Callable[..., SearchSpace]] = {
    "nb201": NB201Space,
    "mbv2": lambda **cfg: BlockSpace("mbv2", **cfg),
    "mbv3": lambda **cfg: BlockSpace("mbv3", **cfg),
    "macro": MacroSpace,
}


def list_spaces() -> list[str]:
    return sorted(_REGISTRY)


def get_space(name: str, **config) -> SearchSpace:
    """A search space by name; ``config`` overrides its defaults (e.g. ``expansion_choices``)."""
    try:
        factory = _REGISTRY[name]
    except KeyError:
        raise ArchError(f"unknown search space {name!r}; accepted: {', '.join(list_spaces())}") from None
    try:
        return factory(**config)
    except TypeError as e:
        raise ArchError(f"bad configuration for space {name!r}: {e}") from None


__all__ = ["ArchError", "SearchSpace", "BlockSpace", "BlockSpaceConfig", "NB201Space", "MacroSpace", "BLOCK_CONFIGS",
           "encoding_distance", "get_space", "list_spaces"]
