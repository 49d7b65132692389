"""tools/search_table.py: the search table of any benchmark space, here from precomputed per-network scores."""
import csv
import json

import pytest

from mobile_mote.search_spaces import get_space


@pytest.fixture(scope="module")
def tool(load_tool):
    return load_tool("search_table")


def test_table_from_precomputed_scores(tool, tmp_path, shared_data, capsys):
    space = get_space("nb201")
    scores = tmp_path / "scores.csv"
    with open(scores, "w", newline="") as f:  # a real, cheap score for every cell: params, with a recorded cost
        w = csv.writer(f)
        w.writerow(["arch", "score", "seconds"])
        for a in space.enumerate():
            w.writerow([a, space.params(a), 0.5])
    rc = tool.main(["--scores", str(scores), "--seeds", "2", "--methods", "MOTE-NAS (k=5),MOTE-NAS-EF",
                       "--datasets", "cifar100", "--benchmark", str(shared_data / "nb201" / "benchmark.csv"),
                       "--work-dir", str(tmp_path / "work"), "--out-dir", str(tmp_path), "--tag", "t"])
    assert rc == 0
    res = json.loads((tmp_path / "nb201_search_table_t.json").read_text())
    ef = [r for r in res["runs"] if r["method"] == "MOTE-NAS-EF"]
    k5 = [r for r in res["runs"] if r["method"] == "MOTE-NAS (k=5)"]
    assert len(ef) == len(k5) == 2
    # EF costs only the recorded estimator seconds; k=5 adds five 12-epoch trainings from the table
    assert all(r["evaluation_seconds"] == 0 and r["estimator_seconds"] == 0.5 * r["candidates"] for r in ef)
    assert all(r["evaluation_seconds"] > 0 for r in k5)
    assert all(0 < r["final_accuracy"] < 100 for r in res["runs"])
    out = capsys.readouterr().out
    assert "[paper, published]" in out and "[precomputed, this run]" in out
    ref = res["references"]["cifar100"]
    assert ref["feasible"] == 15625 and ref["best_feasible"]["accuracy"] >= max(r["final_accuracy"] for r in res["runs"])
    assert all(r["final_accuracy"] <= r["random_best_of_n"] or r["random_best_of_n"] <= ref["best_feasible"]["accuracy"]
               for r in res["runs"])


def _macro_scores(path, score):
    space = get_space("macro")
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["arch", "score", "seconds"])
        for a in space.enumerate():
            w.writerow([a, score(space, a), 0.1])


def test_macro_table_under_budgets_against_the_best_feasible_and_random(tool, tmp_path, capsys):
    scores = tmp_path / "scores.csv"
    _macro_scores(scores, lambda sp, a: sp.params(a))  # a real, cheap score: more parameters is better
    rc = tool.main(["--space", "macro", "--scores", str(scores), "--seeds", "2", "--methods", "MOTE-NAS-EF",
                       "--budgets", "40M,60M", "--work-dir", str(tmp_path / "work"), "--out-dir", str(tmp_path),
                       "--tag", "t"])
    assert rc == 0
    res = json.loads((tmp_path / "macro_search_table_t.json").read_text())
    assert res["conditions"] == ["cifar10@40M", "cifar10@60M"]
    refs = res["references"]
    assert refs["cifar10@40M"]["feasible"] < refs["cifar10@60M"]["feasible"] < 6561
    assert refs["cifar10@60M"]["best_feasible"]["accuracy"] >= refs["cifar10@40M"]["best_feasible"]["accuracy"]
    for r in res["runs"]:
        assert len(r["winner"]) == 8 and r["winner_macs"] <= r["budget_macs"]
        assert r["final_accuracy"] <= refs[r["condition"]]["best_feasible"]["accuracy"]
        assert r["random_best_of_n"] <= refs[r["condition"]]["best_feasible"]["accuracy"]
        # ranks and the feasible count are over distinct networks (keys of one network share a row)
        assert r["candidates"] > 0 and 1 <= r["final_rank_networks"] <= refs[r["condition"]]["feasible"]
        assert refs[r["condition"]]["feasible"] < refs[r["condition"]]["feasible_keys"]
    # the same seeds from the same store: the rerun scores nothing new and gives the same winners
    assert tool.main(["--space", "macro", "--scores", str(scores), "--seeds", "2", "--methods", "MOTE-NAS-EF",
                         "--budgets", "40M,60M", "--work-dir", str(tmp_path / "work"), "--out-dir", str(tmp_path),
                         "--tag", "t2"]) == 0
    again = json.loads((tmp_path / "macro_search_table_t2.json").read_text())
    assert [r["winner"] for r in again["runs"]] == [r["winner"] for r in res["runs"]]
    assert "best feasible [benchmark table]" in capsys.readouterr().out


def test_unknown_space_or_budget_is_one_line(tool, tmp_path, capsys):
    scores = tmp_path / "s.csv"
    scores.write_text("arch,score\n00000000,1\n")
    assert tool.main(["--space", "mbv2", "--scores", str(scores), "--out-dir", str(tmp_path)]) == 2
    assert tool.main(["--space", "macro", "--scores", str(scores), "--budgets", "1K", "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(e.startswith("search_table: error:") for e in err)


def test_missing_or_malformed_scores_file_is_one_line(tool, tmp_path, capsys):
    assert tool.main(["--scores", str(tmp_path / "none.csv"), "--seeds", "1", "--out-dir", str(tmp_path)]) == 2
    bad = tmp_path / "bad.csv"
    bad.write_text("cell,value\nx,1\n")
    assert tool.main(["--scores", str(bad), "--seeds", "1", "--out-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(e.startswith("search_table: error:") for e in err)
