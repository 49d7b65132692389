"""Any architecture of the mbv2 / mbv3 block spaces as a registered timm model, and its model card.

``register_arch("mine", "mbv3", arch)`` registers ``mote_mine`` in timm's registry, so
``timm.create_model("mote_mine")``, ``timm.list_models("mote_*")`` and everything built on them
(timm's train.py, validate.py, ``resolve_model_data_config``) work. The network itself is the one the
search counted: ``space.build(arch)`` returns timm's own EfficientNet / MobileNetV3 class, so the
registered model has exactly the searched MACs and parameters.

``import train`` registers the two presets, ``mote_mobilenetv2_100`` and ``mote_mobilenetv3_large_100``;
their state dicts match timm's ``mobilenetv2_100`` / ``mobilenetv3_large_100`` key for key, and their
pretrained configs point at timm's published weights (``pretrained=True`` loads them when online).
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
from mobile_mote.errors import InputError

PREFIX = "mote_"
# timm's register_model() looks the pretrained config up in the entrypoint's module under this name.
default_cfgs: dict = {}
_ENTRIES: dict[str, tuple[Any, str]] = {}  # full name -> (space object, canonical arch)
_CARDS: dict[str, dict] = {}  # full name -> model-card fields (arch, costs, provenance)
_NAME_RE = re.compile(r"^[a-z0-9_]+$")
_BLOCK_SPACES = ("mbv2", "mbv3")
# Module names of the stem convolution and the classifier, per head type of the block spaces
# (timm's EfficientNet and MobileNetV3 classes happen to use the same names).
HEAD_NAMES = {"efficientnet": ("conv_stem", "classifier"), "mobilenetv3": ("conv_stem", "classifier")}
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


# -- spaces and architectures -----------------------------------------------------------------
def _space(space):
    """A block space from a name or a space object; anything else is an InputError."""
    from search_spaces import ArchError, BlockSpace, get_space
    if isinstance(space, str):
        if space not in _BLOCK_SPACES:
            raise InputError(f"space {space!r} cannot be retrained as an ImageNet model; accepted: "
                             f"{', '.join(_BLOCK_SPACES)}")
        try:
            return get_space(space)
        except ArchError as e:
            raise InputError(str(e)) from None
    if not isinstance(space, BlockSpace):
        raise InputError(f"expected a block space ({', '.join(_BLOCK_SPACES)}), got {type(space).__name__}")
    return space


def _canonical(space, arch: str) -> str:
    from search_spaces import ArchError
    try:
        return space.canonical(arch)
    except ArchError as e:
        raise InputError(str(e).splitlines()[0]) from None


def arch_info(space, arch: str) -> dict:
    """Plain-data description of one architecture: canonical string, timm arch_def, analytic costs."""
    sp = _space(space)
    arch = _canonical(sp, arch)
    macs, params = sp.cost(arch)
    return {"space": sp.name, "arch": arch, "timm_arch_def": sp.arch_def(arch), "head": sp.cfg.head,
            "resolution": sp.resolution, "num_classes": sp.num_classes, "macs": int(macs), "params": int(params)}


def _pretrained_cfg(sp, weights: dict | None = None, description: str = "") -> dict:
    first_conv, classifier = HEAD_NAMES[sp.cfg.head]
    res = sp.resolution
    pool = -(-res // 32)
    cfg = dict(url="", hf_hub_id=None, input_size=(3, res, res), pool_size=(pool, pool), crop_pct=0.875,
               crop_mode="center", interpolation="bicubic", mean=IMAGENET_MEAN, std=IMAGENET_STD,
               num_classes=sp.num_classes, first_conv=first_conv, classifier=classifier,
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
        return _build(full, pretrained, **kwargs)

    entrypoint.__name__ = entrypoint.__qualname__ = full
    entrypoint.__module__ = __name__
    entrypoint.__doc__ = f"{desc}.\n\n{info['arch']}"
    _ENTRIES[full] = (sp, info["arch"])
    _CARDS[full] = {"name": full, **info, **card}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # timm warns when an overwrite replaces an entry
        register_model(entrypoint)
    return full


def _build(full: str, pretrained: bool = False, **kwargs):
    from timm.models import build_model_with_cfg

    sp, arch = _ENTRIES[full]

    def factory(num_classes: int = 1000, **timm_kwargs):
        model = sp.build(arch, num_classes=num_classes or sp.num_classes, **timm_kwargs)
        if num_classes == 0:
            model.reset_classifier(0)
        return model

    kwargs.setdefault("feature_cfg", dict(flatten_sequential=True))
    return build_model_with_cfg(factory, full, pretrained, **kwargs)


def register_presets() -> list[str]:
    """``mote_mobilenetv2_100`` and ``mote_mobilenetv3_large_100``, with timm's weights as their source."""
    names = []
    for space_name in _BLOCK_SPACES:
        sp = _space(space_name)
        preset = sp.cfg.preset_name
        names.append(register_arch(preset, sp, preset, _weights=_preset_weights(preset),
                                   source=f"preset: timm {preset}", timm_equivalent=preset))
    return names


def _winner_file(path) -> Path:
    p = Path(path)
    return p / "winner.json" if p.is_dir() else p  # a run directory stands for its winner.json


def _read_winner(path) -> dict:
    p = _winner_file(path)
    if not p.is_file():
        raise InputError(f"winner file {str(p)!r} not found; expected the winner.json a search writes")
    try:
        rec = json.loads(p.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{p}: not JSON ({e})") from None
    if not isinstance(rec, dict) or not rec.get("space") or not rec.get("arch"):
        raise InputError(f"{p}: a winner record needs 'space' and 'arch' fields (as in runs/<name>/winner.json)")
    return rec


def default_winner_name(space: str, arch: str) -> str:
    """``<space>_<8 hex>``: stable for one architecture, different for any other."""
    return f"{space}_{hashlib.sha1(arch.encode()).hexdigest()[:8]}"


def register_winner(path, name: str | None = None) -> str:
    """Register the architecture of a search's winner.json (or runs/<name>/); returns the full timm name."""
    path = _winner_file(path)
    rec = _read_winner(path)
    sp = _space(rec["space"])
    arch = _canonical(sp, rec["arch"])
    macs, params = sp.cost(arch)
    for field, value in (("macs", macs), ("params", params)):
        if rec.get(field) is not None and int(rec[field]) != int(value):
            warnings.warn(f"{path}: searched {field} {rec[field]} differ from the analytic count {value} "
                          "(another resolution or space configuration?)", stacklevel=2)
    keep = ("score", "estimator", "algorithm", "seed", "constraint", "latency_ms", "final_accuracy",
            "final_accuracy_source")
    card = {k: rec[k] for k in keep if rec.get(k) is not None}
    card.update(source=str(Path(path).resolve()), searched_macs=rec.get("macs"), searched_params=rec.get("params"))
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
    known = ", ".join(sorted(_ENTRIES)) or "none"
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
        msg = str(e).splitlines()[0] if str(e) else ""
        raise InputError(f"cannot read checkpoint {p}: {type(e).__name__}: {msg}") from None
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
              "import train  # registers the MOTE models with timm",
              f"model = train.create_model({c['name']!r})  # or a winner.json path", "```", ""]
    if c.get("provenance"):
        lines += ["## Provenance", ""] + [f"- {k}: {v}" for k, v in c["provenance"].items()] + [""]
    if c.get("extra"):
        lines += ["## Notes", ""] + [f"- {k}: {v}" for k, v in c["extra"].items()] + [""]
    lines.append("MACs count multiply-accumulates of conv and linear layers (SE included); BN, activations "
                 "and pooling excluded.")
    return "\n".join(lines) + "\n"
