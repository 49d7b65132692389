"""Devices as data: the MODNAS / HELP split of NB201's 27 latency columns and each device's embedding.

A device is known only through its latencies. Its embedding ``d`` is its latency on 10 fixed reference
cells, min-max normalised over those 10 (HELP's hardware embedding, which MODNAS reuses), so a device
never seen in training is embedded from 10 measurements. The same two numbers (min and max over the
references) normalise every latency target of that device, which keeps the latency objective on a
comparable [0, ~1] scale across a phone (tens of ms) and a GPU at batch 256 (ms).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError

# MODNAS's NB201 split (HELP's meta-train 9 + meta-valid 4 are all used for training; 6 zero-shot test).
TRAIN_DEVICES: tuple[str, ...] = (
    "1080ti_1", "1080ti_32", "1080ti_256", "silver_4114", "silver_4210r", "samsung_a50", "pixel3",
    "essential_ph_1", "samsung_s7", "titanx_1", "titanx_32", "titanx_256", "gold_6240")
TEST_DEVICES: tuple[str, ...] = ("titan_rtx_256", "gold_6226", "fpga", "pixel2", "raspi4", "eyeriss")

# The 10 reference cells: sorted(numpy.random.default_rng(0).choice(15625, 10, replace=False)) over NB201
# indices (in that order), frozen as strings so the embedding never depends on how a table orders its rows.
REFERENCE_ARCHS: tuple[str, ...] = (
    "|nor_conv_3x3~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|nor_conv_3x3~1|none~2|",
    "|avg_pool_3x3~0|+|none~0|avg_pool_3x3~1|+|avg_pool_3x3~0|none~1|none~2|",
    "|nor_conv_1x1~0|+|avg_pool_3x3~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_3x3~1|none~2|",
    "|none~0|+|avg_pool_3x3~0|nor_conv_3x3~1|+|nor_conv_1x1~0|nor_conv_3x3~1|avg_pool_3x3~2|",
    "|nor_conv_1x1~0|+|avg_pool_3x3~0|nor_conv_3x3~1|+|avg_pool_3x3~0|nor_conv_1x1~1|skip_connect~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|nor_conv_3x3~1|+|avg_pool_3x3~0|nor_conv_3x3~1|avg_pool_3x3~2|",
    "|skip_connect~0|+|avg_pool_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|skip_connect~1|avg_pool_3x3~2|",
    "|none~0|+|none~0|none~1|+|skip_connect~0|avg_pool_3x3~1|nor_conv_3x3~2|",
    "|skip_connect~0|+|nor_conv_1x1~0|nor_conv_1x1~1|+|none~0|nor_conv_1x1~1|nor_conv_3x3~2|",
    "|none~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|nor_conv_1x1~1|avg_pool_3x3~2|",
)


@dataclass
class DeviceLatencies:
    """Latency (ms) of every NB201 cell on some devices: ``ms[device][index]``, plus their embeddings."""

    ms: dict[str, np.ndarray]
    space: object  # the nb201 space bound to the benchmark's index (benchmarks.nb201.IndexedSpace)

    @classmethod
    def from_csv(cls, path: str | Path, space, devices: tuple[str, ...] | list[str]) -> "DeviceLatencies":
        from ..efficiency.tables import read_latency_columns  # the reader behind the search's --latency budgets
        n = space.size()
        ms = {}
        for d, by_index in read_latency_columns(path, list(devices)).items():
            keys = list(by_index)
            if keys and not isinstance(keys[0], int):
                raise InputError(f"latency table {path} is keyed by arch; MODNAS needs NB201's 'index' column "
                                 f"(0..{n - 1}, the rows of benchmark.csv)")
            outside = [i for i in keys if not 0 <= i < n]
            if outside:
                raise InputError(f"latency table {path}: index {outside[0]} is outside NB201's 0..{n - 1}")
            col = np.array([by_index.get(i, np.nan) for i in range(n)], dtype=np.float64)
            if np.isnan(col).any():
                first = int(np.flatnonzero(np.isnan(col))[0])
                raise InputError(f"{path}: device {d} lacks latency for {int(np.isnan(col).sum())} of {n} cells "
                                 f"(first missing: index {first}); a table must list every cell once")
            ms[d] = col
        return cls(ms, space)

    @property
    def devices(self) -> list[str]:
        return list(self.ms)

    def reference_ms(self, device: str) -> np.ndarray:
        idx = [self.space.index_of(a) for a in REFERENCE_ARCHS]
        return self.ms[device][idx]

    def embedding(self, device: str) -> np.ndarray:
        """``d``: the 10 reference latencies, min-max normalised (float32, shape (10,))."""
        return embed_reference_latencies(self.reference_ms(device))

    def normalised(self, device: str) -> np.ndarray:
        """Every cell's latency on ``device`` in units of the reference range: (ms - min_ref) / (max_ref - min_ref)."""
        ref = self.reference_ms(device)
        return (self.ms[device] - ref.min()) / _span(ref)


def _span(ref: np.ndarray) -> float:
    span = float(ref.max() - ref.min())
    if span <= 0:
        raise InputError("the 10 reference latencies of a device are all equal; they cannot embed it")
    return span


def embed_reference_latencies(ref_ms) -> np.ndarray:
    """A device embedding from its latencies (ms) on ``REFERENCE_ARCHS`` (in that order)."""
    ref = np.asarray(ref_ms, dtype=np.float64)
    if ref.shape != (len(REFERENCE_ARCHS),) or not np.isfinite(ref).all():
        raise InputError(f"a device embedding needs {len(REFERENCE_ARCHS)} finite reference latencies; got {ref.shape}")
    return ((ref - ref.min()) / _span(ref)).astype(np.float32)
