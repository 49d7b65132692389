"""The search-algorithm contract: the registry, every registered algorithm's profiles and CLI options,
and one store-backed run (then a resume that scores nothing) of each, so a new algorithm folder is
tested by its registration alone."""
import json
from dataclasses import fields

import pytest

from mobile_mote.efficiency.constraints import Constraint
from mobile_mote.errors import InputError
from mobile_mote.profiles import PROFILES
from mobile_mote.registry import Registry
from mobile_mote.search import RunSpec, run
from mobile_mote.search.algorithms import ALGORITHMS, algorithm_class, algorithm_config, algorithms_for


def test_the_registry_lists_creates_and_refuses():
    reg = Registry("widget")

    @reg.register("a")
    class A:
        def __init__(self, x=1):
            self.x = x

    assert reg.names() == ["a"] and "a" in reg and A.name == "a" and reg.create("a", x=3).x == 3
    with pytest.raises(InputError, match="unknown widget 'b'; accepted: a"):
        reg.get("b")
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("a")(type("B", (), {}))


def test_resolve_gives_estimator_and_algorithm_settings_alike():
    from mobile_mote.estimators.base import PROFILES as TRAINING
    from mobile_mote.profiles import resolve
    assert resolve("estimator", "mote", "cpu") == TRAINING["cpu"]
    assert resolve("estimator", "snip", "tiny") == {}  # the training run's sizes are not a proxy's
    assert resolve("algorithm", "ef", "quick", {"draw_factor": 9}) == {**algorithm_class("ef").PROFILES["quick"],
                                                                       "draw_factor": 9}
    for kind, name, key, message in (("estimator", "mote", "nope", "unknown option"),
                                     ("algorithm", "rs", "nope", "has no setting 'nope'")):
        with pytest.raises(InputError, match=message) as e:
            resolve(kind, name, "paper", {key: 1})
        assert "\n" not in str(e.value)
    with pytest.raises(InputError, match="unknown profile 'huge'"):
        resolve("algorithm", "rs", "huge")
    with pytest.raises(InputError, match="unknown kind of plug-in 'space'; accepted: estimator, algorithm"):
        resolve("space", "nb201")


def test_every_algorithm_folder_registers_itself():
    assert {"mote-nas", "ef", "rs", "nsga2", "pdns", "lamoo", "mo-hdnas"} <= set(ALGORITHMS.names())
    assert set(algorithms_for("search")) | set(algorithms_for("pareto")) == set(ALGORITHMS.names())
    with pytest.raises(InputError, match="unknown algorithm 'banana'"):
        algorithm_class("banana")


@pytest.mark.parametrize("name", ALGORITHMS.names())
def test_profiles_give_valid_settings_and_no_seed_of_its_own(name):
    cls = algorithm_class(name)
    assert "seed" not in {f.name for f in fields(cls.Config)}  # the run's seed drives every algorithm
    assert set(cls.PROFILES) <= set(PROFILES)
    for profile in PROFILES:
        cfg = cls.config_of(algorithm_config(name, profile))
        cls.check_config(cfg)
        n, step = cls.first_step(cfg)
        assert n > 0 and step
    with pytest.raises(InputError, match="no setting 'nonsense'"):
        cls.config_of({"nonsense": 1})


@pytest.mark.parametrize("command", ["search", "pareto"])
def test_the_cli_resolves_algorithms_through_the_registry(command):
    from mobile_mote.cli import build_parser
    parser = build_parser()
    sub = parser._subparsers._group_actions[0].choices[command]
    action = next(a for a in sub._actions if a.dest == "algorithm")
    assert list(action.choices) == algorithms_for(command)
    for name in algorithms_for(command):
        for f in algorithm_class(name).cli_fields():
            assert any(a.dest == f.name for a in sub._actions), (name, f.name)


def _spec(name, tmp_path, benchmark, **kw):
    cls = algorithm_class(name)
    config = algorithm_config(name, "tiny")
    names = {f.name for f in fields(cls.Config)}
    if "objectives" in names:
        config["objectives"] = ("score", "macs")
    if "metrics" in names:  # PDNS's training-free metrics: the params estimator gives one, its score
        config["metrics"] = ("score",)
    return RunSpec(name=f"r_{name}", space="nb201", constraints=[Constraint(max_macs=60e6)], estimator="params",
                   algorithm=name, algorithm_config=config, profile="tiny", runs_dir=str(tmp_path),
                   benchmark=benchmark, **kw)  # a table's short training: no evaluation stage trains


@pytest.mark.parametrize("name", ALGORITHMS.names())
def test_each_algorithm_runs_writes_its_summary_and_resumes(name, tmp_path, capsys, shared_data):
    bench = str(shared_data / "nb201" / "benchmark.csv")
    spec = _spec(name, tmp_path, bench)
    summary = run(spec, progress=False)
    assert summary["algorithm"] == name and summary["profile"] == "tiny" and summary["scored_this_session"] > 0
    assert json.loads((tmp_path / f"r_{name}" / "summary.json").read_text())["algorithm"] == name
    assert algorithm_class(name).report(spec, summary) in (None, 0)
    assert capsys.readouterr().out.strip()  # the CLI's lines
    again = run(_spec(name, tmp_path, bench), resume=True, progress=False)
    assert again["scored_this_session"] == 0
    ident = spec.config_dict()
    assert ident["algorithm"] == name and "profile" not in ident and "seed" not in ident["algorithm_config"]


def test_the_run_context_leaves_its_spec_as_given(tmp_path, shared_data):
    from mobile_mote.search.context import RunContext
    spec = _spec("rs", tmp_path, str(shared_data / "nb201" / "benchmark.csv"), device=" CPU ")
    ctx = RunContext(spec)
    assert spec.device == " CPU " and ctx.spec.device == "cpu" and ctx.spec.name == spec.name
