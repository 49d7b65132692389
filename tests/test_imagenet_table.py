"""tools/imagenet_table.py: computed MACs/params for presets and runs, pending vs measured top-1, published labels."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def table(load_tool):
    return load_tool("imagenet_table")


@pytest.fixture()
def run_dir(tmp_path):
    """runs/demo/winner.json as mote search writes it (winner_record over a real mbv2 architecture)."""
    from mobile_mote.search.outputs import winner_record
    from mobile_mote.search_spaces import get_space

    sp = get_space("mbv2")
    arch = sp.sample(np.random.default_rng(3))
    summary = {"space": "mbv2", "estimator": "mote", "estimator_config": {"epochs": 3}, "algorithm": "mote-nas",
               "search": {"k": 3}, "seed": 0, "device": "cuda:0", "estimator_seconds": 4320.0}
    w = {"arch": arch, "macs": sp.macs(arch), "params": sp.params(arch), "score": 1.5,
         "constraint": {"max_macs": 400_000_000}, "evaluation_seconds": 4320.0}
    d = tmp_path / "runs" / "demo"
    d.mkdir(parents=True)
    (d / "winner.json").write_text(json.dumps(winner_record(summary, w)))
    return tmp_path / "runs", arch, sp


def test_runs_pending_then_measured(table, run_dir, tmp_path, capsys):
    runs, arch, sp = run_dir
    out = tmp_path / "t.json"
    assert table.main(["--runs", str(runs), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    rec = json.loads(out.read_text())
    rows = {r["model"]: r for r in rec["toolkit"]}
    assert set(rows) == {"mobilenetv2_100", "mobilenetv3_large_100", "demo"}
    assert rows["mobilenetv2_100"]["macs"] == 300_774_272 and rows["mobilenetv2_100"]["params"] == 3_504_872
    demo = rows["demo"]
    assert (demo["macs"], demo["params"]) == (sp.macs(arch), sp.params(arch))
    assert demo["top1"] == "pending" and all(r["top1"] == "pending" for r in rows.values())
    assert demo["search_cost"]["seconds"] == 8640.0 and demo["search_cost"]["gpu_days"] == pytest.approx(0.1)
    assert f"{sp.macs(arch) / 1e6:.1f} M" in text and "| demo |" in text and "pending" in text

    # a finished retraining: the model card inside the run makes the top-1 numeric
    from mobile_mote.train import write_model_card
    write_model_card(runs / "demo" / "retrain", "mote_demo", arch, "mbv2", top1=71.25)
    assert table.main(["--runs", str(runs), "--out", str(out)]) == 0
    rows = {r["model"]: r for r in json.loads(out.read_text())["toolkit"]}
    assert rows["demo"]["top1"] == 71.25 and rows["demo"]["top1_source"].endswith("model_card.json")
    assert rows["mobilenetv2_100"]["top1"] == "pending"
    assert "71.25" in capsys.readouterr().out

    # --retrain DIR: matched to the row with the same (space, arch)
    preset = sp.presets()["mobilenetv2_100"]
    write_model_card(tmp_path / "rt_v2", "mote_mobilenetv2_100", preset, "mbv2", top1=72.5)
    assert table.main(["--runs", str(runs), "--retrain", str(tmp_path / "rt_v2"), "--out", str(out)]) == 0
    rows = {r["model"]: r for r in json.loads(out.read_text())["toolkit"]}
    assert rows["mobilenetv2_100"]["top1"] == 72.5 and rows["mobilenetv3_large_100"]["top1"] == "pending"


def test_cpu_run_reports_cpu_seconds(table, run_dir, tmp_path):
    runs, _, _ = run_dir
    w = json.loads((runs / "demo" / "winner.json").read_text())
    w["device"] = "cpu"
    (runs / "demo" / "winner.json").write_text(json.dumps(w))
    out = tmp_path / "t.json"
    assert table.main(["--runs", str(runs), "--out", str(out)]) == 0
    demo = [r for r in json.loads(out.read_text())["toolkit"] if r["model"] == "demo"][0]
    assert "gpu_days" not in demo["search_cost"] and "CPU seconds" in demo["search_cost"]["text"]


def test_published_rows_are_labelled(table, tmp_path, capsys):
    out = tmp_path / "t.json"
    assert table.main(["--out", str(out)]) == 0
    text = capsys.readouterr().out
    pub = {r["model"]: r for r in json.loads(out.read_text())["published"]}
    assert all(r["status"] == "published" and r["source"] for r in pub.values())
    assert pub["OFA"]["top1"] == 77.7 and pub["OFA"]["search_cost"] == "50 GPU-days"
    assert pub["ZiCo"]["top1"] == "n/a" and pub["ZiCo"]["macs"] == "n/a"
    assert pub["MOTE-NAS"]["top1"] == "76.2 / 77.1"
    pub_lines = [ln for ln in text.splitlines() if ln.startswith("| ") and ("OFA" in ln or "MOTE-NAS" in ln)]
    assert pub_lines and all("published" in ln for ln in pub_lines)


@pytest.mark.parametrize("flag", ["--runs", "--retrain"])
def test_missing_folder_exits_2(table, tmp_path, capsys, flag):
    out = tmp_path / "t.json"
    assert table.main([flag, str(tmp_path / "nope"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "does not exist" in err
    assert not out.exists()
