"""train/: timm registration of block-space architectures, model cards, recipes as data, ONNX export."""
from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import torch

import timm
from mobile_mote import train
from mobile_mote.errors import InputError
from mobile_mote.search_spaces import get_space
from mobile_mote.train.recipes import load_recipe, resolve, save_resolved

pytestmark = [pytest.mark.usefixtures("torch_one_thread"), pytest.mark.filterwarnings("ignore::DeprecationWarning")]


@pytest.fixture(autouse=True, scope="module")
def presets_registered():
    """Registering with timm is explicit (``import train`` registers nothing): the presets, once."""
    train.register_presets()


def _conv_linear_macs(model, resolution: int) -> int:
    """MACs of conv and linear layers from one forward pass (the DESIGN.md definition)."""
    total = 0

    def conv(m, _, out):
        nonlocal total
        total += out[0].numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]

    def lin(m, _, out):
        nonlocal total
        total += m.in_features * m.out_features

    hooks = [m.register_forward_hook(conv if isinstance(m, torch.nn.Conv2d) else lin)
             for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, resolution, resolution))
    for h in hooks:
        h.remove()
    return total


def _winner(tmp_path, space_name="mbv3", seed=3, **over):
    sp = get_space(space_name)
    arch = sp.sample(np.random.default_rng(seed))
    rec = {"space": space_name, "arch": arch, "macs": sp.macs(arch), "params": sp.params(arch), "score": 1.25,
           "estimator": "mote", "algorithm": "mote-nas", "seed": 0, "constraint": {"max_macs": 4e8}}
    rec.update(over)
    path = tmp_path / "winner.json"
    path.write_text(json.dumps(rec))
    return path, sp, arch


# -- registration ---------------------------------------------------------------------------------
@pytest.mark.parametrize("preset", ["mobilenetv2_100", "mobilenetv3_large_100"])
def test_presets_match_timm(preset):
    name = "mote_" + preset
    assert name in train.PRESETS and name in timm.list_models("mote_*")
    ours, ref = timm.create_model(name), timm.create_model(preset)
    a = {k: tuple(v.shape) for k, v in ours.state_dict().items()}
    b = {k: tuple(v.shape) for k, v in ref.state_dict().items()}
    assert a == b
    ours.load_state_dict(ref.state_dict(), strict=True)  # timm's pretrained weights load as they are
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(ours.eval()(x), ref.eval()(x), atol=1e-6)
    # the weights source is timm's own (no download here)
    assert ours.pretrained_cfg["hf_hub_id"] == timm.models.get_pretrained_cfg(preset).hf_hub_id
    assert f"{name}.{ours.pretrained_cfg['tag']}" in timm.list_pretrained("mote_*")


@pytest.mark.parametrize("preset,cls", [("mobilenetv2_100", "EfficientNet"), ("mobilenetv3_large_100", "MobileNetV3")])
def test_default_cfg_fields(preset, cls):
    m = timm.create_model("mote_" + preset)
    assert type(m).__name__ == cls
    cfg = m.default_cfg
    assert cfg["input_size"] == (3, 224, 224) and cfg["interpolation"] == "bicubic" and cfg["crop_pct"] == 0.875
    assert cfg["mean"] == (0.485, 0.456, 0.406) and cfg["std"] == (0.229, 0.224, 0.225)
    assert cfg["num_classes"] == 1000 and cfg["architecture"] == "mote_" + preset and cfg["pool_size"] == (7, 7)
    assert isinstance(m.get_submodule(cfg["first_conv"]), torch.nn.Conv2d)
    assert m.get_submodule(cfg["first_conv"]).in_channels == 3
    assert isinstance(m.get_submodule(cfg["classifier"]), torch.nn.Linear)
    assert timm.data.resolve_model_data_config(m)["input_size"] == (3, 224, 224)


def test_winner_round_trip(tmp_path):
    path, sp, arch = _winner(tmp_path)
    model = train.create_model(path)
    name = model.pretrained_cfg["architecture"]
    assert name.startswith("mote_mbv3_") and name in timm.list_models("mote_*")
    assert sum(p.numel() for p in model.parameters()) == sp.params(arch)
    info = train.model_info(name)
    assert info["macs"] == json.loads(path.read_text())["macs"] and info["params"] == sp.params(arch)
    assert info["timm_arch_def"] == sp.arch_def(arch) and info["score"] == 1.25
    assert info["source"] == str(path.resolve())
    # the built network is the counted one: conv + linear MACs at a small resolution
    assert _conv_linear_macs(model, 64) == sp.macs(arch, resolution=64)
    # plain timm sees it too, with timm's keyword arguments
    m10 = timm.create_model(name, num_classes=10, drop_rate=0.2, drop_path_rate=0.1)
    assert m10.get_classifier().out_features == 10
    # registering again (the file or its run directory) is a no-op; the same name for another arch is refused
    assert train.register_winner(path) == name == train.resolve_model_name(tmp_path)
    other = sp.mutate(arch, np.random.default_rng(0))
    with pytest.raises(InputError, match="already registered"):
        train.register_arch(name, "mbv3", other)
    assert train.register_arch("my_net", sp, other) == "mote_my_net"


def test_winner_mbv2_and_cost_mismatch_warns(tmp_path):
    path, sp, arch = _winner(tmp_path, "mbv2", seed=5, macs=123)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        name = train.register_winner(path, name="mbv2_w")
    assert name == "mote_mbv2_w" and any("differ from the analytic" in str(w.message) for w in caught)
    m = timm.create_model(name)
    assert type(m).__name__ == "EfficientNet" and sum(p.numel() for p in m.parameters()) == sp.params(arch)


@pytest.mark.parametrize("content,needle", [
    (None, "not found"),
    ("{not json", "not JSON"),
    ('{"arch": "x"}', "'space' and 'arch'"),
    ('{"space": "nb201", "arch": "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"}', "cannot be retrained"),
    ('{"space": "mbv3", "arch": "k3e4|bad"}', "mbv3"),
])
def test_bad_winner_files(tmp_path, content, needle):
    path = tmp_path / "winner.json"
    if content is not None:
        path.write_text(content)
    with pytest.raises(InputError, match=needle):
        train.register_winner(path)


def test_bad_names_and_models():
    with pytest.raises(InputError, match="lower-case"):
        train.register_arch("Bad.Name", "mbv2", "mobilenetv2_100")
    with pytest.raises(InputError, match="unknown model"):
        train.create_model("no_such_model")
    assert train.resolve_model_name("mobilenetv2_100") == "mote_mobilenetv2_100"


def test_model_card(tmp_path):
    sp = get_space("mbv3")
    card = train.write_model_card(tmp_path / "ckpt", "mote_mobilenetv3_large_100", "mobilenetv3_large_100", "mbv3",
                                  recipe="mobilenetv3_large_100", extra={"epochs_run": 3})
    on_disk = json.loads((tmp_path / "ckpt" / "model_card.json").read_text())
    assert on_disk["top1"] == "not measured" and on_disk["recipe"] == "mobilenetv3_large_100"
    assert on_disk["macs"] == sp.macs("mobilenetv3_large_100") == card["macs"]
    assert on_disk["params"] == 5_483_032 and on_disk["timm_arch_def"] == sp.arch_def("mobilenetv3_large_100")
    assert on_disk["provenance"]["timm_equivalent"] == "mobilenetv3_large_100"
    md = (tmp_path / "ckpt" / "MODEL_CARD.md").read_text()
    assert "not measured" in md and "216.6 M" in md and "cn_r1_k1_s1_c960" in md
    recipe = resolve(load_recipe("mote_nas_200ep"), 2560)
    card = train.write_model_card(tmp_path, "x", "mobilenetv2_100", "mbv2", recipe=recipe, top1=72.9)
    assert card["top1"] == 72.9 and card["recipe"] == "mote_nas_200ep"
    assert card["recipe_config"]["lr"] == pytest.approx(0.16)
    with pytest.raises(InputError, match="percentage"):
        train.write_model_card(tmp_path, "x", "mobilenetv2_100", "mbv2", top1=0.729e3)


# -- recipes --------------------------------------------------------------------------------------
def test_bundled_recipes():
    assert set(train.list_recipes()) >= {"mobilenetv2_100", "mobilenetv3_large_100", "mote_nas_200ep"}
    v3 = load_recipe("mobilenetv3_large_100")
    expected = dict(opt="rmsproptf", opt_eps=0.001, lr_base=0.064, lr_base_size=1024, sched="step", decay_epochs=2.4,
                    decay_rate=0.973, epochs=600, warmup_lr=1e-6, warmup_epochs=5, weight_decay=1e-5, model_ema=True,
                    model_ema_decay=0.9999, aa="rand-m9-mstd0.5", reprob=0.2, remode="pixel", drop=0.2,
                    drop_path=0.2, amp=True)
    assert {k: v3[k] for k in expected} == expected
    v2 = load_recipe("mobilenetv2_100")
    assert v2["opt"] == "rmsproptf" and v2["sched"] == "step" and v2["model_ema"] and v2["aa"].startswith("rand-")
    assert v2["reprob"] > 0 and v2["lr_base"] == 0.045 and v2["lr_base_size"] == 1536
    mote = load_recipe("mote_nas_200ep")
    assert mote["epochs"] == 200 and mote["decay_rate"] ** (mote["epochs"] / mote["decay_epochs"]) == \
        pytest.approx(v3["decay_rate"] ** (v3["epochs"] / v3["decay_epochs"]))


def test_linear_lr_scaling_and_save(tmp_path):
    v3 = load_recipe("mobilenetv3_large_100")
    assert resolve(v3, 1024)["lr"] == pytest.approx(0.064)
    r = resolve(v3, 256)
    assert r["lr"] == pytest.approx(0.016) and r["global_batch"] == 256 and "lr" not in v3
    assert resolve(load_recipe("mobilenetv2_100"), 768)["lr"] == pytest.approx(0.0225)
    assert resolve({**v3, "lr": 0.5}, 4096)["lr"] == 0.5  # an explicit lr wins, as in timm
    assert resolve({**v3, "lr_base_scale": "sqrt"}, 4096)["lr"] == pytest.approx(0.128)
    (tmp_path / "run").mkdir()
    out = save_resolved(r, tmp_path / "run")  # a directory gets recipe.yaml
    assert out == tmp_path / "run" / "recipe.yaml" and out.read_text().startswith("# resolved recipe")
    again = load_recipe(out)
    assert again["lr"] == pytest.approx(0.016) and again["global_batch"] == 256 and again["lr_noise"] == [0.42, 0.9]
    assert not list((tmp_path / "run").glob(".*tmp"))
    with pytest.raises(InputError, match="resolve"):
        save_resolved(v3, tmp_path / "x.yaml")
    for bad in (0, -8, 2.5, True):
        with pytest.raises(InputError, match="global batch"):
            resolve(v3, bad)


@pytest.mark.parametrize("text,needle", [
    ("opt: sgd\nsched: step\nepochs: 10\nlr: 0.1\nlearning_rate: 0.1\n", "unknown key 'learning_rate'"),
    ("opt: sgd\nsched: step\nepochs: 10\nlr_bse: 0.1\n", "did you mean 'lr_base'"),
    ("opt: sgd\nsched: step\nepochs: 10\n", "no learning rate"),
    ("opt: sgd\nsched: step\nepochs: 10\nlr_base: 0.1\n", "lr_base_size"),
    ("opt: sgd\nsched: step\nepochs: ten\nlr: 0.1\n", "epochs must be a number"),
    ("opt: sgd\nsched: step\nepochs: 10\nlr: 0.1\nreprob: 2\n", "0..1"),
    ("- a\n- b\n", "mapping"),
    ("opt: [unclosed\n", "not valid YAML"),
])
def test_recipe_validation(tmp_path, text, needle):
    p = tmp_path / "r.yaml"
    p.write_text(text)
    with pytest.raises(InputError, match=needle):
        load_recipe(p)


def test_recipe_lookup_and_spellings(tmp_path):
    with pytest.raises(InputError, match="unknown recipe 'nope'; accepted: .*mobilenetv3_large_100"):
        load_recipe("nope")
    with pytest.raises(InputError, match="not found"):
        load_recipe(tmp_path / "missing.yaml")
    p = tmp_path / "mine.yaml"
    p.write_text("opt: sgd\nsched: cosine\nepochs: 10\nlr-base: 0.1\nlr-base-size: 256\nweight-decay: 1e-5\n")
    r = load_recipe(p)
    assert r["name"] == "mine" and r["weight_decay"] == 1e-5 and resolve(r, 512)["lr"] == pytest.approx(0.2)


# -- ONNX export ----------------------------------------------------------------------------------
def test_onnx_parity_and_atomicity(tmp_path, monkeypatch):
    import onnx
    import onnxruntime as ort
    from mobile_mote.train import export as te

    path, sp, arch = _winner(tmp_path, "mbv3", seed=11)
    model = train.create_model(path)
    out = tmp_path / "m.onnx"
    rep = te.export_onnx(model, out, resolution=32)
    assert rep["ok"] and rep["max_abs_diff"] <= rep["tolerance"] and rep["parity_batches"] == [1, 3]
    assert rep["output_shapes"] == [[1, 1000], [3, 1000]] and rep["opset"] == 17 and model.training
    proto = onnx.load(str(out))
    dim0 = proto.graph.input[0].type.tensor_type.shape.dim[0]
    assert dim0.dim_param == "batch" and proto.opset_import[0].version == 17
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["architecture"] == model.pretrained_cfg["architecture"] and meta["interpolation"] == "bicubic"
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert sess.run(None, {"input": np.zeros((5, 3, 32, 32), np.float32)})[0].shape == (5, 1000)
    # a failed parity check leaves the previous file as it was and no temporary behind
    before = out.read_bytes()
    monkeypatch.setattr(te, "RTOL", -1.0)
    with pytest.raises(te.ExportError) as exc:
        te.export_onnx(model, out, resolution=32)
    assert exc.value.report["ok"] is False and out.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    with pytest.raises(InputError, match="resolution"):
        te.export_onnx(model, out, resolution=4)


# -- mote export ----------------------------------------------------------------------------------
@pytest.fixture
def mote(monkeypatch, capsys):
    from mobile_mote import cli

    def run(*argv):
        rc = cli.main(["export", *map(str, argv)])
        out, err = capsys.readouterr()
        return rc, out, err
    return run


def test_cli_export_winner_with_checkpoint(tmp_path, mote):
    path, sp, arch = _winner(tmp_path, "mbv3", seed=2)
    trained = train.create_model(path, num_classes=10)
    ck = tmp_path / "ckpt.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in trained.state_dict().items()},
                "state_dict_ema": trained.state_dict(), "epoch": 3}, ck)
    rc, out, err = mote("--model", path, "--checkpoint", ck, "--num-classes", 10, "--out", tmp_path / "w.onnx",
                        "--resolution", 32, "--threads", 1)
    assert rc == 0, err
    assert out.count("\n") == 1
    rep = json.loads(out)
    assert rep["ok"] and rep["max_abs_diff"] <= rep["tolerance"] and rep["output_shapes"][0] == [1, 10]
    assert "state_dict_ema" in rep["weights"] and (tmp_path / "w.onnx").is_file()
    rc, out, _ = mote("--model", "mobilenetv3_large_100", "--out", tmp_path / "p.onnx", "--resolution", 32,
                      "--no-check")
    assert rc == 0 and json.loads(out)["model"] == "mote_mobilenetv3_large_100" and json.loads(out)["ok"] is None


def test_cli_export_bad_input(tmp_path, mote):
    target = tmp_path / "keep.onnx"
    target.write_bytes(b"previous")
    wrong = tmp_path / "mbv2.pth"
    torch.save(timm.create_model("mote_mobilenetv2_100").state_dict(), wrong)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    cases = [
        (["--model", "no_such_net"], "unknown model"),
        (["--model", tmp_path / "missing.json"], "not found"),
        (["--model", "mobilenetv3_large_100", "--checkpoint", tmp_path / "none.pth"], "not found"),
        (["--model", "mobilenetv3_large_100", "--checkpoint", wrong], "does not fit"),
        (["--model", "mobilenetv3_large_100", "--checkpoint", junk], "cannot read checkpoint"),
        (["--model", "mobilenetv3_large_100", "--resolution", 4], "resolution"),
        (["--model", "mobilenetv3_large_100", "--opset", 5], "opset"),
    ]
    for argv, needle in cases:
        rc, out, err = mote(*argv, "--out", target)
        assert rc == 2, (argv, err)
        assert needle in err and err.count("\n") == 1 and out == ""
    assert target.read_bytes() == b"previous"
