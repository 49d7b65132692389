"""The Accelerate retraining loop (train.loop) and `mote retrain`, on CPU.

A tiny real ImageFolder (3 labels x 16 training + 8 validation images of ../shared/data/proxy_cifar100_10)
is written as 8-image shards. Runs go through subprocesses, as a user would run them: two Accelerate CPU
processes (gloo) for two epochs; a single-process run SIGKILLed after its first checkpoint and resumed,
compared with an uninterrupted run; bad input exits 2 without touching what is already there.
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.usefixtures("torch_one_thread")

SOURCE = Path(__file__).resolve().parents[2] / "shared" / "data" / "proxy_cifar100_10" / "train"
LABELS = ("pear", "sea", "seal")
N_TRAIN, N_VAL = 16, 8
REPO = Path(__file__).resolve().parents[1]
MODULE = "mobile_mote"  # `python -m mobile_mote retrain ...`, as `accelerate launch -m mobile_mote` runs it

RECIPE = """\
name: tiny_test
opt: adamw
lr_base: 0.004
lr_base_size: 16
sched: cosine
sched_on_updates: true    # the learning rate changes every step: a resume at the wrong step shows
epochs: 3
warmup_epochs: 1
warmup_lr: 1.0e-4
model_ema: true
model_ema_decay: 0.9
aa: null
reprob: 0.0
smoothing: 0.1
batch_size: 8
img_size: 32
crop_pct: 1.0
"""


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict:
    """ImageFolder root (train/, val/), shards of both, and a small recipe file."""
    if not all((SOURCE / lab).is_dir() for lab in LABELS):
        pytest.skip(f"proxy CIFAR-100 images not found under {SOURCE} (../shared/data is absent on a fresh clone)")
    from mobile_mote.train.shards import write_shards

    base = tmp_path_factory.mktemp("retrain")
    root = base / "imagefolder"
    for lab in LABELS:
        files = sorted((SOURCE / lab).glob("*.jpg"))[:N_TRAIN + N_VAL]
        if len(files) < N_TRAIN + N_VAL:
            pytest.skip(f"{SOURCE / lab} holds fewer than {N_TRAIN + N_VAL} images")
        for split, chunk in (("train", files[:N_TRAIN]), ("val", files[N_TRAIN:])):
            (root / split / lab).mkdir(parents=True)
            for f in chunk:
                shutil.copy(f, root / split / lab / f.name)
    shards = base / "shards"
    write_shards(root / "train", shards, "tr", max_samples=8, progress=False)
    val_index = write_shards(root / "val", shards, "va", max_samples=8, progress=False)  # 3 shards: 2 + 1 per rank
    recipe = base / "tiny.yaml"
    recipe.write_text(RECIPE)
    return {"base": base, "root": root, "train": str(shards / "tr-index.json"), "val": str(shards / "va-index.json"),
            "val_total": int(val_index["totals"]["samples"]), "recipe": str(recipe)}


def _env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


def _args(data, out, *extra) -> list[str]:
    return ["retrain", "--recipe", data["recipe"], "--train-shards", data["train"], "--val-shards", data["val"],
            "--output", str(out), "--log-every", "1", "--no-progress", *extra]


def _rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_two_processes_two_epochs(data):
    """Two Accelerate CPU processes (gloo), grad_accum 2, a MOTE preset: finite loss, logs, exact-once validation."""
    from mobile_mote.parallel import launch_command

    out = data["base"] / "two_procs"
    cmd = launch_command(2, _args(data, out, "--model", "mote_mobilenetv3_large_100", "--num-classes", "3",
                                  "--epochs", "2", "--batch-size", "4", "--grad-accum", "2", "--workers", "0"),
                         cpu=True, module=MODULE)
    proc = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]

    run = json.loads((out / "run.json").read_text())
    assert run["processes"] == 2 and run["global_batch"] == 4 * 2 * 2
    # 48 images / (4 per batch x 2 processes) = 6 batches per process, / grad_accum 2 = 3 steps per epoch
    assert run["updates_per_epoch"] == 3 and run["total_steps"] == 6
    rows = _rows(out / "metrics.csv")
    assert [int(r["step"]) for r in rows] == list(range(1, 7))
    assert all(float(r["loss"]) == float(r["loss"]) and abs(float(r["loss"])) < 1e6 for r in rows)  # finite
    assert all(float(r["images_per_s"]) > 0 for r in rows)
    val = _rows(out / "val.csv")
    assert [int(v["epoch"]) for v in val] == [0, 1]
    assert all(int(v["images"]) == data["val_total"] == int(v["expected"]) for v in val)  # each image once
    res = json.loads((out / "results.json").read_text())
    assert sorted(res["val_counts"]) == [8, 16]  # 3 shards of 8 over 2 ranks: 2 shards and 1
    assert res["step"] == 6 and res["weights"] == "ema" and 0.0 <= res["top1"] <= 100.0
    card = json.loads((out / "model_card.json").read_text())
    assert card["top1"] == pytest.approx(res["top1"]) and card["name"] == "mote_mobilenetv3_large_100"
    ck = out / "checkpoints"
    assert sorted(p.name for p in ck.iterdir()) == ["step_3", "step_6"]  # epoch ends; no temporary left
    saved = {p.name for p in (ck / "step_6").iterdir()}
    assert {"random_states_0.pkl", "random_states_1.pkl", "trainer_state.json"} <= saved  # RNG of both ranks
    assert "lr: 0.004" in (out / "recipe.yaml").read_text()  # lr_base 0.004 x global batch 16 / 16

    from mobile_mote.train.models import create_model, load_weights, register_presets
    register_presets()
    model = create_model("mote_mobilenetv3_large_100", num_classes=3)
    assert load_weights(model, out / "final.pt") == "state_dict"


def test_kill_and_resume_continues_exactly(data):
    """SIGKILL after the first checkpoint; --resume continues at that step with the same LR (and loss)."""
    common = ["--model", "mobilenetv3_small_050", "--workers", "1", "--checkpoint-every", "2"]
    ref_out, out = data["base"] / "reference", data["base"] / "killed"
    base_cmd = [sys.executable, "-m", MODULE]
    ref = subprocess.Popen(base_cmd + _args(data, ref_out, *common), cwd=REPO, env=_env(),
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    victim = subprocess.Popen(base_cmd + _args(data, out, *common), cwd=REPO, env=_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    try:
        while not (out / "checkpoints" / "step_2").is_dir():
            assert victim.poll() is None, "the run ended before its first checkpoint"
            assert time.monotonic() < deadline, "no checkpoint after 120 s"
            time.sleep(0.02)
        victim.send_signal(signal.SIGKILL)
    finally:
        victim.kill()
        victim.wait()
    assert not (out / "final.pt").exists(), "the run finished before it was killed; nothing was resumed"
    saved = max(int(p.name.split("_")[1]) for p in (out / "checkpoints").glob("step_*"))
    assert saved < 18

    resumed = subprocess.run(base_cmd + _args(data, out, *common, "--resume"), cwd=REPO, env=_env(),
                             capture_output=True, text=True, timeout=180)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"at step {saved} " in resumed.stdout
    assert ref.wait(timeout=180) == 0, ref.stderr.read()[-3000:]

    rows, ref_rows = _rows(out / "metrics.csv"), _rows(ref_out / "metrics.csv")
    steps = [int(r["step"]) for r in rows]
    assert steps == list(range(1, 19))  # strictly increasing through the resume point, ends at the plan
    assert [r["lr"] for r in rows] == [r["lr"] for r in ref_rows]  # scheduler position restored
    # same batches, weights, optimizer state and RNG: the loss after the resume matches too
    for r, q in zip(rows[saved:], ref_rows[saved:]):
        assert float(r["loss"]) == pytest.approx(float(q["loss"]), rel=1e-3, abs=1e-4), r["step"]
    assert json.loads((out / "results.json").read_text())["step"] == 18
    assert not list((out / "checkpoints").glob(".tmp_*"))
    assert len(list((out / "checkpoints").glob("step_*"))) == 2  # the last two are kept


def test_imagefolder_max_steps(data, tmp_path):
    """--imagefolder ROOT (train/ and val/), stopped early by --max-steps; validation still counts all."""
    out = tmp_path / "if_run"
    cmd = [sys.executable, "-m", MODULE, "retrain", "--recipe", data["recipe"], "--model", "mobilenetv3_small_050",
           "--imagefolder", str(data["root"]), "--output", str(out), "--max-steps", "2", "--workers", "0",
           "--no-progress"]
    proc = subprocess.run(cmd, cwd=REPO, env=_env(), capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = json.loads((out / "results.json").read_text())
    assert res["step"] == 2 and res["val"]["images"] == len(LABELS) * N_VAL
    assert [int(r["step"]) for r in _rows(out / "metrics.csv")] == [2]  # log-every 50: the last step only


def test_bad_input_exits_2(data, tmp_path, capsys):
    from mobile_mote.cli import main
    ok = ["retrain", "--recipe", data["recipe"], "--model", "mobilenetv3_small_050", "--train-shards", data["train"],
          "--val-shards", data["val"]]

    def run(argv):
        code = main(argv)
        err = capsys.readouterr().err.strip()
        assert code == 2 and len(err.splitlines()) == 1, err
        return err

    assert "unknown recipe" in run(["retrain", "--recipe", "no_such_recipe", *ok[3:], "--output", str(tmp_path / "a")])
    assert "do not exist" in run([*ok[:5], "--train-shards", str(tmp_path / "x-{000000..000001}.tar"),
                                  "--output", str(tmp_path / "b")])
    assert "unknown model" in run([*ok[:3], "--model", "no_such_net", *ok[5:], "--output", str(tmp_path / "c")])
    blocker = tmp_path / "a_file"
    blocker.write_text("keep")
    assert "not writable" in run([*ok, "--output", str(blocker / "out")])
    assert "is a file" in run([*ok, "--output", str(blocker)])
    held = tmp_path / "held"
    held.mkdir()
    (held / "metrics.csv").write_text("step\n1\n")
    assert "--resume" in run([*ok, "--output", str(held)])
    assert (held / "metrics.csv").read_text() == "step\n1\n" and blocker.read_text() == "keep"  # nothing touched
    assert "either" in run([*ok, "--imagefolder", str(data["root"]), "--output", str(tmp_path / "d")])
    assert not any((tmp_path / n).exists() for n in ("b", "c", "d"))


def test_bad_input_exits_2_as_a_process(data, tmp_path):
    """The launched command itself: one line on stderr, exit status 2."""
    proc = subprocess.run([sys.executable, "-m", MODULE, "retrain", "--recipe", "no_such_recipe", "--model", "x",
                           "--train-shards", data["train"], "--output", str(tmp_path / "o")],
                          cwd=REPO, env=_env(), capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_bn_statistics_are_averaged_over_the_ranks(monkeypatch):
    """Before validation every rank holds the ranks' mean BN running statistics (timm's --dist-bn reduce)."""
    import torch
    import torch.distributed as dist

    from mobile_mote.train.loop import distribute_bn
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4))
    bn = model[1]
    bn.running_mean.fill_(1.0)
    bn.running_var.fill_(3.0)
    reduced = []

    def all_reduce(t, op=None):  # two ranks: this one and one whose statistics are 3.0 / 5.0
        reduced.append(t)
        t += 2.0
    monkeypatch.setattr(dist, "all_reduce", all_reduce)
    distribute_bn(model, 1)
    assert not reduced
    distribute_bn(model, 2)
    assert len(reduced) == 2 and bn.num_batches_tracked.item() == 0  # the counter is left alone
    assert torch.allclose(bn.running_mean, torch.full((4,), 1.5)) and torch.allclose(bn.running_var, torch.full((4,), 2.5))
