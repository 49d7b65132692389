"""Training recipes as data: YAML files whose keys are timm train.py argument names.

``load_recipe("mobilenetv3_large_100")`` reads ``train/recipes/<name>.yaml`` (or any YAML path) and
checks every key against the names timm's train.py accepts (``-`` may be written ``_``);
``resolve(recipe, global_batch)`` fixes the learning rate for the batch actually used,
``lr = lr_base * global_batch / lr_base_size`` (timm's linear rule); ``save_resolved`` writes the
result beside the checkpoints, so a run always records what it trained with.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import yaml

from mobile_mote.atomic import write_text
from mobile_mote.errors import InputError

RECIPE_DIR = Path(__file__).resolve().parent / "recipes"

# Our own descriptive keys (not train.py arguments).
META_KEYS = frozenset({"name", "description", "notes", "source", "reference_top1"})
# Keys written by resolve().
RESOLVED_KEYS = frozenset({"global_batch", "lr_scale", "resolved_from"})
# timm train.py arguments (dest names) a recipe may set.
TIMM_KEYS = frozenset({
    # model and data
    "model", "pretrained", "initial_checkpoint", "num_classes", "gp", "img_size", "in_chans", "input_size",
    "crop_pct", "mean", "std", "interpolation", "batch_size", "validation_batch_size", "channels_last",
    "grad_accum_steps", "grad_checkpointing", "model_kwargs", "head_init_scale", "head_init_bias",
    "torchcompile", "train_split", "val_split", "class_map", "workers", "pin_mem",
    # optimiser
    "opt", "opt_eps", "opt_betas", "momentum", "weight_decay", "clip_grad", "clip_mode", "layer_decay",
    "opt_kwargs",
    # learning rate and schedule
    "sched", "sched_on_updates", "lr", "lr_base", "lr_base_size", "lr_base_scale", "lr_noise", "lr_noise_pct",
    "lr_noise_std", "lr_cycle_mul", "lr_cycle_decay", "lr_cycle_limit", "lr_k_decay", "warmup_lr", "min_lr",
    "epochs", "epoch_repeats", "start_epoch", "decay_milestones", "decay_epochs", "warmup_epochs",
    "warmup_prefix", "cooldown_epochs", "patience_epochs", "decay_rate",
    # augmentation and regularisation
    "no_aug", "train_crop_mode", "scale", "ratio", "hflip", "vflip", "color_jitter", "color_jitter_prob",
    "grayscale_prob", "gaussian_blur_prob", "aa", "aug_repeats", "aug_splits", "jsd_loss", "bce_loss",
    "bce_sum", "bce_target_thresh", "bce_pos_weight", "reprob", "remode", "recount", "resplit", "mixup",
    "cutmix", "cutmix_minmax", "mixup_prob", "mixup_switch_prob", "mixup_mode", "mixup_off_epoch",
    "smoothing", "train_interpolation", "drop", "drop_connect", "drop_path", "drop_block",
    # batch norm
    "bn_momentum", "bn_eps", "sync_bn", "dist_bn", "split_bn",
    # weight averaging
    "model_ema", "model_ema_force_cpu", "model_ema_decay", "model_ema_warmup",
    # precision and misc
    "amp", "amp_dtype", "amp_impl", "seed", "worker_seeding", "log_interval", "recovery_interval",
    "checkpoint_hist", "eval_metric", "tta",
})
ALLOWED_KEYS = TIMM_KEYS | META_KEYS | RESOLVED_KEYS

_NUMBERS = {"lr", "lr_base", "lr_base_size", "opt_eps", "momentum", "weight_decay", "warmup_lr", "min_lr",
            "decay_epochs", "decay_rate", "epochs", "warmup_epochs", "cooldown_epochs", "model_ema_decay",
            "reprob", "drop", "drop_path", "drop_connect", "drop_block", "smoothing", "mixup", "cutmix",
            "crop_pct", "batch_size", "img_size", "clip_grad", "layer_decay", "reference_top1", "global_batch"}
_POSITIVE = {"lr_base", "lr_base_size", "epochs", "batch_size", "img_size", "global_batch", "decay_epochs"}
_UNIT_INTERVAL = {"reprob", "drop", "drop_path", "drop_connect", "drop_block", "smoothing", "crop_pct",
                  "decay_rate", "model_ema_decay", "momentum"}
_INTEGERS = {"epochs", "batch_size", "img_size", "lr_base_size", "global_batch"}
_SCALES = ("linear", "sqrt")


def list_recipes() -> list[str]:
    """The recipes that ship with the package (names usable with load_recipe)."""
    return sorted(p.stem for p in RECIPE_DIR.glob("*.yaml"))


def _locate(name_or_path) -> Path:
    text = str(name_or_path)
    p = Path(text)
    if p.suffix in (".yaml", ".yml") or os.sep in text:
        if not p.is_file():
            raise InputError(f"recipe file {text!r} not found")
        return p
    bundled = RECIPE_DIR / f"{text}.yaml"
    if not bundled.is_file():
        raise InputError(f"unknown recipe {text!r}; accepted: {', '.join(list_recipes())} or a .yaml path")
    return bundled


def load_recipe(name_or_path) -> dict:
    """A validated recipe dict from a bundled name, a YAML path or a dict."""
    if isinstance(name_or_path, dict):
        raw, where, stem = dict(name_or_path), "recipe", None
    else:
        path = _locate(name_or_path)
        where, stem = str(path), path.stem
        try:
            raw = yaml.safe_load(path.read_text())
        except yaml.YAMLError as e:
            first = str(e).splitlines()[0] if str(e) else type(e).__name__
            raise InputError(f"{where}: not valid YAML ({first})") from None
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise InputError(f"{where}: a recipe is a mapping of timm train.py arguments, got {type(raw).__name__}")
    recipe = validate(raw, where)
    if stem and not recipe.get("name"):
        recipe["name"] = stem
    return recipe


def validate(raw: dict, where: str = "recipe") -> dict:
    """Keys normalised ('-' to '_') and checked; numbers coerced and range-checked."""
    out: dict = {}
    for key, value in raw.items():
        k = str(key).replace("-", "_")
        if k not in ALLOWED_KEYS:
            import difflib
            near = difflib.get_close_matches(k, sorted(ALLOWED_KEYS), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise InputError(f"{where}: unknown key {key!r}{hint}; accepted: timm train.py argument names "
                             f"such as opt, lr_base, sched, epochs, aa, reprob")
        if k in out:
            raise InputError(f"{where}: key {k!r} given twice")
        out[k] = _check_value(k, value, where)
    if out.get("lr") is None and out.get("lr_base") is None:
        raise InputError(f"{where}: no learning rate; accepted: lr_base (+ lr_base_size) or lr")
    if out.get("lr_base") is not None and out.get("lr_base_size") is None and out.get("lr") is None:
        raise InputError(f"{where}: lr_base needs lr_base_size (the global batch lr_base is meant for)")
    if out.get("lr_base_scale", "linear") not in _SCALES:
        raise InputError(f"{where}: lr_base_scale {out['lr_base_scale']!r}; accepted: {', '.join(_SCALES)}")
    for required in ("opt", "sched", "epochs"):
        if required not in out:
            raise InputError(f"{where}: missing {required!r}; a recipe names at least opt, sched, epochs "
                             "and a learning rate")
    return out


def _check_value(k: str, v, where: str):
    if k not in _NUMBERS or v is None:
        return v
    if isinstance(v, bool):
        raise InputError(f"{where}: {k} must be a number, got {v!r}")
    try:
        x = float(v)  # YAML reads 1e-5 (no dot) as a string
    except (TypeError, ValueError):
        raise InputError(f"{where}: {k} must be a number, got {v!r}") from None
    if not math.isfinite(x) or x < 0 or (k in _POSITIVE and x == 0):
        kind = "positive" if k in _POSITIVE else "non-negative"
        raise InputError(f"{where}: {k} = {v!r} out of range; accepted: a {kind} number")
    if k in _UNIT_INTERVAL and x > 1:
        raise InputError(f"{where}: {k} = {v!r} out of range; accepted: 0..1")
    if k in _INTEGERS:
        if x != int(x):
            raise InputError(f"{where}: {k} = {v!r}; accepted: a whole number")
        return int(x)
    return x


def resolve(recipe: dict, global_batch: int) -> dict:
    """A copy of ``recipe`` with ``lr`` fixed for ``global_batch`` images per optimiser step.

    As in timm's train.py: an explicit ``lr`` wins; otherwise ``lr = lr_base * global_batch / lr_base_size``
    (or the square root of that ratio with ``lr_base_scale: sqrt``).
    """
    if isinstance(global_batch, bool) or not isinstance(global_batch, int) or global_batch <= 0:
        raise InputError(f"global batch {global_batch!r}; accepted: a positive whole number of images per step")
    out = validate(dict(recipe))
    out["global_batch"] = global_batch
    if out.get("lr") is None:
        ratio = global_batch / out["lr_base_size"]
        scale = ratio if out.get("lr_base_scale", "linear") == "linear" else math.sqrt(ratio)
        out["lr_scale"] = scale
        out["lr"] = out["lr_base"] * scale
        out["resolved_from"] = (f"lr = lr_base {out['lr_base']:g} x {out.get('lr_base_scale', 'linear')}"
                                f"({global_batch} / {out['lr_base_size']})")
    else:
        out["lr_scale"] = 1.0
        out["resolved_from"] = "lr given explicitly"
    return out


def save_resolved(recipe: dict, path) -> Path:
    """Write a resolved recipe as YAML (a directory gets ``recipe.yaml``); atomic; returns the path."""
    if recipe.get("lr") is None:
        raise InputError("recipe has no resolved learning rate; call resolve(recipe, global_batch) first")
    p = Path(path)
    if p.is_dir():
        p = p / "recipe.yaml"
    p.parent.mkdir(parents=True, exist_ok=True)
    header = (f"# resolved recipe {recipe.get('name', '')!s}: global batch {recipe.get('global_batch', '?')}, "
              f"lr {recipe['lr']:.6g}\n")
    write_text(p, header + yaml.safe_dump(_plain(recipe), sort_keys=False, default_flow_style=None))
    return p


def _plain(x):
    if isinstance(x, dict):
        return {str(k): _plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_plain(v) for v in x]
    return x
