"""The retraining loop: one function, ``retrain``, readable top to bottom (nanoGPT-style).

    recipe  -> resolve(recipe, global batch)          (linear LR scaling, saved as recipe.yaml)
            -> timm's optimizer_kwargs / scheduler_kwargs (over the recipe as train.py's namespace)
    model   -> Accelerator.prepare(model, optimizer)  (DDP over processes; bf16 + channels_last on CUDA)
    data    -> train.data loaders, already split by rank (never through accelerator.prepare)
    loop    -> accumulate K micro-batches -> optimizer step -> EMA update -> scheduler.step_update
    epoch   -> checkpoint (first, so a failed check below loses no training); also every
               ``checkpoint_every`` optimizer steps
            -> validate model and EMA (top-1/5, counts gathered once, checked against the index;
               the shard set itself is checked against its index before training starts)
    end     -> final.pt (EMA weights when the recipe uses EMA) + model card + results.json

One *step* is one optimizer update (``grad_accum`` micro-batches on every process; the global batch is
``batch_size x processes x grad_accum`` images). An epoch is ``len(train_loader) // grad_accum`` steps.

Checkpoints: ``output_dir/checkpoints/step_<n>`` written by ``accelerator.save_state`` into
``.tmp_step_<n>`` and renamed only when complete (the last two are kept). Accelerate saves the model,
the optimizer, the EMA (registered for checkpointing) and every process's RNG states
(``random_states_<rank>.pkl``: python, numpy, torch, CUDA); ``trainer_state.json`` beside them holds the
step, the epoch, the micro-batches already consumed in that epoch and the scheduler's state. timm's
schedulers are functions of (epoch, update count), so resuming calls ``scheduler.step(epoch)`` and
``scheduler.step_update(step)`` and the learning rate continues exactly. Data position: the loader is
set to the same epoch (its shard resampling and shuffling are seeded by (seed, rank, epoch)) and the
batches already trained on in that epoch are drawn and dropped, so a resumed run sees the same batches
(exactly so with ``num_workers > 0``; with 0 workers the augmentation shares the main RNG).

Logs: ``metrics.csv`` (step, epoch, lr, loss, images/s; rows after the resumed step are dropped on
resume, so steps always increase), ``val.csv`` (per epoch, model and EMA top-1/top-5, images seen vs
expected), TensorBoard under ``tb/`` when ``torch.utils.tensorboard`` imports.
"""
from __future__ import annotations

import csv
import json
import logging
import math
import os
import shutil
import time
from pathlib import Path

import torch

from mobile_mote.atomic import atomic_path, torch_save, write_text
from mobile_mote.errors import InputError

from . import data as tdata
from .models import model_info, register_presets, resolve_model_name, write_model_card
from .recipes import load_recipe, resolve, save_resolved

log = logging.getLogger(__name__)

CHECKPOINT_DIR = "checkpoints"
STATE_FILE = "trainer_state.json"
KEEP_CHECKPOINTS = 2
METRICS_FIELDS = ("step", "epoch", "lr", "loss", "images_per_s")
VAL_FIELDS = ("step", "epoch", "images", "expected", "skipped", "loss", "top1", "top5", "ema_top1", "ema_top5")
_RUN_MARKERS = ("metrics.csv", CHECKPOINT_DIR, "final.pt", "results.json")


# ------------------------------------------------------------------------------------ recipe -> timm

# timm train.py's argparse defaults for the optimizer / schedule arguments a recipe may leave out (timm's
# optimizer_kwargs / scheduler_kwargs fall back to other values for some, e.g. lr_cycle_decay 0.1).
TRAIN_PY_DEFAULTS = {
    "weight_decay": 2e-5, "momentum": 0.9, "opt_eps": None, "opt_betas": None, "layer_decay": None,
    "decay_epochs": 90, "decay_milestones": [90, 180, 270], "decay_rate": 0.1, "min_lr": 0.0, "warmup_lr": 1e-5,
    "warmup_epochs": 0, "warmup_prefix": False, "cooldown_epochs": 0, "patience_epochs": 10, "lr_noise": None,
    "lr_noise_pct": 0.67, "lr_noise_std": 1.0, "lr_cycle_mul": 1.0, "lr_cycle_decay": 0.5, "lr_cycle_limit": 1,
    "lr_k_decay": 1.0, "sched_on_updates": False, "eval_metric": "top1",
}


def recipe_namespace(recipe: dict, seed: int):
    """The recipe as the argparse namespace timm's train.py would have built (its defaults filled in),
    for ``timm.optim.optimizer_kwargs`` / ``timm.scheduler.scheduler_kwargs``. ``seed`` seeds the lr noise."""
    from types import SimpleNamespace

    ns = {**TRAIN_PY_DEFAULTS, **{k: v for k, v in recipe.items() if v is not None}}
    ns["epochs"] = int(recipe["epochs"])
    ns["warmup_prefix"] = bool(ns["warmup_prefix"])
    ns["decay_milestones"] = list(ns["decay_milestones"])
    ns["seed"] = seed
    ns["opt_args"] = recipe.get("opt_kwargs") or None  # train.py passes --opt-kwargs beside optimizer_kwargs()
    return SimpleNamespace(**ns)


def optimizer_and_scheduler_kwargs(recipe: dict, seed: int) -> tuple[dict, dict]:
    """(create_optimizer_v2 kwargs, create_scheduler_v2 kwargs) of a resolved recipe, by timm's own helpers."""
    from timm.optim import optimizer_kwargs
    from timm.scheduler import scheduler_kwargs

    ns = recipe_namespace(recipe, seed)
    return optimizer_kwargs(ns), scheduler_kwargs(ns)


# ------------------------------------------------------------------------------------ input checks

def _check_output(out: Path, resume: bool) -> None:
    """Refuse an unwritable folder, or one holding another run unless resuming. Writes nothing lasting."""
    if out.exists() and not out.is_dir():
        raise InputError(f"output {out} is a file; accepted: a folder (new, empty, or a run to --resume)")
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write_probe_{os.getpid()}"
        probe.write_text("")
        probe.unlink()
    except OSError as e:
        raise InputError(f"output folder {out} is not writable ({e.strerror or e}); choose another --output") from None
    if not resume:
        held = [m for m in _RUN_MARKERS if (out / m).exists()]
        if held:
            raise InputError(f"output {out} already holds a run ({', '.join(held)}); pass --resume to continue "
                             "it, or choose an empty --output")


def _num_classes(explicit, recipe: dict, train_index: dict | None, imagefolder) -> int | None:
    if explicit is not None:
        return int(explicit)
    if recipe.get("num_classes") is not None:
        return int(recipe["num_classes"])
    if train_index is not None and train_index.get("num_classes"):
        return int(train_index["num_classes"])
    if imagefolder is not None:
        d = Path(imagefolder) / "train"
        if d.is_dir():
            return len([e for e in os.scandir(d) if e.is_dir() and not e.name.startswith(".")])
    return None


def _is_loader(x) -> bool:
    return hasattr(x, "set_epoch") and hasattr(x, "__iter__")


# ------------------------------------------------------------------------------------ checkpoints

def _checkpoints(out: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints (renamed into place and holding trainer_state.json), oldest first."""
    found = []
    for p in (out / CHECKPOINT_DIR).glob("step_*"):
        tail = p.name[len("step_"):]
        if p.is_dir() and tail.isdigit() and (p / STATE_FILE).is_file():
            found.append((int(tail), p))
    return sorted(found)


def latest_checkpoint(output_dir) -> Path | None:
    """The newest complete checkpoint of a run folder, or None."""
    found = _checkpoints(Path(output_dir))
    return found[-1][1] if found else None


def _save_checkpoint(acc, out: Path, state: dict) -> Path:
    """accelerator.save_state into a temporary folder on every rank, then one atomic rename (main)."""
    ckdir = out / CHECKPOINT_DIR
    final = ckdir / f"step_{state['step']}"
    tmp = ckdir / f".tmp_step_{state['step']}"
    if acc.is_main_process:
        ckdir.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
    acc.wait_for_everyone()
    acc.save_state(str(tmp))  # model, optimizer, EMA (custom object), RNG states of every rank
    acc.wait_for_everyone()
    if acc.is_main_process:
        (tmp / STATE_FILE).write_text(json.dumps(state, indent=2, default=float) + "\n")
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
        for _, old in _checkpoints(out)[:-KEEP_CHECKPOINTS]:
            shutil.rmtree(old, ignore_errors=True)
    acc.wait_for_everyone()
    return final


def _record_val(ckpt: Path, val: dict) -> None:
    """Add a validation result to a checkpoint's trainer_state.json (replaced atomically: still complete)."""
    st = json.loads((ckpt / STATE_FILE).read_text())
    st["val"] = {k: v for k, v in val.items() if k != "counts"}
    write_text(ckpt / STATE_FILE, json.dumps(st, indent=2, default=float) + "\n")


def _truncate_csv(path: Path, last_step: int) -> None:
    """Keep the header and the rows whose step <= last_step (a killed run may have logged past its checkpoint)."""
    if not path.is_file():
        return
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        return
    keep = [rows[0]] + [r for r in rows[1:] if r and r[0].isdigit() and int(r[0]) <= last_step]
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        csv.writer(f).writerows(keep)


class _CsvLog:
    """Append-only CSV with a header; main process only (a no-op elsewhere)."""

    def __init__(self, path: Path, fields, enabled: bool):
        self.f = None
        if enabled:
            new = not path.is_file() or path.stat().st_size == 0
            self.f = open(path, "a", newline="")
            self.w = csv.DictWriter(self.f, fieldnames=list(fields))
            if new:
                self.w.writeheader()

    def write(self, row: dict) -> None:
        if self.f is not None:
            self.w.writerow(row)
            self.f.flush()

    def close(self) -> None:
        if self.f is not None:
            self.f.close()


def _tensorboard(path: Path, enabled: bool):
    if not enabled:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
        return SummaryWriter(str(path))
    except Exception:  # tensorboard not installed: CSV only
        return None


# ------------------------------------------------------------------------------------ validation

def distribute_bn(model, world: int) -> None:
    """BatchNorm running means and variances averaged over the ``world`` ranks (timm's ``--dist-bn reduce``):
    each rank's buffers saw only its own batches since DDP last broadcast rank 0's."""
    if world <= 1:
        return
    import torch.distributed as dist
    for name, buf in model.named_buffers():
        if name.endswith(("running_mean", "running_var")) and buf.is_floating_point():
            dist.all_reduce(buf, op=dist.ReduceOp.SUM)
            buf /= world


@torch.no_grad()
def evaluate(acc, model, ema_model, loader, channels_last: bool = False) -> dict:
    """Top-1/top-5 of ``model`` (and ``ema_model``) over this rank's share; one gather at the end.

    Returns totals over all processes and ``counts`` (images seen per rank) for ``check_val_total``.
    """
    was_training = model.training
    model.eval()
    if ema_model is not None:
        ema_model.eval()
    # per rank: images, loss sum, model top-1/top-5 hits, EMA top-1/top-5 hits, expected share, skipped
    s = torch.zeros(8, dtype=torch.float64, device=acc.device)
    for batch in loader:
        x, y = batch[0].to(acc.device, non_blocking=True), batch[1].to(acc.device)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with acc.autocast():
            logits = model(x)
            ema_logits = ema_model(x) if ema_model is not None else None
        k = min(5, logits.shape[-1])
        s[0] += y.numel()
        s[1] += torch.nn.functional.cross_entropy(logits.float(), y, reduction="sum").double()
        for i, out in ((2, logits), (4, ema_logits)):
            if out is None:
                continue
            top = out.topk(k, dim=-1).indices
            hit = top.eq(y[:, None])
            s[i] += hit[:, 0].sum()
            s[i + 1] += hit.any(dim=-1).sum()
    s[6] = -1 if getattr(loader, "expected", None) is None else loader.expected
    s[7] = getattr(loader, "skipped", 0)
    rows = acc.gather(s[None]).cpu()  # (processes, 8): the only collective of the evaluation
    model.train(was_training)
    tot = rows.sum(0)
    n = max(1.0, float(tot[0]))
    res = {"images": int(tot[0]), "counts": [int(c) for c in rows[:, 0]], "skipped": int(tot[7]),
           "expected": None if (rows[:, 6] < 0).any() else int(rows[:, 6].sum()),
           "loss": float(tot[1]) / n, "top1": 100.0 * float(tot[2]) / n, "top5": 100.0 * float(tot[3]) / n,
           "ema_top1": 100.0 * float(tot[4]) / n if ema_model is not None else None,
           "ema_top5": 100.0 * float(tot[5]) / n if ema_model is not None else None}
    if res["expected"] is not None:
        if res["images"] + res["skipped"] == res["expected"] and res["skipped"]:
            log.warning("validation skipped %d corrupt image(s): %d of %d seen", res["skipped"], res["images"],
                        res["expected"])
        else:
            tdata.check_val_total(res["counts"], res["expected"])  # ValCountError: missing or duplicated images
    return res


# ------------------------------------------------------------------------------------ the loop

def retrain(recipe, model, train_data=None, val_data=None, output_dir="retrain", *, imagefolder=None,
            resume: bool = False, max_steps: int | None = None, epochs: int | None = None,
            batch_size: int | None = None, grad_accum: int = 1, checkpoint_every: int = 1000,
            num_workers: int = 4, seed: int = 0, log_every: int = 50, img_size: int | None = None,
            num_classes: int | None = None, epoch_size: int | None = None, progress: bool = True) -> dict:
    """Train ``model`` with ``recipe`` on this machine's processes; returns the final results dict.

    ``recipe``: name, YAML path or dict (``train.recipes``). ``model``: a MOTE / timm name, a winner.json
    or run folder, or an ``nn.Module``. ``train_data`` / ``val_data``: shard specs (``train.data.resolve_shards``)
    or loaders from ``train.data``; or ``imagefolder=ROOT`` (``ROOT/train``, ``ROOT/val``). ``epochs``,
    ``batch_size`` (per process), ``img_size``, ``num_classes`` override the recipe. ``max_steps`` stops
    early (the schedule still spans the recipe's epochs). Call it the same way on every process.
    """
    from accelerate import Accelerator
    from accelerate.utils import set_seed
    from timm.optim import create_optimizer_v2
    from timm.scheduler import create_scheduler_v2
    from timm.utils import ModelEmaV3

    # -- configuration, checked before anything is written -----------------------------------------
    recipe = dict(load_recipe(recipe))
    for key, value in (("epochs", epochs), ("batch_size", batch_size), ("img_size", img_size)):
        if value is not None:
            recipe[key] = value
    recipe = load_recipe(recipe)  # re-validate overrides
    if recipe.get("sched") == "plateau":
        raise InputError("sched 'plateau' needs a metric per epoch and is not supported by retrain; "
                         "accepted: step, cosine, tanh, poly, multistep")
    for name, v, low in (("grad_accum", grad_accum, 1), ("checkpoint_every", checkpoint_every, 1),
                         ("log_every", log_every, 1), ("max_steps", max_steps, 1), ("num_workers", num_workers, 0)):
        if v is not None and (isinstance(v, bool) or int(v) != v or int(v) < low):
            raise InputError(f"{name} = {v!r}; accepted: a whole number >= {low}")
    bs = int(recipe.get("batch_size") or 0)
    if bs < 1:
        raise InputError("no batch size: give batch_size (per process) in the recipe or --batch-size")
    if (imagefolder is None) == (train_data is None):
        raise InputError("give training data once: train shards (and val shards) or an ImageFolder root")
    train_index = None
    if imagefolder is None and not _is_loader(train_data):
        _, train_index = tdata.resolve_shards(train_data)  # InputError for missing shards
    if val_data is not None and not _is_loader(val_data):
        tdata.check_val_shards(val_data)  # a truncated or partial validation set fails now, not after an epoch
    if imagefolder is not None and not (Path(imagefolder) / "train").is_dir():
        raise InputError(f"ImageFolder root {imagefolder}: no train/ folder; accepted: ROOT/train/<class>/<images>")
    n_cls = _num_classes(num_classes, recipe, train_index, imagefolder)
    if n_cls is not None:
        recipe["num_classes"] = n_cls
    mixup = tdata.make_mixup(recipe, n_cls or 1000)
    if mixup is not None and bs % 2:
        raise InputError(f"mixup/cutmix need an even batch size, got {bs}")
    model_name = None
    if not isinstance(model, torch.nn.Module):
        register_presets()  # a preset name (mote_mobilenetv3_large_100, mobilenetv2_100) is accepted
        model_name = resolve_model_name(model)  # InputError for an unknown model
    out = Path(output_dir)
    _check_output(out, resume)

    # -- processes ----------------------------------------------------------------------------------
    cuda = torch.cuda.is_available()
    amp = "bf16" if cuda and recipe.get("amp", True) else "no"
    if cuda:
        torch.backends.cudnn.benchmark = True  # fixed input shapes: the fastest kernels, as timm's train.py
    from accelerate.utils import InitProcessGroupKwargs

    from mobile_mote.parallel import process_group_timeout
    acc = Accelerator(cpu=not cuda, mixed_precision=amp, gradient_accumulation_steps=int(grad_accum),
                      kwargs_handlers=[InitProcessGroupKwargs(timeout=process_group_timeout())])
    acc.wait_for_everyone()  # every rank has checked the output folder before the main one writes to it
    main, rank, world = acc.is_main_process, acc.process_index, acc.num_processes
    channels_last = acc.device.type == "cuda"

    # -- model --------------------------------------------------------------------------------------
    set_seed(seed)  # same initial weights on every rank (DDP broadcasts rank 0's anyway)
    if model_name is not None:
        kw = {"num_classes": n_cls} if n_cls is not None else {}
        for key, arg in (("drop", "drop_rate"), ("drop_path", "drop_path_rate")):
            if recipe.get(key):
                kw[arg] = recipe[key]
        model = _create(model_name, kw)
    else:
        model_name = (getattr(model, "pretrained_cfg", None) or {}).get("architecture") or type(model).__name__
    n_cls = n_cls or getattr(model, "num_classes", None)
    model.to(acc.device)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    set_seed(seed + rank)  # dropout / mixup draws differ per rank

    # -- data (already split by rank: not passed through accelerator.prepare) -----------------------
    val_bs = int(recipe.get("validation_batch_size") or bs)
    if imagefolder is not None:
        train_loader, val_loader = tdata.imagefolder_loaders(
            imagefolder, bs, recipe, recipe, rank=rank, world_size=world, num_workers=num_workers, seed=seed,
            val_dir="val" if (Path(imagefolder) / "val").is_dir() else None)
    else:
        train_loader = train_data if _is_loader(train_data) else tdata.train_loader(
            train_data, bs, recipe, epoch_size, seed, num_workers, rank=rank, world_size=world)
        val_loader = val_data if (val_data is None or _is_loader(val_data)) else tdata.val_loader(
            val_data, val_bs, recipe, rank=rank, world_size=world, num_workers=num_workers)
    K = int(grad_accum)
    updates_per_epoch = len(train_loader) // K
    if updates_per_epoch < 1:
        raise InputError(f"an epoch has {len(train_loader)} batch(es) per process, fewer than grad_accum {K}; "
                         "use a smaller batch size or grad_accum")
    global_batch = bs * world * K
    recipe = resolve(recipe, global_batch)  # lr = lr_base * global_batch / lr_base_size
    n_epochs = int(recipe["epochs"])
    total_steps = n_epochs * updates_per_epoch
    if max_steps is not None:
        total_steps = min(total_steps, int(max_steps))

    # -- optimizer, schedule, EMA, loss ---------------------------------------------------------------
    opt_kw, sched_kw = optimizer_and_scheduler_kwargs(recipe, seed)
    optimizer = create_optimizer_v2(model, **opt_kw)
    scheduler, _ = create_scheduler_v2(optimizer, **sched_kw, updates_per_epoch=updates_per_epoch)
    ema = None
    if recipe.get("model_ema"):
        ema = ModelEmaV3(model, decay=float(recipe.get("model_ema_decay", 0.9998)),
                         use_warmup=bool(recipe.get("model_ema_warmup", False)), device=acc.device)
    criterion = tdata.train_criterion(recipe, mixup)
    model, optimizer = acc.prepare(model, optimizer)  # the timm scheduler is ours to step, not accelerate's
    if ema is not None:
        acc.register_for_checkpointing(ema)
    raw_model = acc.unwrap_model(model)

    # -- resume ---------------------------------------------------------------------------------------
    step, epoch, skip_batches = 0, 0, 0
    ck = latest_checkpoint(out) if resume else None
    if main:
        for stale in (out / CHECKPOINT_DIR).glob(".tmp_step_*"):
            shutil.rmtree(stale, ignore_errors=True)  # a save that was killed: never complete, never used
    if ck is not None:
        old_run = json.loads((out / "run.json").read_text()) if (out / "run.json").is_file() else {}
        if old_run.get("model") not in (None, model_name) or old_run.get("num_classes") not in (None, n_cls):
            raise InputError(f"{out} holds a run of {old_run.get('model')} ({old_run.get('num_classes')} classes), "
                             f"not {model_name} ({n_cls} classes); resume it with the same --model, or use another "
                             "--output")
        st = json.loads((ck / STATE_FILE).read_text())
        if st.get("global_batch") != global_batch or st.get("updates_per_epoch") != updates_per_epoch:
            raise InputError(f"{ck}: saved with global batch {st.get('global_batch')} and "
                             f"{st.get('updates_per_epoch')} steps/epoch, now {global_batch} and {updates_per_epoch}; "
                             "resume with the same batch size, processes, grad_accum and data")
        acc.wait_for_everyone()
        acc.load_state(str(ck))  # model, optimizer, EMA, RNG states of this rank
        step, epoch, skip_batches = int(st["step"]), int(st["epoch"]), int(st["batch_in_epoch"])
        if main:
            print(f"resuming from {ck} at step {step} (epoch {epoch}, batch {skip_batches})", flush=True)
            _truncate_csv(out / "metrics.csv", step)
            _truncate_csv(out / "val.csv", step)
    elif resume and main:
        print(f"no checkpoint in {out / CHECKPOINT_DIR}: starting from step 0", flush=True)
    acc.wait_for_everyone()
    if main:
        save_resolved(recipe, out / "recipe.yaml")
        write_text(out / "run.json", json.dumps({
            "model": model_name, "num_classes": n_cls, "processes": world, "batch_size": bs, "grad_accum": K,
            "global_batch": global_batch, "updates_per_epoch": updates_per_epoch, "epochs": n_epochs,
            "total_steps": total_steps, "seed": seed, "mixed_precision": amp,
            "train": _describe(train_data, imagefolder),
            "val": _describe(val_data, imagefolder)}, indent=2) + "\n")
    metrics = _CsvLog(out / "metrics.csv", METRICS_FIELDS, main)
    val_log = _CsvLog(out / "val.csv", VAL_FIELDS, main)
    tb = _tensorboard(out / "tb", main)

    def state(ep, in_epoch, extra=None):
        return {"step": step, "epoch": ep, "batch_in_epoch": in_epoch, "updates_per_epoch": updates_per_epoch,
                "global_batch": global_batch, "processes": world, "total_steps": total_steps,
                "lr": optimizer.param_groups[0]["lr"], "scheduler": scheduler.state_dict(),
                "rng": "accelerate random_states_<rank>.pkl in this folder", "time": time.time(), **(extra or {})}

    # -- training -------------------------------------------------------------------------------------
    bar = None
    if progress and main:
        from tqdm.auto import tqdm
        bar = tqdm(total=total_steps, initial=step, desc=f"retrain {model_name}", unit="step", dynamic_ncols=True)
    last_val, last_saved = None, step if ck is not None else -1
    model.train()
    while step < total_steps and epoch < n_epochs:
        scheduler.step(epoch)  # epoch-based schedules; a no-op with sched_on_updates
        scheduler.step_update(num_updates=step)  # update-based schedules; a no-op otherwise
        train_loader.set_epoch(epoch)
        window_loss, window_n, window_imgs, t0 = 0.0, 0, 0, time.perf_counter()
        it = iter(train_loader)
        in_epoch = 0
        try:
            for x, y in it:
                if in_epoch >= updates_per_epoch * K:
                    break
                in_epoch += 1
                if in_epoch <= skip_batches:  # resume: batches this epoch already trained on
                    continue
                x, y = x.to(acc.device, non_blocking=True), y.to(acc.device, non_blocking=True)
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                target = y
                if mixup is not None:
                    x, target = mixup(x, y)
                with acc.accumulate(model):
                    loss = criterion(model(x), target)
                    acc.backward(loss)
                    if recipe.get("clip_grad") and acc.sync_gradients:
                        acc.clip_grad_norm_(model.parameters(), float(recipe["clip_grad"]))
                    lr = optimizer.param_groups[0]["lr"]
                    optimizer.step()
                    optimizer.zero_grad(set_to_none=True)
                window_loss += loss.detach().float()
                window_n += 1
                window_imgs += x.shape[0] * world
                if not acc.sync_gradients:
                    continue
                step += 1
                if ema is not None:
                    ema.update(raw_model, step=step)
                scheduler.step_update(num_updates=step)
                if step % log_every == 0 or step == total_steps or in_epoch == updates_per_epoch * K:
                    mean_loss = float(window_loss) / max(1, window_n)
                    if not math.isfinite(mean_loss):
                        raise FloatingPointError(f"loss is {mean_loss} at step {step}; lower the lr or check the data")
                    ips = window_imgs / max(1e-9, time.perf_counter() - t0)
                    metrics.write({"step": step, "epoch": epoch, "lr": f"{lr:.8g}", "loss": f"{mean_loss:.6g}",
                                   "images_per_s": f"{ips:.1f}"})
                    if tb is not None:
                        tb.add_scalar("train/loss", mean_loss, step)
                        tb.add_scalar("train/lr", lr, step)
                        tb.add_scalar("train/images_per_s", ips, step)
                    if bar is not None:
                        bar.set_postfix(loss=f"{mean_loss:.4g}", lr=f"{lr:.3g}", img_s=f"{ips:.0f}")
                    window_loss, window_n, window_imgs, t0 = 0.0, 0, 0, time.perf_counter()
                if bar is not None:
                    bar.update(1)
                end_of_epoch = in_epoch == updates_per_epoch * K
                if step >= total_steps or end_of_epoch:
                    break
                if step % checkpoint_every == 0:
                    _save_checkpoint(acc, out, state(epoch, in_epoch))
                    last_saved = step
        finally:
            close = getattr(it, "close", None)
            if close is not None:
                close()
        skip_batches = 0
        epoch_done = in_epoch == updates_per_epoch * K
        trained_epoch = epoch
        if epoch_done:
            epoch += 1
            in_epoch = 0
        # the checkpoint comes before validation: a validation that fails (a ValCountError) loses no training
        saved_now = None
        if step != last_saved:
            saved_now = _save_checkpoint(acc, out, state(epoch, in_epoch))
            last_saved = step
        if val_loader is not None:
            distribute_bn(raw_model, world)  # every rank validates (and rank 0 saves) the ranks' mean statistics
            if ema is not None:
                distribute_bn(ema.module, world)
            last_val = evaluate(acc, raw_model, ema.module if ema is not None else None, val_loader, channels_last)
            if saved_now is not None and main:
                _record_val(saved_now, last_val)
            row = {k: last_val.get(k) for k in VAL_FIELDS if k in last_val}
            val_log.write({**{k: (f"{v:.4f}" if isinstance(v, float) else v) for k, v in row.items()},
                           "step": step, "epoch": trained_epoch})
            if tb is not None:
                for k in ("top1", "top5", "ema_top1", "ema_top5", "loss"):
                    if last_val.get(k) is not None:
                        tb.add_scalar(f"val/{k}", last_val[k], step)
            if main:
                msg = f"epoch {trained_epoch} step {step}: val top-1 {last_val['top1']:.2f} top-5 {last_val['top5']:.2f}"
                if ema is not None:
                    msg += f", EMA top-1 {last_val['ema_top1']:.2f} top-5 {last_val['ema_top5']:.2f}"
                (bar.write if bar is not None else print)(msg + f" ({last_val['images']} images)")
    if bar is not None:
        bar.close()
    metrics.close()
    val_log.close()
    if tb is not None:
        tb.close()

    # -- final weights, card, results ---------------------------------------------------------------
    if last_val is None and val_loader is not None:  # resumed a finished run: measure once more
        last_val = evaluate(acc, raw_model, ema.module if ema is not None else None, val_loader, channels_last)
    use_ema = ema is not None
    top1 = None if last_val is None else (last_val["ema_top1"] if use_ema else last_val["top1"])
    top5 = None if last_val is None else (last_val["ema_top5"] if use_ema else last_val["top5"])
    results = {"model": model_name, "step": step, "epoch": epoch, "total_steps": total_steps,
               "weights": "ema" if use_ema else "model", "top1": top1, "top5": top5,
               "val": None if last_val is None else {k: v for k, v in last_val.items() if k != "counts"},
               "val_counts": None if last_val is None else last_val["counts"], "global_batch": global_batch,
               "lr": recipe["lr"], "output_dir": str(out), "final": str(out / "final.pt")}
    acc.wait_for_everyone()
    if main:
        weights = (ema.module if use_ema else raw_model).state_dict()
        torch_save({"state_dict": {k: v.detach().cpu() for k, v in weights.items()}, "weights": results["weights"],
                    "model": model_name, "num_classes": n_cls, "step": step, "top1": top1, "top5": top5},
                   out / "final.pt")
        try:
            info = model_info(model_name)  # registered MOTE models only, all of a timm-retrainable space
        except InputError:
            info = None  # a plain timm model: no MOTE architecture card, results.json only
        if info is not None and top1 is not None:
            write_model_card(out, model_name, info["arch"], info["space"], recipe, top1,
                             extra={"top1_measured_on": _describe(val_data, imagefolder), "weights": results["weights"],
                                    "steps": step, "num_classes": n_cls})
            results["model_card"] = str(out / "model_card.json")
        write_text(out / "results.json", json.dumps(results, indent=2, default=str) + "\n")
    acc.wait_for_everyone()
    return results


def _describe(data, imagefolder) -> str:
    if imagefolder is not None:
        return f"ImageFolder {imagefolder}"
    if data is None:
        return "none"
    return "loader" if _is_loader(data) else str(data)


def _create(name: str, kw: dict):
    """timm.create_model with recipe kwargs; a model that rejects drop rates is built without them."""
    import timm
    try:
        return timm.create_model(name, **kw)
    except TypeError:
        kw = {k: v for k, v in kw.items() if k not in ("drop_rate", "drop_path_rate")}
        return timm.create_model(name, **kw)


__all__ = ["evaluate", "latest_checkpoint", "retrain"]
