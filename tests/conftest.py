"""Shared fixtures. The data beside the repo (../shared/data) is optional: tests that need it skip."""
from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the repository, or a skip saying where it was looked for."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA} (a fresh clone has no ../shared; CI always has it)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def nb201_benchmark_csv(shared_data: Path) -> Path:
    """``nb201/benchmark.csv`` of the shared data, or a skip."""
    path = shared_data / "nb201" / "benchmark.csv"
    if not path.is_file():
        pytest.skip(f"NB201 benchmark table not found at {path}")
    return path


@pytest.fixture(scope="module")
def torch_one_thread():
    """One intra-op thread for a module's tests, restored afterwards.

    Small CPU models gain nothing from more threads, and on 2 shared cores (other test
    processes running) oversubscribed torch threads make a 20 ms forward take seconds.
    Opt in with ``pytestmark = pytest.mark.usefixtures("torch_one_thread")``.
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def load_tool():
    """``load_tool("correlation").main(argv)``: a tool's command line, run in this process (tools are
    scripts, not a package; what they compute is tested through ``mobile_mote.studies``)."""
    import runpy
    from types import SimpleNamespace

    tools = Path(__file__).resolve().parents[1] / "tools"
    cache: dict = {}

    def load(name: str):
        if name not in cache:
            cache[name] = SimpleNamespace(**runpy.run_path(str(tools / f"{name}.py"), run_name=f"tool_{name}"))
        return cache[name]
    return load


def synthetic_proxy_data(n: int = 48, labels: int = 4):
    """Random 32x32 images with ``labels`` labels in turn: the proxies need no real data to be exercised."""
    import numpy as np

    from mobile_mote.data.proxy_data import ProxyData
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(n, 32, 32, 3), dtype=np.uint8)
    y = np.arange(n, dtype=np.int64) % labels
    return ProxyData(x, y, [chr(ord("a") + i) for i in range(labels)], source="synthetic")
