"""What an architecture is: NB201 cells and MobileNet-style block spaces behind one interface.

>>> from mobile_mote.search_spaces import get_space
>>> space = get_space("mbv2")
>>> space.macs("mobilenetv2_100")
300774272
"""
from __future__ import annotations

from mobile_mote.registry import Registry

from .base import ArchError, SearchSpace, encoding_distance
from .block_space import CONFIGS as BLOCK_CONFIGS, BlockSpace, BlockSpaceConfig
from .macro import MacroSpace
from .nb201 import NB201Space

# mobile_mote.registry imports nothing at module level, so the spaces stay the lowest layer.
SPACES = Registry("search space", error=ArchError)
SPACES.add("nb201", NB201Space)
SPACES.add("mbv2", lambda **cfg: BlockSpace("mbv2", **cfg))
SPACES.add("mbv3", lambda **cfg: BlockSpace("mbv3", **cfg))
SPACES.add("macro", MacroSpace)


def list_spaces() -> list[str]:
    return SPACES.names()


def get_space(name: str, **config) -> SearchSpace:
    """A search space by name; ``config`` overrides its defaults (e.g. ``expansion_choices``)."""
    factory = SPACES.get(name)
    try:
        return factory(**config)
    except TypeError as e:
        raise ArchError(f"bad configuration for space {name!r}: {e}") from None


__all__ = ["ArchError", "SearchSpace", "BlockSpace", "BlockSpaceConfig", "NB201Space", "MacroSpace", "BLOCK_CONFIGS",
           "SPACES", "encoding_distance", "get_space", "list_spaces"]
