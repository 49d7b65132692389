"""MOTE-NAS (``mote-nas``) and its variants MOTE-NAS-EF (``ef``) and MOTE-NAS-RS (``rs``)."""
from .algorithm import EF, RS, MoteNAS
from .config import SearchConfig

__all__ = ["EF", "RS", "MoteNAS", "SearchConfig"]
