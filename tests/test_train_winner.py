"""The winner record (mobile_mote.winner), models built straight from it (train.build_winner), explicit
timm registration, timm's own optimizer/scheduler kwargs helpers, atomic writes and the up-front checks
of the retraining loop (validation shards before training, a checkpoint before validation)."""
from __future__ import annotations

import inspect
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from mobile_mote.errors import InputError
from mobile_mote.winner import SCHEMA_VERSION, WinnerRecord
from mobile_mote.search_spaces import get_space

pytestmark = [pytest.mark.usefixtures("torch_one_thread"), pytest.mark.filterwarnings("ignore::DeprecationWarning")]
REPO = Path(__file__).resolve().parents[1]


def _summary_and_winner(space="mbv3", seed=3, **w_over):
    sp = get_space(space)
    arch = sp.sample(np.random.default_rng(seed))
    summary = {"run": "demo", "space": space, "estimator": "mote", "estimator_config": {"epochs": 3},
               "algorithm": "mote-nas", "search": {"k": 3}, "seed": 0, "device": "cpu", "estimator_seconds": 12.5}
    w = {"arch": arch, "macs": sp.macs(arch), "params": sp.params(arch), "latency_ms": None, "score": 1.5,
         "constraint": {"max_macs": 400_000_000}, "evaluation": {"accuracy": 51.0}, "evaluation_seconds": 2.5, **w_over}
    return summary, w, sp, arch


def _old_winner_record(summary: dict, w: dict) -> dict:
    """search/outputs.py:winner_record as it was before WinnerRecord (the keys it must keep writing)."""
    rec = {"space": summary["space"], "arch": w["arch"], "macs": w["macs"], "params": w["params"],
           "latency_ms": w.get("latency_ms"), "score": w["score"], "constraint": w["constraint"],
           "evaluation": w.get("evaluation"), "estimator": summary["estimator"],
           "estimator_config": summary["estimator_config"], "algorithm": summary["algorithm"],
           "search": summary["search"], "seed": summary["seed"], "device": summary["device"],
           "cost_seconds": {"estimator": summary["estimator_seconds"], "evaluation": w.get("evaluation_seconds", 0.0),
                            "total": summary["estimator_seconds"] + w.get("evaluation_seconds", 0.0)}}
    if w.get("final_accuracy") is not None:
        rec["final_accuracy"] = w["final_accuracy"]
        rec["final_accuracy_source"] = w["final_accuracy_source"]
    rec["timm_arch_def"] = get_space(summary["space"]).arch_def(w["arch"])
    return rec


# -- the record ------------------------------------------------------------------------------------
@pytest.mark.parametrize("final", [None, 71.5])
def test_winner_record_keeps_every_key_and_round_trips(tmp_path, final):
    from mobile_mote.search.outputs import winner_record

    over = {} if final is None else {"final_accuracy": final, "final_accuracy_source": "NB201 benchmark"}
    summary, w, sp, arch = _summary_and_winner(**over)
    written = winner_record(summary, w)
    old = _old_winner_record(summary, w)
    assert {k: written[k] for k in old} == old  # every key the search wrote before, same values
    assert written["schema_version"] == SCHEMA_VERSION and set(written) - set(old) == {
        "schema_version", "provenance", "data_quality"}
    assert ("final_accuracy" in written) == (final is not None)

    run = tmp_path / "run"
    run.mkdir()
    (run / "winner.json").write_text(json.dumps(written, indent=2))
    for where in (run, run / "winner.json"):  # a run folder stands for its winner.json
        rec = WinnerRecord.from_file(where)
        assert rec.to_dict() == written and rec.path == run / "winner.json"
    rec = WinnerRecord.from_json(rec.to_json())
    assert rec == WinnerRecord.from_summary(summary, w, sp) and rec.timm_arch_def == sp.arch_def(arch)
    assert rec.cost_seconds == {"estimator": 12.5, "evaluation": 2.5, "total": 15.0}
    out = rec.write(tmp_path)  # a folder gets winner.json, atomically
    assert out == tmp_path / "winner.json" and WinnerRecord.from_file(out) == rec
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_provenance_and_data_quality_come_from_the_summary():
    summary, w, _, _ = _summary_and_winner()
    rec = WinnerRecord.from_summary({**summary, "data_quality": "demo", "provenance": {"git": "abc"}}, w, "mbv3")
    assert rec.data_quality == "demo" and rec.provenance == {"git": "abc"}
    assert WinnerRecord.from_dict(rec.to_dict()).data_quality == "demo"


def test_legacy_record_without_schema_version_reads(tmp_path):
    summary, w, _, arch = _summary_and_winner()
    legacy = _old_winner_record(summary, w)
    legacy["an_unknown_key"] = [1, 2]
    p = tmp_path / "winner.json"
    p.write_text(json.dumps(legacy))
    rec = WinnerRecord.from_file(p)
    assert rec.schema_version == 0 and rec.arch == arch and rec.macs == w["macs"]
    assert rec.data_quality is None and rec.extra == {"an_unknown_key": [1, 2]}
    assert rec.to_dict()["an_unknown_key"] == [1, 2]  # kept when written back
    # a hand-written record: space and arch are enough; integral floats are whole numbers
    rec = WinnerRecord.from_dict({"space": "mbv2", "arch": "mobilenetv2_100", "macs": 3.0e8})
    assert rec.macs == 300_000_000 and isinstance(rec.macs, int) and rec.params is None


@pytest.mark.parametrize("content,needle", [
    (None, "not found"),
    ("{not json", "not JSON"),
    ("[1, 2]", "a JSON object"),
    ('{"arch": "x"}', "missing key 'space'"),
    ('{"space": "mbv3"}', "missing key 'arch'"),
    ('{"space": "mbv3", "arch": "a", "macs": "lots"}', "key 'macs' is 'lots' (str); accepted: a whole number"),
    ('{"space": "mbv3", "arch": "a", "params": 3.5}', "key 'params' is 3.5 (float); accepted: a whole number"),
    ('{"space": "mbv3", "arch": "a", "params": true}', "key 'params' is True (bool)"),
    ('{"space": "mbv3", "arch": 5}', "key 'arch' is 5 (int); accepted: the architecture string"),
    ('{"space": "mbv3", "arch": "a", "score": "high"}', "key 'score'"),
    ('{"space": "mbv3", "arch": "a", "cost_seconds": {"total": "long"}}', "key 'cost_seconds'"),
    ('{"space": "mbv3", "arch": "a", "timm_arch_def": ["ds_r1"]}', "key 'timm_arch_def'"),
    ('{"space": "mbv3", "arch": "a", "data_quality": 3}', "key 'data_quality'"),
    ('{"space": "mbv3", "arch": "a", "schema_version": 99}', "schema_version 99 is newer"),
    ('{"space": "mbv3", "arch": "a", "schema_version": "1"}', "key 'schema_version'"),
])
def test_bad_records_are_one_line_input_errors(tmp_path, content, needle):
    p = tmp_path / "winner.json"
    if content is not None:
        p.write_text(content)
    with pytest.raises(InputError) as e:
        WinnerRecord.from_file(p)
    msg = str(e.value)
    assert needle in msg and "\n" not in msg, msg
    assert "accepted" in msg or "expected the winner.json" in msg, msg


def test_imagenet_table_reads_through_winner_record(tmp_path, capsys, load_tool):
    from mobile_mote.studies.imagenet_table import presets
    mod = load_tool("imagenet_table")
    assert presets() == [("mbv2", "mobilenetv2_100"), ("mbv3", "mobilenetv3_large_100")]
    run = tmp_path / "runs" / "bad"
    run.mkdir(parents=True)
    (run / "winner.json").write_text('{"space": "mbv2", "arch": "mobilenetv2_100", "macs": "lots"}')
    out = tmp_path / "t.json"
    assert mod.main(["--runs", str(tmp_path / "runs"), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert "key 'macs'" in err and len(err.splitlines()) == 1 and not out.exists()


# -- spaces and models -----------------------------------------------------------------------------
def test_timm_model_info_decides_what_is_retrainable():
    from mobile_mote import train
    assert get_space("mbv3").timm_model_info() == {
        "head": "mobilenetv3", "first_conv": "conv_stem", "classifier": "classifier",
        "preset": "mobilenetv3_large_100", "resolution": 224, "num_classes": 1000}
    assert get_space("mbv2").timm_model_info()["head"] == "efficientnet"
    assert get_space("nb201").timm_model_info() is None
    assert train.retrainable_spaces() == ["mbv2", "mbv3"]
    assert train.PRESETS == ("mote_mobilenetv2_100", "mote_mobilenetv3_large_100")
    with pytest.raises(InputError, match="space 'nb201' cannot be retrained as an ImageNet model; accepted: mbv2, mbv3"):
        train.arch_info("nb201", "x")
    with pytest.raises(InputError, match="cannot be retrained.*accepted: mbv2, mbv3"):
        train.arch_info("no_such_space", "x")
    with pytest.raises(InputError, match="expected a search space"):
        train.arch_info(42, "x")


def test_import_train_registers_nothing():
    code = ("import train, timm; before = timm.list_models('mote_*'); names = train.register_presets(); "
            "print(before, names, timm.list_models('mote_*'))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip() == ("[] ['mote_mobilenetv2_100', 'mote_mobilenetv3_large_100'] "
                                   "['mote_mobilenetv2_100', 'mote_mobilenetv3_large_100']")


def test_build_winner_without_the_registry(tmp_path):
    import timm
    import torch

    from mobile_mote import train
    from timm.models._registry import _model_entrypoints

    summary, w, sp, arch = _summary_and_winner(seed=7)
    path = tmp_path / "winner.json"
    path.write_text(WinnerRecord.from_summary(summary, w, sp).to_json())
    registered_before = set(_model_entrypoints)
    model = train.build_winner(tmp_path, num_classes=10, drop_rate=0.1)  # the run folder
    assert set(_model_entrypoints) == registered_before  # timm's registry untouched
    name = model.pretrained_cfg["architecture"]
    assert name == "mote_" + train.models.default_winner_name("mbv3", sp.canonical(arch)) and not timm.is_model(name)
    assert model.get_classifier().out_features == 10 and type(model).__name__ == "MobileNetV3"
    assert sum(p.numel() for p in model.parameters()) == sp.params(arch, num_classes=10)
    cfg = model.pretrained_cfg
    assert cfg["input_size"] == (3, 224, 224) and cfg["first_conv"] == "conv_stem" and cfg["classifier"] == "classifier"
    assert cfg["mean"] == train.models.IMAGENET_MEAN and cfg["interpolation"] == "bicubic"
    assert timm.data.resolve_model_data_config(model)["crop_pct"] == 0.875
    # the same network as the registered one, from a WinnerRecord as well
    ref = train.create_model(path, num_classes=10)
    again = train.build_winner(WinnerRecord.from_file(path), num_classes=10)
    assert {k: v.shape for k, v in again.state_dict().items()} == {k: v.shape for k, v in ref.state_dict().items()}
    with torch.no_grad():
        assert again.eval()(torch.zeros(1, 3, 32, 32)).shape == (1, 10)
    feats = train.build_winner(path, features_only=True, out_indices=(1, 2))(torch.zeros(1, 3, 64, 64))
    assert [f.shape[-1] for f in feats] == [16, 8]  # strides 4 and 8
    with pytest.raises(InputError, match="no pretrained weights"):
        train.build_winner(path, pretrained=True)
    nb = tmp_path / "nb.json"
    nb.write_text(json.dumps({"space": "nb201", "arch": get_space("nb201").default_arch()}))
    with pytest.raises(InputError, match="cannot be retrained as an ImageNet model; accepted: mbv2, mbv3"):
        train.build_winner(nb)


# -- timm's kwargs helpers ---------------------------------------------------------------------------
# What train/loop.py's own _optimizer_kwargs / _scheduler_kwargs (copies of timm train.py's) produced
# for each bundled recipe resolved at global batch 256 with seed 7, recorded before they were replaced.
_SCHED_COMMON = {"min_lr": 0.0, "warmup_lr": 1e-06, "warmup_epochs": 5.0, "warmup_prefix": False, "cooldown_epochs": 0,
                 "noise_pct": 0.67, "noise_std": 1.0, "noise_seed": 7, "cycle_mul": 1.0, "cycle_decay": 0.5,
                 "cycle_limit": 1, "k_decay": 1.0, "step_on_epochs": True, "sched": "step", "decay_rate": 0.973}
OLD_KWARGS = {
    "mobilenetv2_100": (
        {"opt": "rmsproptf", "lr": 0.0075, "weight_decay": 4e-05, "momentum": 0.9, "eps": 0.001},
        {**_SCHED_COMMON, "num_epochs": 450, "decay_epochs": 2.4, "noise": None}),
    "mobilenetv3_large_100": (
        {"opt": "rmsproptf", "lr": 0.016, "weight_decay": 1e-05, "momentum": 0.9, "eps": 0.001},
        {**_SCHED_COMMON, "num_epochs": 600, "decay_epochs": 2.4, "noise": [0.42, 0.9]}),
    "mote_nas_200ep": (
        {"opt": "rmsproptf", "lr": 0.016, "weight_decay": 1e-05, "momentum": 0.9, "eps": 0.001},
        {**_SCHED_COMMON, "num_epochs": 200, "decay_epochs": 0.8, "noise": [0.42, 0.9]}),
}
# and for a recipe using the optional keys (betas, layer decay, opt_kwargs, milestones, ...), at batch 32, seed 0
CUSTOM = dict(opt="adamw", lr_base=0.004, lr_base_size=16, sched="multistep", sched_on_updates=True, epochs=3,
              warmup_epochs=1, warmup_lr=1e-4, decay_milestones=[1, 2], opt_betas=[0.8, 0.99], layer_decay=0.7,
              opt_kwargs={"amsgrad": True}, lr_cycle_decay=0.3, warmup_prefix=True)
CUSTOM_OLD = (
    {"opt": "adamw", "lr": 0.008, "weight_decay": 2e-05, "momentum": 0.9, "betas": [0.8, 0.99], "layer_decay": 0.7,
     "amsgrad": True},
    {"sched": "multistep", "num_epochs": 3, "decay_epochs": 90, "decay_rate": 0.1, "min_lr": 0.0, "warmup_lr": 0.0001,
     "warmup_epochs": 1.0, "warmup_prefix": True, "cooldown_epochs": 0, "noise": None, "noise_pct": 0.67,
     "noise_std": 1.0, "noise_seed": 0, "cycle_mul": 1.0, "cycle_decay": 0.3, "cycle_limit": 1, "k_decay": 1.0,
     "step_on_epochs": False, "decay_milestones": [1, 2]})


def _effective(fn, kwargs: dict, skip=("model_or_params", "optimizer", "updates_per_epoch", "param_group_fn")) -> dict:
    """The arguments ``fn`` ends up with: its signature defaults overlaid by ``kwargs`` (tuples as lists)."""
    out = {k: p.default for k, p in inspect.signature(fn).parameters.items()
           if k not in skip and p.kind is not inspect.Parameter.VAR_KEYWORD}
    out.update(kwargs)
    return {k: list(v) if isinstance(v, tuple) else v for k, v in out.items()}


def test_timm_kwargs_helpers_give_the_same_optimizer_and_schedule():
    import torch
    from timm.optim import create_optimizer_v2
    from timm.scheduler import create_scheduler_v2

    from mobile_mote import train
    from mobile_mote.train.loop import optimizer_and_scheduler_kwargs

    assert set(OLD_KWARGS) == set(train.list_recipes())
    cases = [(train.resolve(train.load_recipe(n), 256), 7, old) for n, old in OLD_KWARGS.items()]
    cases.append((train.resolve(train.load_recipe(CUSTOM), 32), 0, CUSTOM_OLD))
    for recipe, seed, (old_opt, old_sched) in cases:
        opt_kw, sched_kw = optimizer_and_scheduler_kwargs(recipe, seed)
        assert _effective(create_optimizer_v2, opt_kw) == _effective(create_optimizer_v2, old_opt), recipe["name"]
        assert _effective(create_scheduler_v2, sched_kw) == _effective(create_scheduler_v2, old_sched), recipe["name"]
        # and the objects they build agree: hyper-parameters and the learning rate along the schedule
        lrs = []
        for kw_o, kw_s in ((opt_kw, sched_kw), (old_opt, old_sched)):
            model = torch.nn.Linear(2, 2)
            o = create_optimizer_v2(model, **kw_o)
            s, _ = create_scheduler_v2(o, **kw_s, updates_per_epoch=4)
            trace = []
            for step in range(0, 40, 3):
                s.step(step // 4)
                s.step_update(num_updates=step)
                trace.append(o.param_groups[0]["lr"])
            lrs.append((type(o).__name__, {k: v for k, v in o.defaults.items() if k != "foreach"}, trace))
        assert lrs[0] == lrs[1], recipe["name"]


# -- atomic writes ---------------------------------------------------------------------------------------
def test_atomic_path_renames_on_success_and_removes_on_failure(tmp_path):
    from mobile_mote import atomic

    target = tmp_path / "f.bin"
    atomic.write_bytes(target, b"one", fsync=True)
    assert target.read_bytes() == b"one"
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            assert tmp.parent == tmp_path and tmp != target
            raise RuntimeError("writer died")
    assert target.read_bytes() == b"one" and sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]
    with atomic.atomic_path(target, tmp=tmp_path / "f.bin.tmp-1") as tmp:
        tmp.write_bytes(b"two")
    assert target.read_bytes() == b"two" and sorted(p.name for p in tmp_path.iterdir()) == ["f.bin"]
    with pytest.raises(ValueError, match="same folder|folder of"):
        with atomic.atomic_path(target, tmp=tmp_path.parent / "elsewhere.tmp"):
            pass
    atomic.write_text(tmp_path / "t.txt", "text")
    atomic.torch_save({"a": 1}, tmp_path / "o.pt")
    import torch
    assert torch.load(tmp_path / "o.pt") == {"a": 1} and (tmp_path / "t.txt").read_text() == "text"


# -- retraining: checks before training, a checkpoint before validation ------------------------------
@pytest.fixture(scope="module")
def tiny_shards(tmp_path_factory):
    """Two sets of shards (train: 12 images, val: 9 images in 3 shards) of generated 16x16 JPEGs."""
    from PIL import Image

    from mobile_mote.train.shards import write_shards

    base = tmp_path_factory.mktemp("tiny")
    rng = np.random.default_rng(0)
    for split, n in (("train", 4), ("val", 3)):
        for c in ("a", "b", "c"):
            (base / split / c).mkdir(parents=True)
            for i in range(n):
                Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(base / split / c / f"{c}{i}.jpg")
    out = base / "shards"
    write_shards(base / "train", out, "tr", max_samples=6, progress=False)
    write_shards(base / "val", out, "va", max_samples=3, progress=False)
    return out


def test_validation_shards_are_checked_before_training(tiny_shards, tmp_path):
    import shutil

    from mobile_mote.train.data import check_val_shards
    from mobile_mote.train.loop import retrain

    assert check_val_shards(tiny_shards / "va-index.json") == 9
    assert check_val_shards(str(tiny_shards / "va-{000000..000002}.tar")) == 9
    with pytest.raises(InputError, match=r"2 given, but va-index.json lists 3 \(missing e.g. va-000002.tar\)"):
        check_val_shards(str(tiny_shards / "va-{000000..000001}.tar"))
    bad = tmp_path / "bad"
    shutil.copytree(tiny_shards, bad)
    cut = bad / "va-000001.tar"
    cut.write_bytes(cut.read_bytes()[:2048])
    with pytest.raises(InputError, match="va-000001.tar is 2048 bytes, its index records"):
        check_val_shards(bad / "va-index.json")
    index = json.loads((bad / "va-index.json").read_text())
    (bad / "va-index.json").write_text(json.dumps({**index, "complete": False}))
    with pytest.raises(InputError, match="incomplete"):
        check_val_shards(bad / "va-index.json")
    # retrain refuses before it creates or writes anything
    recipe = {"opt": "sgd", "lr": 0.1, "sched": "cosine", "epochs": 1, "batch_size": 2, "img_size": 16}
    out = tmp_path / "never"
    with pytest.raises(InputError, match="incomplete"):
        retrain(recipe, "mobilenetv3_small_050", train_data=str(tiny_shards / "tr-index.json"),
                val_data=str(bad / "va-index.json"), output_dir=out, progress=False)
    assert not out.exists()


CHECKPOINT_FIRST = textwrap.dedent("""
    import json, sys, torch
    from pathlib import Path
    from mobile_mote.train.data import ValCountError
    from mobile_mote.train.loop import retrain

    class Loader:
        def __init__(self, n, expected=None):
            self.n, self.expected, self.skipped = n, expected, 0
        def set_epoch(self, e):
            pass
        def __len__(self):
            return self.n
        def __iter__(self):
            g = torch.Generator().manual_seed(0)
            for _ in range(self.n):
                yield torch.randn(2, 3, 8, 8, generator=g), torch.randint(0, 3, (2,), generator=g)

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 8 * 8, 3))
    recipe = {"opt": "sgd", "lr": 0.01, "sched": "cosine", "epochs": 2, "batch_size": 2, "img_size": 8}
    out = Path(sys.argv[1])
    try:  # validation expects 5 images per pass but sees 4: a ValCountError after the first epoch
        retrain(recipe, model, train_data=Loader(3), val_data=Loader(2, expected=5), output_dir=out,
                num_classes=3, num_workers=0, progress=False, checkpoint_every=100)
    except ValCountError as e:
        print("VALCOUNT", e)
    print(json.dumps(sorted(p.name for p in (out / "checkpoints").iterdir())))
    print(json.loads((out / "checkpoints" / "step_3" / "trainer_state.json").read_text())["epoch"])
""")


def test_checkpoint_is_written_before_validation_can_fail(tmp_path):
    import os
    env = dict(os.environ, OMP_NUM_THREADS="1", CUDA_VISIBLE_DEVICES="")
    proc = subprocess.run([sys.executable, "-c", CHECKPOINT_FIRST, str(tmp_path / "run")], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("VALCOUNT validation saw 4 images")
    assert json.loads(lines[1]) == ["step_3"] and lines[2] == "1"  # epoch 0's 3 steps kept; resume starts epoch 1
