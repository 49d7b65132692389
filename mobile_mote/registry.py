"""Plug-ins by name, timm-registry style: ``REGISTRY.register("name")`` on a class, then ``get`` /
``create`` / ``names``. One helper for every kind of plug-in: search spaces, estimators, search
algorithms, benchmark readers.

``load`` imports the modules that register (called before the first lookup), so a registry costs
nothing at import time and a plug-in needs no line anywhere but its own decorator."""
from __future__ import annotations

from typing import Callable


class Registry:
    def __init__(self, kind: str, load: Callable[[], None] | None = None, error: type[Exception] | None = None):
        self.kind = kind  # what the error messages call an entry: "estimator", "algorithm"
        self._load = load
        self._error = error  # what an unknown name raises (InputError unless a subclass is named)
        self._loaded = load is None
        self._loading = False
        self._entries: dict[str, type] = {}

    def add(self, name: str, factory: Callable) -> None:
        """``name`` maps to ``factory`` (a class, or a callable making one configured instance of it)."""
        if name in self._entries and self._entries[name] is not factory:
            raise ValueError(f"{self.kind} {name!r} registered twice")
        self._entries[name] = factory

    def register(self, name: str):
        """Class decorator: ``name`` maps to the class, which gets ``cls.name = name``."""
        def deco(cls):
            self.add(name, cls)
            cls.name = name
            return cls
        return deco

    def _ensure_loaded(self) -> None:
        if self._loaded or self._loading:  # a module being loaded may look the registry up
            return
        self._loading = True
        try:
            self._load()
            self._loaded = True
        finally:
            self._loading = False

    def names(self) -> list[str]:
        self._ensure_loaded()
        return sorted(self._entries)

    def __contains__(self, name) -> bool:
        self._ensure_loaded()
        return name in self._entries

    def entries(self) -> dict[str, type]:
        """Every registered class by name (a copy), for lookups by what a class declares."""
        self._ensure_loaded()
        return dict(sorted(self._entries.items()))

    def get(self, name: str) -> type:
        """The registered class; an unknown name is an InputError listing the accepted ones."""
        from .errors import InputError
        self._ensure_loaded()
        if name not in self._entries:
            error = self._error or InputError
            raise error(f"unknown {self.kind} {name!r}; accepted: {', '.join(sorted(self._entries))}")
        return self._entries[name]

    def create(self, name: str, *args, **kwargs):
        return self.get(name)(*args, **kwargs)
