"""mobile_mote.fusion and `mote fuse`: the sum of log-ranks over a population."""
import math

import pytest

from mobile_mote.cli import main
from mobile_mote.errors import InputError
from mobile_mote.fusion import DEFAULT_RULE, fuse_table, log_rank_sum, read_component_table, record_components


def test_log_rank_sum_by_hand():
    a = [1.0, 2.0, 3.0]
    b = [30.0, 10.0, 20.0]
    got = log_rank_sum({"a": a, "b": b})
    want = [math.log(1 / 3) + math.log(3 / 3), math.log(2 / 3) + math.log(1 / 3), math.log(3 / 3) + math.log(2 / 3)]
    assert got == pytest.approx(want)
    # ties share their mean rank; a single component keeps its order
    tied = log_rank_sum({"a": [5.0, 5.0, 1.0]})
    assert tied == pytest.approx([math.log(2.5 / 3), math.log(2.5 / 3), math.log(1 / 3)])


def test_fused_score_depends_on_the_population_and_skips_missing():
    full = log_rank_sum({"a": [1.0, 2.0, 3.0, 4.0]})
    part = log_rank_sum({"a": [1.0, 2.0]})
    assert full[1] != part[1]  # the same value, another pool, another fused score
    got = log_rank_sum({"a": [1.0, None, 3.0], "b": [2.0, 1.0, float("nan")]})
    assert got[1] is None and got[2] is None and got[0] == pytest.approx(0.0)
    # -inf (a flagged, non-finite component) is the worst value: it ranks last instead of dropping out
    worst = log_rank_sum({"a": [float("-inf"), 2.0, 3.0], "b": [1.0, 2.0, 3.0]})
    assert worst == pytest.approx(log_rank_sum({"a": [0.0, 2.0, 3.0], "b": [1.0, 2.0, 3.0]}))


def test_unequal_columns_are_refused():
    with pytest.raises(InputError, match="different lengths"):
        log_rank_sum({"a": [1.0], "b": [1.0, 2.0]})


def test_record_components_negates_mote_terms():
    rec = {"estimator": "mote", "status": "ok", "score": -3.0, "terms": {"landscape": 5.0, "speed": 2.0}}
    assert record_components(rec) == {"mote": -3.0, "landscape": -5.0, "speed": -2.0}
    assert record_components({"estimator": "synflow", "status": "failed", "score": None}) == {}
    assert record_components({"estimator": "naswot", "status": "flagged", "score": None}) == {"naswot": -math.inf}


def test_mote_fuse_cli(tmp_path, capsys):
    table = tmp_path / "t.csv"
    table.write_text("arch,x,y,z\nA,1,10,\nB,2,30,5\nC,3,20,6\n")
    out = tmp_path / "s.csv"
    assert main(["fuse", "--table", str(table), "--out", str(out), "--components", "x,y"]) == 0
    rows = [ln.split(",") for ln in out.read_text().splitlines()[1:]]
    want = log_rank_sum({"x": [1, 2, 3], "y": [10, 30, 20]})
    assert [r[0] for r in rows] == ["A", "B", "C"]
    assert [float(r[1]) for r in rows] == pytest.approx(want)
    # by default the rule chosen for every space, over the components the table has
    rule_table = tmp_path / "r.csv"
    rule_table.write_text("arch,naswot,macs,other\nA,1,10,\nB,2,30,5\nC,3,20,6\n")
    out2 = tmp_path / "s2.csv"
    assert fuse_table(rule_table, out2)["components"] == [c for c in DEFAULT_RULE if c in ("naswot", "macs")]
    assert out2.read_text().splitlines()[1].startswith("A,-")
    with pytest.raises(InputError, match="none of the default rule's components"):
        fuse_table(table, tmp_path / "s3.csv")
    # an existing output is kept unless --force
    before = out.read_text()
    assert main(["fuse", "--table", str(table), "--out", str(out)]) == 2
    assert out.read_text() == before
    assert "exists" in capsys.readouterr().err


@pytest.mark.parametrize("text,match", [("name,x\nA,1\n", "no 'arch' column"), ("arch,x\nA,1\nA,2\n", "appears twice"),
                                        ("arch,x\nA,fast\n", "not a number"), ("arch,x\nA,1\n", "not in the table")])
def test_bad_tables_are_one_line(tmp_path, capsys, text, match):
    table = tmp_path / "t.csv"
    table.write_text(text)
    comps = ["w"] if match == "not in the table" else None
    with pytest.raises(InputError, match=match):
        read_component_table(table, comps)
    assert main(["fuse", "--table", str(table), "--out", str(tmp_path / "o.csv")]
                + (["--components", "w"] if comps else [])) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and not (tmp_path / "o.csv").exists()
