"""Any architecture of a timm-retrainable search space as a timm model, and its model card.

``build_winner("runs/x")`` builds a search's winner straight from its winner.json
(``mobile_mote.winner.WinnerRecord``) through timm's ``build_model_with_cfg``, with a full pretrained
config (input size, mean/std, first conv, classifier) and without touching timm's registry.

Registering is an explicit call: ``register_arch("mine", "mbv3", arch)`` registers ``mote_mine`` in
timm's registry, so ``timm.create_model("mote_mine")``, ``timm.list_models("mote_*")`` and everything
built on them (timm's train.py, validate.py, ``resolve_model_data_config``) work; ``register_winner(path)``
does it for a winner.json; ``register_presets()`` for the spaces' presets (``mote_mobilenetv2_100``,
``mote_mobilenetv3_large_100``: state dicts key for key those of timm's ``mobilenetv2_100`` /
``mobilenetv3_large_100``, pretrained configs pointing at timm's published weights). Importing ``train``
registers nothing.

The network is the one the search counted: ``space.build(arch)`` returns timm's own EfficientNet /
MobileNetV3 class, so the model has exactly the searched MACs and parameters. Which spaces qualify,
and their head/stem/classifier names, come only from ``space.timm_model_info()`` (None: not a timm
model retrainable on ImageNet).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import warnings
from pathlib import Path
from typing import Any

from mobile_mote.atomic import write_text
from mobile_mote.errors import InputError, load_error
from mobile_mote.winner import WinnerRecord

PREFIX = "mote_"
# timm's register_model() looks the pretrained config up in the entrypoint's module under this name.
default_cfgs: dict = {}
_ENTRIES: dict[str, tuple[Any, str]] = {}  # full name -> (space object, canonical arch)
_CARDS: dict[str, dict] = {}  # full name -> model-card fields (arch, costs, provenance)
_NAME_RE = re.compile(r"^[a-z0-9_]+$")
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# -- spaces and architectures -----------------------------------------------------------------
def retrainable_spaces() -> list[str]:
    """Names of the registered spaces whose ``timm_model_info()`` is not None (computed on each call)."""
    from mobile_mote.search_spaces import get_space, list_spaces
    return [n for n in list_spaces() if get_space(n).timm_model_info() is not None]


def _not_retrainable(what: str) -> InputError:
    return InputError(f"space {what} cannot be retrained as an ImageNet model; accepted: "
                      f"{', '.join(retrainable_spaces())}")


def _space(space):
    """A timm-retrainable space from a name or a space object; anything else is an InputError."""
    from mobile_mote.search_spaces import get_space, list_spaces
    if isinstance(space, str):
        if space not in list_spaces():
            raise _not_retrainable(repr(space))
        sp = get_space(space)
    elif callable(getattr(space, "timm_model_info", None)):
        sp = space
    else:
        raise InputError(f"expected a search space or its name ({', '.join(retrainable_spaces())}), "
                         f"got {type(space).__name__}")
    if sp.timm_model_info() is None:
        raise _not_retrainable(repr(getattr(sp, "name", type(sp).__name__)))
    return sp


def _info(sp) -> dict:
    """``sp.timm_model_info()`` with the space's resolution and class count filled in where not given."""
    info = dict(sp.timm_model_info())
    info.setdefault("resolution", sp.resolution)
    info.setdefault("num_classes", sp.num_classes)
    return info


def _canonical(space, arch: str) -> str:
    from mobile_mote.search_spaces import ArchError
    try:
        return space.canonical(arch)
    except ArchError as e:
        raise InputError(str(e).splitlines()[0]) from None


def arch_info(space, arch: str) -> dict:
    """Plain-data description of one architecture: canonical string, timm arch_def, analytic costs."""
    sp = _space(space)
    arch = _canonical(sp, arch)
    macs, params = sp.cost(arch)
    info = _info(sp)
    return {"space": sp.name, "arch": arch, "timm_arch_def": sp.arch_def(arch), "head": info["head"],
            "resolution": info["resolution"], "num_classes": info["num_classes"], "macs": int(macs),
            "params": int(params)}


def _pretrained_cfg(sp, weights: dict | None = None, description: str = "") -> dict:
    info = _info(sp)
    res = info["resolution"]
    pool = -(-res // 32)
    cfg = dict(url="", hf_hub_id=None, input_size=(3, res, res), pool_size=(pool, pool), crop_pct=0.875,
               crop_mode="center", interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD,
               num_classes=info["num_classes"], first_conv=info["first_conv"], classifier=info["classifier"],
               license="apache-2.0", description=description)
    cfg.update(weights or {})
    return cfg


def _preset_weights(preset: str) -> tuple[str, dict]:
    """Tag and weight source of timm's default pretrained config of a preset (no download)."""
    from timm.models import get_pretrained_cfg
    from timm.models._registry import _model_default_cfgs
    tags = getattr(_model_default_cfgs.get(preset), "tags", None)
    tag = tags[0] if tags else ""
    pc = get_pretrained_cfg(f"{preset}.{tag}" if tag else preset)
    if pc is None:
        return "", {}
    return tag, {"url": pc.url or "", "hf_hub_id": pc.hf_hub_id, "hf_hub_filename": pc.hf_hub_filename,
                 "origin_url": pc.origin_url}


# -- registration ---------------------------------------------------------------------------------
def _full_name(name: str) -> str:
    if not isinstance(name, str) or not name:
        raise InputError("a model name is required (letters, digits and '_')")
    full = name if name.startswith(PREFIX) else PREFIX + name
    if not _NAME_RE.match(full):
        raise InputError(f"model name {full!r}: accepted lower-case letters, digits and '_' only "
                         "(timm reads '.' as a pretrained tag)")
    return full


def register_arch(name: str, space, arch: str, *, overwrite: bool = False, _weights: tuple | None = None,
                  **card) -> str:
    """Register ``mote_<name>`` (an architecture of ``space``) with timm; returns the full name.

    ``card`` is free provenance (score, estimator, source file, ...) kept for the model card.
    Registering the same name with the same architecture again is a no-op; with another
    architecture it is an InputError unless ``overwrite=True``.
    """
    import timm
    from timm.models import generate_default_cfgs, register_model

    sp = _space(space)
    info = arch_info(sp, arch)
    full = _full_name(name)
    if full in _ENTRIES:
        old_sp, old_arch = _ENTRIES[full]
        if old_sp.name == sp.name and old_arch == info["arch"] and not overwrite:
            _CARDS[full].update(card)
            return full
        if not overwrite:
            raise InputError(f"model {full!r} is already registered with another architecture "
                             f"({old_sp.name}: {old_arch[:60]}...); choose another name")
    elif timm.is_model(full):
        raise InputError(f"model {full!r} already exists in timm and is not a MOTE registration; choose another name")

    tag, weights = _weights if _weights else ("", {})
    desc = f"MOTE-NAS {sp.name} architecture: {info['macs'] / 1e6:.1f} M MACs, {info['params'] / 1e6:.2f} M params"
    key = f"{full}.{tag}" if tag else full
    default_cfgs[full] = generate_default_cfgs({key: _pretrained_cfg(sp, weights, desc)})[full]

    def entrypoint(pretrained: bool = False, **kwargs):
        sp_, arch_ = _ENTRIES[full]
        return _build(sp_, arch_, full, pretrained, **kwargs)

    entrypoint.__name__ = entrypoint.__qualname__ = full
    entrypoint.__module__ = __name__
    entrypoint.__doc__ = f"{desc}.\n\n{info['arch']}"
    _ENTRIES[full] = (sp, info["arch"])
    _CARDS[full] = {"name": full, **info, **card}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # timm warns when an overwrite replaces an entry
        register_model(entrypoint)
    return full


def _build(sp, arch: str, variant: str, pretrained: bool = False, pretrained_cfg: dict | None = None, **kwargs):
    """timm's ``build_model_with_cfg`` over ``sp.build(arch)`` (as efficientnet's ``_gen_*`` functions do
    over their class). ``pretrained_cfg`` None: the registered config of ``variant``."""
    from timm.models import build_model_with_cfg

    def factory(num_classes: int = 1000, **timm_kwargs):
        model = sp.build(arch, num_classes=num_classes or sp.num_classes, **timm_kwargs)
        if num_classes == 0:
            model.reset_classifier(0)
        return model

    kwargs.setdefault("feature_cfg", dict(flatten_sequential=True))
    return build_model_with_cfg(factory, variant, pretrained, pretrained_cfg=pretrained_cfg, **kwargs)


def preset_names() -> list[str]:
    """The timm names ``register_presets()`` registers (nothing is registered by asking)."""
    from mobile_mote.search_spaces import get_space
    return [PREFIX + get_space(n).timm_model_info()["preset"] for n in retrainable_spaces()
            if get_space(n).timm_model_info().get("preset")]


def register_presets() -> list[str]:
    """Register every retrainable space's preset (``mote_mobilenetv2_100``, ``mote_mobilenetv3_large_100``)
    with timm's weights as their source; idempotent; returns the full names."""
    from mobile_mote.search_spaces import get_space
    names = []
    for space_name in retrainable_spaces():
        sp = get_space(space_name)
        preset = sp.timm_model_info().get("preset")
        if preset:
            names.append(register_arch(preset, sp, preset, _weights=_preset_weights(preset),
                                       source=f"preset: timm {preset}", timm_equivalent=preset))
    return names


def _read_winner(path_or_record) -> WinnerRecord:
    if isinstance(path_or_record, WinnerRecord):
        return path_or_record
    return WinnerRecord.from_file(path_or_record)


def _winner_arch(rec: WinnerRecord, stacklevel: int = 3):
    """(space, canonical arch) of a winner record; warns when its recorded costs differ from the count."""
    sp = _space(rec.space)
    arch = _canonical(sp, rec.arch)
    macs, params = sp.cost(arch)
    where = rec.path or "winner record"
    for fld, value in (("macs", macs), ("params", params)):
        if getattr(rec, fld) is not None and int(getattr(rec, fld)) != int(value):
            warnings.warn(f"{where}: searched {fld} {getattr(rec, fld)} differ from the analytic count {value} "
                          "(another resolution or space configuration?)", stacklevel=stacklevel)
    return sp, arch


def build_winner(record_or_path, num_classes: int | None = None, pretrained: bool = False, **kwargs):
    """The timm model of a search's winner, built straight from its record; timm's registry is untouched.

    ``record_or_path``: a ``WinnerRecord``, a winner.json or a run folder. ``kwargs`` go to timm's
    ``build_model_with_cfg`` and the model class (``drop_rate``, ``drop_path_rate``, ``features_only``,
    ``pretrained_cfg_overlay``, ...). The model's ``pretrained_cfg`` names it
    ``mote_<space>_<8 hex of the arch>`` (the name ``register_winner`` would give it).
    ``pretrained=True`` needs a weight source: only an architecture equal to a preset has one (timm's).
    """
    rec = _read_winner(record_or_path)
    sp, arch = _winner_arch(rec)
    full = _full_name(default_winner_name(sp.name, arch))
    weights: dict = {}
    tag = ""
    preset = _info(sp).get("preset")
    if pretrained and preset and _canonical(sp, preset) == arch:
        tag, weights = _preset_weights(preset)
    if pretrained and not (weights.get("url") or weights.get("hf_hub_id")):
        raise InputError(f"{rec.path or 'winner'}: no pretrained weights exist for this architecture; accepted: "
                         "pretrained=False (retrain it with `mote retrain`), or load a checkpoint with load_weights")
    macs, params = sp.cost(arch)
    desc = f"MOTE-NAS {sp.name} architecture: {macs / 1e6:.1f} M MACs, {params / 1e6:.2f} M params"
    cfg = {**_pretrained_cfg(sp, weights, desc), "architecture": full, "tag": tag}
    if num_classes is not None:
        kwargs["num_classes"] = int(num_classes)
    return _build(sp, arch, full, pretrained, pretrained_cfg=cfg, **kwargs)


def default_winner_name(space: str, arch: str) -> str:
    """``<space>_<8 hex>``: stable for one architecture, different for any other."""
    return f"{space}_{hashlib.sha1(arch.encode()).hexdigest()[:8]}"


def register_winner(path, name: str | None = None) -> str:
    """Register the architecture of a search's winner (a winner.json, runs/<name>/ or a ``WinnerRecord``)
    with timm; returns the full timm name."""
    rec = _read_winner(path)
    sp, arch = _winner_arch(rec)
    keep = ("score", "estimator", "algorithm", "seed", "constraint", "latency_ms", "final_accuracy",
            "final_accuracy_source", "data_quality")
    card = {k: getattr(rec, k) for k in keep if getattr(rec, k) is not None}
    card.update(source=str(rec.path.resolve()) if rec.path else "winner record", searched_macs=rec.macs,
                searched_params=rec.params)
    return register_arch(name or default_winner_name(sp.name, arch), sp, arch, **card)


def _is_winner_path(x) -> bool:
    return isinstance(x, os.PathLike) or (isinstance(x, str) and (x.endswith(".json") or os.sep in x))


def resolve_model_name(name_or_winner_path) -> str:
    """A registered name for a mote name, a bare preset/winner name, a winner.json path or a timm model."""
    import timm
    if _is_winner_path(name_or_winner_path):
        return register_winner(name_or_winner_path)
    name = str(name_or_winner_path)
    if name in _ENTRIES:
        return name
    if PREFIX + name in _ENTRIES:
        return PREFIX + name
    if timm.is_model(name):
        return name
    known = ", ".join(sorted(_ENTRIES)) or "none; train.register_presets() registers the presets"
    raise InputError(f"unknown model {name!r}; accepted: a winner.json path, a registered MOTE model ({known}) "
                     "or a timm model name")


def create_model(name_or_winner_path, **kwargs):
    """``timm.create_model`` over a MOTE name or a winner.json path (registered on the way)."""
    import timm
    return timm.create_model(resolve_model_name(name_or_winner_path), **kwargs)


def load_weights(model, checkpoint, use_ema: bool = True) -> str:
    """Load a checkpoint into ``model`` strictly; returns the entry taken ("state_dict_ema", "model", ...).

    Reads what timm and our training loop write: a bare state dict, ``{"state_dict": ...}``,
    ``{"model": ...}``, EMA weights (``state_dict_ema`` / ``model_ema``, preferred when ``use_ema``),
    ``.safetensors``; DDP / torch.compile prefixes are stripped. A mismatch is a one-line InputError.
    """
    import torch
    from timm.models import clean_state_dict

    p = Path(checkpoint)
    if not p.is_file():
        raise InputError(f"checkpoint {str(p)!r} not found")
    try:
        if p.suffix == ".safetensors":
            from safetensors.torch import load_file
            ck = load_file(str(p), device="cpu")
        else:
            ck = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as e:  # pickle / zip / safetensors errors all mean "not a checkpoint we can read"
        raise InputError(f"cannot read checkpoint {p}: {load_error(e)}") from None
    entry = "state_dict"
    if isinstance(ck, dict):
        keys = (("state_dict_ema", "model_ema") if use_ema else ()) + ("state_dict", "model")
        entry = next((k for k in keys if isinstance(ck.get(k), dict)), "state_dict")
        sd = ck[entry] if entry in ck else ck
        entry = entry if entry in ck else "bare state dict"
    else:
        sd = None
    if not isinstance(sd, dict) or not sd or not all(hasattr(v, "shape") for v in sd.values()):
        raise InputError(f"{p} holds no state dict; accepted: a state dict or a dict with "
                         "state_dict / model / state_dict_ema / model_ema")
    sd = clean_state_dict(sd)
    own = model.state_dict()
    missing = [k for k in own if k not in sd]
    unexpected = [k for k in sd if k not in own]
    wrong = [k for k in own if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)]
    if missing or unexpected or wrong:
        first = (wrong or missing or unexpected)[0]
        raise InputError(f"checkpoint {p.name} does not fit this model: {len(missing)} missing, {len(unexpected)} "
                         f"unexpected, {len(wrong)} wrong-shape tensors (first: {first!r}); was it trained for "
                         "another architecture or number of classes?")
    model.load_state_dict(sd, strict=True)
    return entry


def model_info(name: str) -> dict:
    """The card fields of a registered MOTE model (arch, arch_def, MACs, params, provenance)."""
    full = name if name in _CARDS else PREFIX + name
    if full not in _CARDS:
        raise InputError(f"{name!r} is not a registered MOTE model; accepted: {', '.join(sorted(_CARDS))}")
    return json.loads(json.dumps(_CARDS[full]))


# -- model card -----------------------------------------------------------------------------------
def write_model_card(dir, name: str, arch: str, space, recipe=None, top1: float | None = None,
                     extra: dict | None = None) -> dict:
    """``model_card.json`` and ``MODEL_CARD.md`` in ``dir`` (beside the weights); returns the card.

    ``recipe`` is a recipe name or a (resolved) recipe dict; ``top1`` the measured ImageNet top-1 in %,
    or None ("not measured").
    """
    import timm

    info = arch_info(space, arch)
    sp = _space(space)
    if isinstance(recipe, dict):
        recipe_name, recipe_cfg = recipe.get("name"), recipe
    else:
        recipe_name, recipe_cfg = recipe, None
    if top1 is not None:
        top1 = float(top1)
        if not 0.0 <= top1 <= 100.0:
            raise InputError(f"top-1 {top1} is not a percentage; accepted: 0..100 or None")
    pc = _pretrained_cfg(sp)
    card = {
        "name": name,
        **info,
        "macs_m": round(info["macs"] / 1e6, 1),
        "params_m": round(info["params"] / 1e6, 3),
        "macs_note": "multiply-accumulates of conv and linear layers (papers: FLOPs), analytic",
        "recipe": recipe_name,
        "top1": top1 if top1 is not None else "not measured",
        "data_config": {k: pc[k] for k in ("input_size", "interpolation", "crop_pct", "mean", "std")},
        "timm_version": timm.__version__,
    }
    registered = _CARDS.get(name) or _CARDS.get(PREFIX + name) or {}
    provenance = {k: v for k, v in registered.items() if k not in info and k != "name"}
    if provenance and registered.get("arch") == info["arch"]:
        card["provenance"] = provenance  # where the architecture came from (search score, winner file, ...)
    if recipe_cfg is not None:
        card["recipe_config"] = recipe_cfg
    if extra:
        card["extra"] = extra
    out = Path(dir)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "model_card.json", json.dumps(card, indent=2, default=str) + "\n")
    write_text(out / "MODEL_CARD.md", _render_card(card))
    return card


def _render_card(c: dict) -> str:
    top1 = f"{c['top1']:.2f} %" if isinstance(c["top1"], float) else c["top1"]
    lines = [f"# {c['name']}", "",
             f"A MobileNet-style image classifier from the `{c['space']}` search space (MOTE-NAS).", "",
             "| field | value |", "|---|---|",
             f"| ImageNet-1K top-1 | {top1} |",
             f"| MACs (\"FLOPs\") at {c['resolution']}x{c['resolution']} | {c['macs_m']} M ({c['macs']:,}) |",
             f"| parameters | {c['params_m']} M ({c['params']:,}) |",
             f"| recipe | {c['recipe'] or 'not given'} |",
             f"| input | {c['data_config']['input_size']}, {c['data_config']['interpolation']}, "
             f"crop {c['data_config']['crop_pct']} |",
             "", "## Architecture", "", f"`{c['arch']}`", "", "timm `arch_def`:", "", "```"]
    lines += [", ".join(stage) for stage in c["timm_arch_def"]]
    lines += ["```", "", "## Use", "", "```python",
              "import train",
              "model = train.build_winner(\"runs/<name>/winner.json\")  # straight from the search's record",
              "# or register with timm first: train.register_presets() / train.register_winner(path)",
              f"model = train.create_model({c['name']!r})", "```", ""]
    if c.get("provenance"):
        lines += ["## Provenance", ""] + [f"- {k}: {v}" for k, v in c["provenance"].items()] + [""]
    if c.get("extra"):
        lines += ["## Notes", ""] + [f"- {k}: {v}" for k, v in c["extra"].items()] + [""]
    lines.append("MACs count multiply-accumulates of conv and linear layers (SE included); BN, activations "
                 "and pooling excluded.")
    return "\n".join(lines) + "\n"
