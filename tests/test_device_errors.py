"""Out of memory and CUDA errors are the device's, not the candidate's: tried again, then raised, never
stored as a failed record (estimators/base.py, search/scorer.py, parallel.py), faked on CPU."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from mobile_mote.estimators import DeviceError, Estimator, base
from mobile_mote.store import SearchStore

OOM = "CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 139.8 GiB total capacity)"


class Flaky(Estimator):
    """Raises ``errors`` one per call, then scores 1.0."""
    name = "flaky"
    needs_data = False

    @dataclass
    class Config:
        pass

    def __init__(self, errors):
        super().__init__()
        self.errors = list(errors)
        self.calls = 0

    def _terms(self, space, arch, data, seed, device):
        self.calls += 1
        if self.errors:
            raise self.errors.pop(0)
        return 1.0, {"ok": True}


@pytest.fixture(autouse=True)
def no_wait(monkeypatch):
    monkeypatch.setattr(base, "_release_device_memory", lambda attempt: None)


@pytest.fixture(scope="module")
def space():
    from mobile_mote.search_spaces import get_space
    return get_space("macro")


def test_out_of_memory_is_tried_again_and_the_record_is_the_candidates(space):
    est = Flaky([RuntimeError(OOM)])
    rec = est.estimate(space, "12012012", None, device="cpu")
    assert rec.status == "ok" and rec.score == 1.0 and est.calls == 2 and rec.terms["device_retries"] == 1


@pytest.mark.parametrize("error", [RuntimeError(OOM), RuntimeError("CUDA error: an illegal memory access was "
                                                                   "encountered"),
                                   RuntimeError("operation not permitted when stream is capturing")])
def test_a_lasting_device_failure_is_raised_not_recorded(space, error):
    est = Flaky([error] * (base.DEVICE_RETRIES + 1))
    with pytest.raises(DeviceError, match="12012012"):
        est.estimate(space, "12012012", None, device="cpu")
    assert est.calls == base.DEVICE_RETRIES + 1


def test_a_candidates_own_error_is_still_a_failed_record(space):
    for error in (ValueError("bad arch"), FloatingPointError("training loss became non-finite"),
                  RuntimeError("mat1 and mat2 shapes cannot be multiplied")):
        est = Flaky([error])
        rec = est.estimate(space, "12012012", None, device="cpu")
        assert rec.status == "failed" and est.calls == 1 and type(error).__name__ in rec.error


def test_the_torch_out_of_memory_class_is_recognised():
    import torch
    assert base.device_error_kind(torch.cuda.OutOfMemoryError("x")) == "oom"
    assert base.device_error_kind(DeviceError("x")) == "device"
    assert base.device_error_kind(MemoryError("x")) is None


def _space_costs_archs(n):
    import numpy as np

    from mobile_mote.efficiency.constraints import Costs
    from mobile_mote.search_spaces import get_space
    sp = get_space("nb201")
    rng = np.random.default_rng(0)
    return sp, Costs(sp), list(dict.fromkeys(sp.sample(rng) for _ in range(3 * n)))[:n]


def _rec(arch, **extra):
    return {"space": "nb201", "arch": arch, "estimator": "fake", "score": 1.0, "terms": {}, "config": {"fake": 1},
            "config_hash": "fake0123456789ab", "seed": 0, "device": "cpu", "seconds": 0.0, "status": "ok",
            "error": None, **extra}


class OneLost:
    """A scorer (as ParallelScorer's main process sees it) whose second candidate a rank lost to the device."""
    num_processes = 2

    def score(self, archs):
        return [_rec(archs[0]), _rec(archs[1], status="failed", score=None, error="shard failed on rank 1: "
                                     "OutOfMemoryError: " + OOM, device_error=True)]


class Raising:
    num_processes = 1

    def score(self, archs):
        raise DeviceError("oom on cuda:0 scoring it")


def test_a_device_failure_is_never_stored_and_the_claims_are_given_back(tmp_path):
    from mobile_mote.search.scorer import score_candidates
    space, costs, archs = _space_costs_archs(2)
    with SearchStore(tmp_path / "s.db") as st:
        with pytest.raises(DeviceError, match="lost to the device"):
            score_candidates(st, OneLost(), space, costs, archs, "fake0123456789ab", 0)
        stored = st.records(config_hash="fake0123456789ab")
        assert [r["arch"] for r in stored] == [archs[0]] and st.claims() == []
        with pytest.raises(DeviceError):
            score_candidates(st, Raising(), space, costs, archs, "fake0123456789ab", 0)
        assert len(st.records(config_hash="fake0123456789ab")) == 1 and st.claims() == []


def test_a_rank_marks_a_device_failure_for_the_main_process(space, monkeypatch):
    from mobile_mote.parallel import ParallelScorer
    ps = ParallelScorer("macro", "macs", {}, None, device="cpu", progress=False)

    def boom(*a, **k):
        raise DeviceError("oom on cuda:1 scoring 12012012")
    monkeypatch.setattr(ps.estimator, "estimate", boom)
    rec = ps._score_one("12012012")
    assert rec["status"] == "failed" and rec["device_error"] is True
    monkeypatch.setattr(ps.estimator, "estimate", lambda *a, **k: (_ for _ in ()).throw(ValueError("bad")))
    assert "device_error" not in ps._score_one("12012012")


# -- the command line: a device failure is one stderr line and exit status DEVICE_FAILURE -------------
CELL = "|nor_conv_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|none~0|avg_pool_3x3~1|nor_conv_3x3~2|"
COMMANDS = {
    "score": ["score", "--space", "nb201", "--arch", CELL, "--estimator", "params", "--quiet", "--device", "cpu"],
    "search": ["search", "--space", "nb201", "--estimator", "params", "--profile", "tiny", "--quiet",
               "--algorithm", "ef", "--name", "oom", "--device", "cpu"],
    "pareto": ["pareto", "--space", "nb201", "--objectives", "score,macs", "--estimator", "params", "--profile",
               "tiny", "--quiet", "--name", "oom", "--device", "cpu"],
}


@pytest.mark.parametrize("command", list(COMMANDS))
def test_the_cli_says_a_device_failure_in_one_line(command, tmp_path, monkeypatch, capsys):
    """The estimator runs out of memory on every try: no traceback, one line saying what failed and what to
    try, exit status DEVICE_FAILURE (4: not bad input)."""
    from mobile_mote.cli import DEVICE_FAILURE, main
    from mobile_mote.estimators.analytic import Params

    def oom(self, *a, **k):
        raise RuntimeError(OOM)
    monkeypatch.setattr(Params, "_terms", oom)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MOTE_CACHE", str(tmp_path / "no_cache"))
    capsys.readouterr()
    rc = main(COMMANDS[command])
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert DEVICE_FAILURE == 4 and rc == DEVICE_FAILURE, err[-2000:]
    assert len(lines) == 1 and "Traceback" not in err, err[-2000:]
    line = lines[0]
    assert line.startswith(f"mote {command}: error: the device failed: "), line
    assert "oom on cpu" in line and "CUDA out of memory" in line, line
    assert "--set batch_size=N" in line and "another --device" in line, line
    assert ("--resume" in line) == (command != "score"), line


def test_the_advice_names_the_workers_when_there_are_several():
    import argparse

    from mobile_mote.cli import device_failure_line
    line = device_failure_line(DeviceError("oom on cuda:0 scoring x\nsecond line"),
                               argparse.Namespace(workers=4, resume=False))
    assert "\n" not in line and "fewer --workers-per-device (now 4)" in line and "--resume goes on" in line
    assert "fewer --workers" not in device_failure_line(DeviceError("x"), argparse.Namespace(workers=1))


def test_the_device_failure_status_is_documented():
    from pathlib import Path

    from mobile_mote.cli import DEVICE_FAILURE, build_parser
    parsers = build_parser()._subparsers._group_actions[0].choices
    for command in COMMANDS:
        text = " ".join(parsers[command].format_help().split())
        assert f"{DEVICE_FAILURE} the device failed" in text and "--workers-per-device" in text, command
    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    assert f"exits {DEVICE_FAILURE}" in readme
