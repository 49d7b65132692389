"""tools/fusion_study.py: components from records, fused rules, and the table `mote fuse` reads."""
import json

import numpy as np
import pytest

from mobile_mote.correlation import rank_agreement
from mobile_mote.fusion import fuse_table
from mobile_mote.search_spaces import get_space



@pytest.fixture(scope="module")
def tool(load_tool):
    return load_tool("fusion_study")


def _records(tmp_path, archs):
    rng = np.random.default_rng(0)  # synthetic records (not estimates): the tool's bookkeeping is under test
    with open(tmp_path / "r.mote.jsonl", "w") as f:
        for a in archs:
            f.write(json.dumps({"arch": a, "estimator": "mote", "status": "ok", "score": -1.0, "seconds": 2.0,
                                "config": {"estimator": "mote", "transform": "log"},
                                "terms": {"landscape": float(rng.uniform(1, 5)), "speed": float(rng.uniform(1, 5))}}) + "\n")
    with open(tmp_path / "r.synflow.jsonl", "w") as f:
        for i, a in enumerate(archs):
            rec = {"arch": a, "estimator": "synflow", "status": "ok" if i else "failed",
                   "score": float(rng.normal()) if i else None, "seconds": 0.1}
            f.write(json.dumps(rec) + "\n")


def test_fused_rules_match_mote_fuse_on_the_written_table(tool, tmp_path):
    archs = list(get_space("macro").enumerate())[:40:3]
    _records(tmp_path, archs)
    argv = ["--space", "macro", "--records", str(tmp_path / "r"), "--components", "landscape,speed,synflow,macs",
            "--rule", "terms=landscape,speed", "--out-dir", str(tmp_path), "--tag", "t"]
    assert tool.main(argv) == 0
    res = json.loads((tmp_path / "macro_fusion_t.json").read_text())
    assert res["n"] == len(archs) - 1  # the failed synflow record has no component
    assert set(res["rules"]) == {"all", "terms"} and res["rules"]["terms"]["components"] == ["landscape", "speed"]
    fuse_table(tmp_path / "macro_fusion_t_components.csv", tmp_path / "fused.csv",
               ["landscape", "speed", "synflow", "macs"])  # the "all" rule
    rows = [ln.split(",") for ln in (tmp_path / "fused.csv").read_text().splitlines()[1:]]
    truth = [c["acc_cifar10"] for c in res["cells"]]
    assert [r[0] for r in rows] == [c["arch"] for c in res["cells"]]
    tau = rank_agreement([float(r[1]) for r in rows], truth)["kendall_tau"]
    assert tau == pytest.approx(res["rules"]["all"]["agreement"]["cifar10"]["kendall_tau"])


def test_missing_records_or_bad_rule_is_one_line(tool, tmp_path, capsys):
    archs = list(get_space("macro").enumerate())[:10]
    _records(tmp_path, archs)
    base = ["--space", "macro", "--records", str(tmp_path / "r"), "--out-dir", str(tmp_path)]
    assert tool.main(base + ["--components", "landscape,zico"]) == 2
    assert tool.main(base + ["--components", "landscape,speed", "--rule", "x=landscape,jacov"]) == 2
    assert tool.main(base + ["--components", "released_mote"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 3 and all(e.startswith("fusion_study: error:") for e in err)


def test_rule_chosen_on_the_first_networks_and_reported_on_the_rest(tool, tmp_path):
    archs = list(get_space("macro").enumerate())[:60:2]
    _records(tmp_path, archs)
    argv = ["--space", "macro", "--records", str(tmp_path / "r"), "--components", "landscape,speed,synflow,macs",
            "--rule", "terms=landscape,speed", "--rule", "count=macs,synflow", "--select-on", "10",
            "--out-dir", str(tmp_path), "--tag", "s"]
    assert tool.main(argv) == 0
    res = json.loads((tmp_path / "macro_fusion_s.json").read_text())
    sel = res["selection"]
    assert sel["networks"] == 10 and sel["chosen"] == max(sel["mean_tau"], key=sel["mean_tau"].get)
    assert res["n"] == len(archs) - 1 - 10  # reported on the networks never used to choose
    chosen_cells = {c["arch"] for c in res["cells"]}
    assert len(chosen_cells) == res["n"] and archs[1] not in chosen_cells  # the first ones chose the rule
    assert tool.main(argv[:-4] + ["--select-on", "500", "--out-dir", str(tmp_path)]) == 2
    sel_cells = (tmp_path / "macro_fusion_s_selection_cells.txt").read_text().split()
    assert len(sel_cells) == 10 and not set(sel_cells) & chosen_cells and archs[1] in sel_cells


def test_excluded_networks_leave_every_figure_and_stay_in_the_table(tool, tmp_path):
    archs = list(get_space("macro").enumerate())[:40:2]
    _records(tmp_path, archs)
    (tmp_path / "ex.txt").write_text("\n".join(archs[2:6]) + "\n")
    out = tmp_path / "table.csv"
    argv = ["--space", "macro", "--records", str(tmp_path / "r"), "--components", "landscape,synflow",
            "--exclude", str(tmp_path / "ex.txt"), "--table-out", str(out), "--out-dir", str(tmp_path), "--tag", "x"]
    assert tool.main(argv) == 0
    res = json.loads((tmp_path / "macro_fusion_x.json").read_text())
    assert res["n"] == len(archs) - 1 - 4 and res["excluded"] == 4
    assert not {c["arch"] for c in res["cells"]} & set(archs[2:6])
    rows = [ln.split(",") for ln in out.read_text().splitlines()]
    assert rows[0] == ["arch", "landscape", "synflow"] and len(rows) == 1 + len(archs)
    assert rows[1][0] == archs[0] and rows[1][2] == ""  # the failed synflow record: an empty cell
    assert tool.main(argv[:-4] + ["--exclude", str(tmp_path / "nope.txt"), "--out-dir", str(tmp_path)]) == 2


def test_committed_nb201_report_table_recomputes_its_figures():
    """fused_nb201_components.csv is the seed-1 sample with our components; mote fuse on it gives the
    committed τ of mote-z's rule on the cells never used to choose it."""
    from pathlib import Path

    from mobile_mote.fusion import log_rank_sum, read_component_table
    from mobile_mote.scoring import sample_archs
    results = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
    archs, cols = read_component_table(results / "fused_nb201_components.csv")
    assert archs == sample_archs("nb201", 1500, 1)
    assert {"synflow", "jacov", "naswot", "zico", "mote", "landscape", "speed"} <= set(cols)
    assert sum(v is not None for v in cols["mote"]) >= 150
    res = json.loads((results / "nb201_fusion_report_mote150.json").read_text())
    cells = [c["arch"] for c in res["cells"]]
    rule = res["rules"]["motez"]["components"]
    row = {a: i for i, a in enumerate(archs)}
    fused = log_rank_sum({c: [cols[c][row[a]] for a in cells] for c in rule})
    for target in ("cifar10", "cifar100", "imagenet16"):
        tau = rank_agreement(fused, [c[f"acc_{target}"] for c in res["cells"]])["kendall_tau"]
        assert tau == pytest.approx(res["rules"]["motez"]["agreement"][target]["kendall_tau"], abs=1e-12)
