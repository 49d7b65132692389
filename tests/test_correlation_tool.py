"""tools/correlation.py: one correlation tool for any benchmark space (NB201, NAS-Bench-Macro)."""
import json

import pytest

from mobile_mote.scoring import sample_from_file
from mobile_mote.search_spaces import get_space



@pytest.fixture(scope="module")
def tool(load_tool):
    return load_tool("correlation")


def test_macro_correlation_with_the_seed_ceiling(tool, tmp_path, shared_data):
    argv = ["--space", "macro", "--n", "12", "--estimators", "synflow", "--profile", "tiny", "--no-plots",
            "--proxy-data", str(shared_data / "proxy_cifar100_10"), "--out-dir", str(tmp_path), "--tag", "t"]
    assert tool.main(argv) == 0
    res = json.loads((tmp_path / "macro_correlation_t.json").read_text())
    assert res["targets"] == ["cifar10"] and res["n"] == 12
    assert {"synflow", "macs", "params"} <= set(res["summary"])
    for name in ("synflow", "macs", "params"):
        assert res["summary"][name]["agreement"]["cifar10"]["n"] == 12
    assert len(res["ceiling"]["pairs"]) == 3 and -1 <= res["ceiling"]["mean_pairwise_kendall_tau"] <= 1
    cell = res["cells"][0]
    assert len(cell["arch"]) == 8 and len(cell["test_acc_seeds"]) == 3 and "synflow" in cell["scores"]
    lines = (tmp_path / "macro_correlation_t.synflow.jsonl").read_text().splitlines()
    assert len(lines) == 12 and all(json.loads(x)["estimator"] == "synflow" for x in lines)
    # a second run resumes from the records instead of scoring again
    assert tool.main(argv) == 0
    assert len((tmp_path / "macro_correlation_t.synflow.jsonl").read_text().splitlines()) == 12


def test_records_are_scored_through_the_store_and_exported_to_the_jsonl(tool, tmp_path, shared_data, monkeypatch):
    from mobile_mote.estimators.base import Estimator
    argv = ["--space", "macro", "--n", "6", "--estimators", "synflow", "--profile", "tiny", "--no-plots",
            "--proxy-data", str(shared_data / "proxy_cifar100_10"), "--out-dir", str(tmp_path), "--tag", "t"]
    assert tool.main(argv) == 0
    jsonl = tmp_path / "macro_correlation_t.synflow.jsonl"
    lines = jsonl.read_text().splitlines()
    assert list(json.loads(lines[0])) == ["space", "arch", "estimator", "score", "terms", "config", "config_hash",
                                          "seed", "device", "seconds", "status", "error"]
    calls = []
    estimate = Estimator.estimate
    monkeypatch.setattr(Estimator, "estimate", lambda self, space, arch, *a, **k: calls.append(arch) or estimate(
        self, space, arch, *a, **k))
    # records lost from the JSONL (a kill between the store and the file) are read back from the store
    jsonl.write_text("\n".join(lines[:2]) + "\n")
    assert tool.main(argv) == 0
    assert calls == [] and jsonl.read_text().splitlines() == lines
    # records only the JSONL holds (committed results) are imported, never scored again
    assert tool.main(argv + ["--store", str(tmp_path / "other.db")]) == 0
    assert calls == [] and jsonl.read_text().splitlines() == lines
    from mobile_mote.store import SearchStore
    with SearchStore(tmp_path / "other.db") as s:
        assert len(s.records()) == 6


def test_unknown_benchmark_space_is_one_line(tool, tmp_path, capsys, shared_data):
    argv = ["--space", "mbv2", "--n", "3", "--estimators", "synflow", "--no-plots",
            "--proxy-data", str(shared_data / "proxy_cifar100_10"), "--out-dir", str(tmp_path)]
    assert tool.main(argv) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_tse_and_early_stop_reuse_motes_run_and_records_are_shared(tool, tmp_path, shared_data):
    common = ["--space", "macro", "--profile", "tiny", "--no-plots", "--records", "shared", "--set", "epochs=1",
              "--set", "points=1", "--proxy-data", str(shared_data / "proxy_cifar100_10"), "--out-dir", str(tmp_path)]
    assert tool.main(common + ["--n", "4", "--estimators", "mote,tse,early_stop_acc", "--tag", "big"]) == 0
    res = json.loads((tmp_path / "macro_correlation_big.json").read_text())
    assert res["summary"]["tse"]["derived_from"] == "mote"
    mote = [json.loads(x) for x in (tmp_path / "macro_correlation_shared.mote.jsonl").read_text().splitlines()]
    tse = [json.loads(x) for x in (tmp_path / "macro_correlation_shared.tse.jsonl").read_text().splitlines()]
    assert [t["score"] for t in tse] == [-m["terms"]["tse"] for m in mote]
    # a smaller sample is a prefix of the larger one: its summary comes from the same records, no training
    assert tool.main(common + ["--n", "3", "--estimators", "mote,tse", "--tag", "small"]) == 0
    small = json.loads((tmp_path / "macro_correlation_small.json").read_text())
    assert small["n"] == 3 and small["summary"]["mote"]["wall_seconds_this_run"] < 1.0
    assert len((tmp_path / "macro_correlation_shared.mote.jsonl").read_text().splitlines()) == 4


def test_sample_from_a_split_file(tool, tmp_path, shared_data, capsys):
    split = tmp_path / "split.csv"
    split.write_text("index,arch\n" + "".join(f"{i},{a}\n" for i, a in enumerate(
        ["00000000", "11111111", "22222222", "01201201", "21021021"])))
    argv = ["--space", "macro", "--n", "4", "--archs", str(split), "--estimators", "synflow", "--no-plots",
            "--proxy-data", str(shared_data / "proxy_cifar100_10"), "--out-dir", str(tmp_path), "--tag", "s"]
    assert tool.main(argv) == 0
    cells = [c["arch"] for c in json.loads((tmp_path / "macro_correlation_s.json").read_text())["cells"]]
    assert len(set(cells)) == 4 and set(cells) <= {"00000000", "11111111", "22222222", "01201201", "21021021"}
    assert cells[:3] == sample_from_file(str(split), get_space("macro"), 3, 0)  # a smaller n: a prefix
    assert tool.main(argv[:3] + ["9"] + argv[4:]) == 2
    assert "asked for 9" in capsys.readouterr().err


def test_mote_z_trains_its_own_run_and_is_scored_over_the_sample(tool, tmp_path, shared_data):
    from mobile_mote.fusion import log_rank_sum, record_components
    argv = ["--space", "macro", "--profile", "tiny", "--no-plots", "--set", "epochs=1", "--set", "points=1",
            "--set", "components=landscape,speed,synflow", "--n", "4", "--estimators", "mote,mote-z",
            "--proxy-data", str(shared_data / "proxy_cifar100_10"), "--out-dir", str(tmp_path), "--tag", "z"]
    assert tool.main(argv) == 0
    recs = [json.loads(x) for x in (tmp_path / "macro_correlation_z.mote-z.jsonl").read_text().splitlines()]
    assert all("derived_from" not in r and "synflow" in r["terms"]["proxies"] for r in recs)
    comps = [record_components(r) for r in recs]
    want = log_rank_sum({c: [x[c] for x in comps] for c in ("landscape", "speed", "synflow")})
    res = json.loads((tmp_path / "macro_correlation_z.json").read_text())
    assert [c["scores"]["mote-z"] for c in res["cells"]] == pytest.approx(want)
