"""What every estimator shares: seeding by (arch, seed), timing, failure as a record, and the facts
it gives about itself (needs_data, evaluation_keys, PROFILES / profile_options, OPTIONS)."""
from __future__ import annotations

import gc
import hashlib
import math
import sys
import threading
import time
import traceback
from dataclasses import asdict, dataclass, fields

from ..errors import DeviceError, InputError
from .options import check_config
from .record import Estimate, config_hash

# Named option sets ("profiles"): the paper's defaults, the official code's variant, a ``cpu`` profile
# sized to take at most ~20 s per MobileNet-block network on one CPU core (4 epochs on 400 images of
# the reduced data, 6 landscape points; cost time, because wall time on a shared CPU measures the
# load, not the network), and a tiny profile that exists only so tests and CPU demos finish in
# seconds. One table for every estimator: each takes the options its Config has and drops the rest
# (``Estimator.profile_options``).
PROFILES: dict[str, dict] = {
    "paper": {},
    "official": {"landscape": "train_epoch", "transform": "reciprocal"},
    "cpu": {"epochs": 4, "batch_size": 64, "points": 5, "images_per_class": 40, "time": "cost"},
    "tiny": {"epochs": 3, "batch_size": 64, "points": 4, "images_per_class": 20},
    "quick": {"epochs": 3, "batch_size": 64, "points": 4, "images_per_class": 20},  # MOTE if asked for: tiny's
}


def arch_seed(arch: str, seed: int) -> int:
    """A 63-bit seed from (canonical arch, seed) alone: the same on every rank and machine."""
    digest = hashlib.sha256(f"{arch}#{seed}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def seeded_generator(arch: str, seed: int, device="cpu"):
    import torch
    g = torch.Generator(device=device)
    g.manual_seed(arch_seed(arch, seed))
    return g


# torch's global RNG is one per process: concurrent workers (mobile_mote.concurrent) build their
# models one at a time, so each network's initial weights stay a function of (arch, seed).
_BUILD_LOCK = threading.Lock()


def build_seeded(space, arch: str, seed: int, num_classes: int, reduced: bool, device="cpu"):
    """The model with initial weights fixed by (arch, seed), whatever ran before in this process."""
    import torch
    with _BUILD_LOCK, torch.random.fork_rng(devices=[]):
        torch.manual_seed(arch_seed(arch, seed))
        model = space.build(arch, num_classes=num_classes, reduced=reduced)
    return model.to(device)


# how many times a candidate is scored again after out-of-memory or a CUDA error (memory freed between)
DEVICE_RETRIES = 2
_CUDA_MARKERS = ("cuda error", "cuda driver error", "cudnn_status", "cudnn error", "cublas_status", "cufft_",
                 "cusolver", "nccl", "captures underway", "stream is capturing", "cudaerror", "cuda graph",
                 "illegal memory access", "device-side assert")


def device_error_kind(e: BaseException) -> str | None:
    """``"oom"``, ``"cuda"`` or ``"device"`` (already a DeviceError) for a device failure; None for an
    error of the candidate itself (a bad architecture, a non-finite loss, a bug)."""
    if isinstance(e, DeviceError):
        return "device"
    torch = sys.modules.get("torch")
    if torch is not None:
        for name in ("OutOfMemoryError",):
            cls = getattr(torch.cuda, name, None) or getattr(torch, name, None)
            if isinstance(cls, type) and isinstance(e, cls):
                return "oom"
        acc = getattr(torch, "AcceleratorError", None)
        if isinstance(acc, type) and isinstance(e, acc):
            return "cuda"
    if not isinstance(e, RuntimeError):
        return None
    msg = str(e).lower()
    if "out of memory" in msg:
        return "oom"
    return "cuda" if any(k in msg for k in _CUDA_MARKERS) else None


def _release_device_memory(attempt: int) -> None:
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        try:
            torch.cuda.synchronize()
            torch.cuda.empty_cache()
        except Exception:  # a sticky CUDA error: the retry will say so
            pass
    time.sleep(0.5 * attempt)  # other workers on the device may finish and free theirs


def device_name(device) -> str:
    """The record's name for ``device`` (``cpu``, ``cuda:<GPU model>``, ``mps``). It runs before the
    estimate's per-candidate error handling, so a device this machine lacks is a one-line InputError."""
    import torch

    from ..devices import resolve_device
    if isinstance(device, torch.device):
        device = str(device)
    dev = torch.device(resolve_device(device))
    if dev.type == "cuda":
        return f"cuda:{torch.cuda.get_device_name(dev)}"
    return dev.type


def mark_failed(rec: Estimate, error: str | None, tb: str | None = None) -> Estimate:
    """The one failure record, whoever saw the failure (the estimator, or a parallel scorer's shard): no
    score, the error's first line, the traceback's tail as its terms."""
    rec.status, rec.score = "failed", None
    rec.error = error.splitlines()[0][:500] if error else error
    rec.terms = {"traceback": tb} if tb else {}
    return rec


class Estimator:
    """Subclasses set ``Config`` (a dataclass) and implement ``_terms``.

    ``_terms(space, arch, data, seed, device)`` returns (score, terms): score higher-is-better,
    terms the raw values. Any exception becomes a failed record and the run goes on, except out of
    memory and CUDA errors: those are tried again (``DEVICE_RETRIES``), then raised as ``DeviceError``.

    What the search layer may ask of a class without making one:

    * ``needs_data``: whether it looks at the proxy data's images (False: no data is loaded for it);
    * ``zero_cost``: whether its score needs no training (one batch at initialisation, or the
      architecture alone): what ``fused`` and ``mote-z`` may take as a component;
    * ``carries``: components its records hold in their terms besides its score (``fusion.record_components``);
    * ``evaluation_keys``: its options that the evaluation stage's training run reuses;
    * ``PROFILES`` / ``profile_options(profile)``: its options under a named profile;
    * ``OPTIONS``: ``{field: rule}`` (see ``options``), checked when an instance is made, so a bad
      setting is refused before anything runs.
    """

    name = "estimator"
    needs_data: bool = True
    zero_cost: bool = False
    carries: tuple[str, ...] = ()
    # True when a record's ranking score depends on the population it is ranked in (``mote-z``)
    population_dependent: bool = False
    evaluation_keys: tuple[str, ...] = ()
    PROFILES: dict[str, dict] = PROFILES
    OPTIONS: dict = {}
    EXECUTION_KEYS: tuple[str, ...] = ()

    @dataclass
    class Config:
        pass

    def __init__(self, **config):
        self.check_settings(config)
        self.config = self.Config(**config)
        check_config(self.name, type(self), self.config)

    @classmethod
    def check_settings(cls, config) -> None:
        """An option its Config lacks is an InputError naming the accepted ones."""
        known = {f.name for f in fields(cls.Config)}
        unknown = set(config) - known
        if unknown:
            raise InputError(f"estimator {cls.name!r}: unknown option(s) {sorted(unknown)}; accepted: {sorted(known)}")

    @classmethod
    def profile_options(cls, profile: str) -> dict:
        """The options ``profile`` sets for this estimator (those its Config lacks are dropped)."""
        from ..profiles import profile_settings
        return profile_settings(cls, profile)

    # whether several candidates may be scored at once in threads (mobile_mote.concurrent)
    thread_safe: bool = False

    def prepare(self, data, device="auto") -> None:
        """Make what every candidate shares (the data on the device) before threads share it."""

    def population_scores(self, records: list[dict]) -> list[float | None]:
        """The ranking score of each record within ``records``: its own score, unless the estimator's
        score is defined over a population (then recomputed whenever the population changes)."""
        return [r.get("score") for r in records]

    def config_dict(self) -> dict:
        """What decides the estimate (hashed, stored with every record); execution options that do not
        change the arithmetic (``EXECUTION_KEYS``: how a step is launched) are left out."""
        d = asdict(self.config)
        for k in self.EXECUTION_KEYS:
            d.pop(k, None)
        return {"estimator": self.name, **d}

    def config_hash(self) -> str:
        return config_hash(self.config_dict())

    def blank(self, space_name: str, arch: str, seed: int, device: str) -> Estimate:
        """This estimator's record of ``arch``, before it is scored."""
        return Estimate(space=space_name, arch=arch, estimator=self.name, score=None, config=self.config_dict(),
                        config_hash=self.config_hash(), seed=seed, device=device)

    def estimate(self, space, arch, data, seed: int = 0, device="auto") -> Estimate:
        from ..devices import resolve_device
        device = resolve_device(device)  # "auto": CUDA when present, else CPU; a missing device: one line
        arch = space.canonical(arch)
        t0 = time.perf_counter()
        rec = self.blank(space.name, arch, seed, device_name(device))
        retries = 0
        while True:
            try:
                score, terms = self._terms(space, arch, data, seed, device)
                rec.terms = terms
                if score is None or not math.isfinite(score):
                    rec.status, rec.error = "flagged", f"non-finite score {score!r}"
                    rec.score = None
                else:
                    rec.score = float(score)
                break
            except Exception as e:  # one bad candidate never ends the run; a device failure is no candidate's
                kind = device_error_kind(e)
                if kind == "device":
                    raise
                if kind is not None:
                    if retries >= DEVICE_RETRIES:
                        msg = f"{type(e).__name__}: {e}".splitlines()[0][:300]
                        raise DeviceError(f"{kind} on {device} scoring {arch} with {self.name} "
                                          f"({retries + 1} tries): {msg}") from e
                else:
                    mark_failed(rec, f"{type(e).__name__}: {e}", traceback.format_exc(limit=3)[-2000:])
                    break
            retries += 1  # out of the except block: the failed attempt's frames and tensors are released
            _release_device_memory(retries)
        if retries and isinstance(rec.terms, dict):
            rec.terms["device_retries"] = retries
        rec.seconds = time.perf_counter() - t0
        return rec

    def _terms(self, space, arch, data, seed, device):
        raise NotImplementedError
