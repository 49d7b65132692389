"""mobile_mote.studies' shared pieces: published figures as data, a benchmark's own references, the refit."""
import numpy as np
import pytest

from mobile_mote.errors import InputError


def test_every_published_figure_names_its_source():
    from mobile_mote.studies.published import _all, published
    names = [k for k in _all() if not k.startswith("_")]
    assert {"vkdnw_nb201_table1", "mote_nas_nb201_table1", "mote_official_speed", "imagenet"} <= set(names)
    assert all(published(n)["source"] for n in names)
    assert all(r["source"] for r in published("imagenet")["rows"])
    table1 = published("mote_nas_nb201_table1")
    assert table1["space"] == "nb201" and table1["rows"]["MOTE-NAS-EF"]["cifar100"] == [71.59, 600.0]
    published("imagenet")["rows"].clear()  # a caller's copy: the next reader still gets every row
    assert len(published("imagenet")["rows"]) == 7


def test_best_feasible_and_random_with_the_same_n_on_macro():
    from mobile_mote.benchmarks import load_benchmark, packaged_benchmark
    from mobile_mote.efficiency import make_costs
    from mobile_mote.studies.truth import benchmark_path, random_best_of_n, reference
    from mobile_mote.search_spaces import get_space
    space = get_space("macro")
    path = benchmark_path("macro", None, "/nowhere")
    assert path == packaged_benchmark("macro") and benchmark_path("macro", "given.csv", "/nowhere") == "given.csv"
    bench = load_benchmark(path, "macro", "cifar10")
    ref = reference(bench, space, make_costs(space), 50e6)
    accs = ref["feasible_accuracy"]
    assert ref["feasible"] == len(accs) < ref["feasible_keys"] and ref["best_feasible"]["accuracy"] == accs.max()
    assert ref["mean_feasible_accuracy"] == pytest.approx(accs.mean())
    assert random_best_of_n(accs, len(accs), 0) == accs.max()  # every network drawn: the best one
    assert random_best_of_n(accs, 3, 1) <= accs.max() and random_best_of_n(accs, 3, 1) == random_best_of_n(accs, 3, 1)
    with pytest.raises(InputError, match="no network of the benchmark fits"):
        reference(bench, space, make_costs(space), 1e3)


def test_refit_only_for_box_cox():
    from mobile_mote.studies.truth import refit_mote
    rng = np.random.default_rng(0)
    recs = [{"arch": str(i), "status": "ok", "score": 0.0,
             "terms": {"landscape": float(rng.uniform(1, 5)), "speed": float(rng.uniform(1, 5))}} for i in range(8)]
    assert refit_mote(recs, {"estimator": "mote", "transform": "log"}) == (recs, None)
    refit, fit = refit_mote(recs, {"estimator": "mote", "transform": "box-cox"})
    assert fit and len(refit) == len(recs) and len({r["score"] for r in refit}) > 1


def test_set_overrides_parse_outside_the_cli():
    from mobile_mote.cli.args import parse_set as from_cli
    from mobile_mote.overrides import parse_set
    assert from_cli is parse_set
    assert parse_set(["epochs=3", "lr=0.01", "amp=false", "step-mode=graph"]) == {
        "epochs": 3, "lr": 0.01, "amp": False, "step_mode": "graph"}
    with pytest.raises(InputError, match="expected key=value"):
        parse_set(["epochs"])


def test_flops_on_every_cell_ranks_the_whole_table_beside_the_published_row():
    from mobile_mote.studies.rules import flops_on_every_cell
    from mobile_mote.search_spaces import get_space
    space = get_space("nb201")
    archs = [space.sample(np.random.default_rng(i)) for i in range(12)]

    class Bench:  # the benchmark's own FLOPs order as its accuracy, reversed on one data set
        table = dict.fromkeys(archs)

        def truth_for(self, cells):
            m = [space.macs(a) for a in cells]
            return {"cifar10": m, "cifar100": m, "imagenet16": [-v for v in m]}

    out = flops_on_every_cell(space, Bench())
    assert out["cells"] == 12
    assert out["tau"]["cifar10"] == pytest.approx(1.0) and out["tau"]["imagenet16"] == pytest.approx(-1.0)
    assert out["published"] == {"cifar10": 0.623, "cifar100": 0.586, "imagenet16": 0.545}
