"""Retraining throughput on this machine (``tools/bench_retrain.py``): images/s of the recipe's training step
beside a plain PyTorch loop, of the data pipeline over real shards (CPU and GPU decoding), the projected
GPU-hours of an ImageNet-1K recipe, and a short real run's losses."""
from __future__ import annotations

import json
import sys
import tarfile
import tempfile
import time
from pathlib import Path

from mobile_mote.atomic import write_text
from mobile_mote.errors import InputError

IMAGENET_TRAIN_IMAGES = 1_281_167
PROJECTION_EPOCHS = (200, 600)
PRESET = "mote_mobilenetv2_100"
RECIPE = "mobilenetv2_100"


def _sync(device) -> None:
    import torch
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _recipe(batch: int, name: str = RECIPE) -> dict:
    from mobile_mote import train
    return train.resolve(train.load_recipe(name), global_batch=batch)


def _recipe_parts(device, recipe: dict, num_classes: int = 1000, compile_model: bool = False, preset: str = PRESET):
    """(model, step function, description) for the recipe's training step."""
    import torch
    from mobile_mote import train
    from timm.optim import create_optimizer_v2
    from timm.utils import ModelEmaV3
    from mobile_mote.train.data import train_criterion
    from mobile_mote.train.loop import optimizer_and_scheduler_kwargs

    cuda = device.type == "cuda"
    train.register_presets()  # the mote_* presets are registered names
    model = train.create_model(preset, num_classes=num_classes, drop_rate=float(recipe.get("drop", 0.0)),
                               drop_path_rate=float(recipe.get("drop_path", 0.0))).to(device)
    if cuda:
        model = model.to(memory_format=torch.channels_last)
    model.train()
    opt = create_optimizer_v2(model, **optimizer_and_scheduler_kwargs(recipe, 0)[0])  # as train.loop does
    crit = train_criterion(recipe, None)
    ema = ModelEmaV3(model, decay=float(recipe["model_ema_decay"])) if recipe.get("model_ema") else None
    fwd = torch.compile(model) if compile_model else model
    amp = cuda and bool(recipe.get("amp", True))

    def step(x, y):
        if cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=amp):
            loss = crit(fwd(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if ema is not None:
            ema.update(model)
        return loss

    desc = {"optimizer": recipe["opt"], "lr": recipe["lr"], "lr_rule": recipe.get("resolved_from"),
            "weight_decay": recipe.get("weight_decay"), "momentum": recipe.get("momentum"),
            "opt_eps": recipe.get("opt_eps"), "loss": type(crit).__name__, "label_smoothing": recipe.get("smoothing"),
            "drop": recipe.get("drop"), "drop_path": recipe.get("drop_path"),
            "ema_decay": recipe.get("model_ema_decay") if ema is not None else None,
            "precision": "bf16 autocast" if amp else "fp32", "memory_format": "channels_last" if cuda else "contiguous",
            "torch_compile": bool(compile_model)}
    return model, step, desc


def _plain_parts(device, name: str = RECIPE):
    import timm
    import torch

    model = timm.create_model(name).to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=4e-5)
    crit = torch.nn.CrossEntropyLoss()

    def step(x, y):
        loss = crit(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return loss

    return model, step, {"model": f"timm {name}", "optimizer": "torch.optim.SGD lr 0.1 momentum 0.9",
                         "loss": "CrossEntropyLoss", "precision": "fp32", "memory_format": "contiguous",
                         "torch_compile": False}


def time_steps(step, device, batch: int, res: int, steps: int, warmup: int, num_classes: int = 1000) -> dict:
    """images/s over ``steps`` timed steps after ``warmup`` untimed ones, on synthetic on-device batches."""
    import torch

    g = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(batch, 3, res, res, generator=g).to(device)
    y = torch.randint(0, num_classes, (batch,), generator=g).to(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    t0 = time.perf_counter()
    for _ in range(warmup):
        loss = step(x, y)
    if warmup:
        float(loss.detach())
    _sync(device)
    warm_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        loss = step(x, y)
    last = float(loss.detach())  # waits for the last step
    _sync(device)
    dt = time.perf_counter() - t0
    out = {"images_per_s": batch * steps / dt, "seconds_per_step": dt / steps, "timed_steps": steps,
           "warmup_steps": warmup, "warmup_seconds": warm_s, "last_loss": last}
    if device.type == "cuda":
        out["peak_memory_gib"] = torch.cuda.max_memory_allocated(device) / 2 ** 30
    return out


def bench_model(device, batch: int, res: int, steps: int, warmup: int, compile_: bool, model_name: str = RECIPE) -> dict:
    """images/s of the recipe's step (eager, compiled) and of a plain loop for timm model ``name``
    (its recipe ``train/recipes/<name>.yaml`` and preset ``mote_<name>``)."""
    import torch

    recipe = _recipe(batch, model_name)
    preset = f"mote_{model_name}"
    out = {}
    variants = [("recipe_eager", lambda: _recipe_parts(device, recipe, preset=preset)),
                ("recipe_compiled", (lambda: _recipe_parts(device, recipe, compile_model=True, preset=preset))
                 if compile_ else None),
                ("plain_pytorch", lambda: _plain_parts(device, model_name))]
    for name, make in variants:
        if make is None:
            out[name] = {"status": "skipped", "reason": "torch.compile skipped on CPU (pass --compile)"
                         if device.type == "cpu" else "--no-compile"}
            continue
        torch.manual_seed(0)
        try:
            model, step, desc = make()
            out[name] = {"status": "measured", **desc, **time_steps(step, device, batch, res, steps, warmup)}
        except Exception as e:  # a failed variant (e.g. compile without a compiler) is recorded, not fatal
            out[name] = {"status": "failed", "error": f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"}
        finally:
            model = step = None
            if device.type == "cuda":
                torch.cuda.empty_cache()
        print(f"  model {name}: " + (f"{out[name]['images_per_s']:.1f} images/s" if out[name]["status"] == "measured"
                                     else out[name]["status"]), flush=True)
    return out


# ---------------------------------------------------------------------------------------------- data

def make_subset(src: Path, dst: Path, per_class: int) -> int:
    """``dst/<class>/`` holding symlinks to the first ``per_class`` images (sorted) of each class of ``src``."""
    if not src.is_dir():
        raise InputError(f"image folder {src} does not exist; accepted: a folder holding one sub-folder per class")
    n = 0
    for cdir in sorted(p for p in src.iterdir() if p.is_dir() and not p.name.startswith(".")):
        files = sorted(p for p in cdir.iterdir() if p.is_file())[:per_class]
        (dst / cdir.name).mkdir(parents=True, exist_ok=True)
        for f in files:
            (dst / cdir.name / f.name).symlink_to(f.resolve())
            n += 1
    if n == 0:
        raise InputError(f"no images under {src}; accepted: a folder holding one sub-folder per class")
    return n


def bench_cpu_pipeline(shards: str, recipe: dict, batch: int, batches: int, workers: int) -> dict:
    from mobile_mote.train.data import train_loader

    rec = dict(recipe, img_size=224)
    loader = train_loader(shards, batch, transform=rec, epoch_size=batch * (batches + 1), seed=0, num_workers=workers)
    it = iter(loader)
    t_start = time.perf_counter()
    next(it)  # the first batch pays for worker start-up and the shuffle buffer's initial fill
    first_s = time.perf_counter() - t_start
    t0 = time.perf_counter()
    n = 0
    for images, _ in it:
        n += len(images)
    dt = time.perf_counter() - t0
    shape = list(images.shape)
    return {"status": "measured", "images_per_s": n / dt, "images": n, "seconds": dt, "first_batch_seconds": first_s,
            "workers": workers, "batch_size": batch, "output_shape": shape,
            "transform": "recipe training transform (RandomResizedCrop 224 bicubic/random, RandAugment m9 mstd0.5, "
                         "random erasing 0.2, normalise) on PIL decode"}


def bench_gpu_decode(shard_files: list[str], device, batch: int, batches: int, res: int = 224) -> dict:
    import torch
    import torch.nn.functional as F
    from torchvision.io import decode_jpeg

    blobs = []
    for f in shard_files:
        with tarfile.open(f) as tf:
            for m in tf.getmembers():
                if m.name.endswith(".jpg"):
                    blobs.append(tf.extractfile(m).read())
    need = batch * (batches + 1)
    blobs = (blobs * (need // max(1, len(blobs)) + 1))[:need]
    data = [torch.frombuffer(bytearray(b), dtype=torch.uint8) for b in blobs]

    def one(chunk):
        imgs = decode_jpeg(chunk, device=device)
        out = torch.stack([F.interpolate(im.unsqueeze(0).float(), size=(res, res), mode="bilinear",
                                         antialias=False)[0] for im in imgs])
        return out

    one(data[:batch])
    _sync(device)
    t0 = time.perf_counter()
    for i in range(1, batches + 1):
        one(data[i * batch:(i + 1) * batch])
    _sync(device)
    dt = time.perf_counter() - t0
    return {"status": "measured", "images_per_s": batch * batches / dt, "images": batch * batches, "seconds": dt,
            "batch_size": batch, "what": f"torchvision.io.decode_jpeg(device='{device}') of a batch + bilinear resize "
                                         f"to {res} (no augmentation); host->device copy of the bytes included"}


# ---------------------------------------------------------------------------------------- short run

def short_training(shards: str, device, steps: int, res: int, batch: int, num_classes: int, lr: float | None) -> dict:
    import torch
    from mobile_mote.train.data import make_transform, train_loader

    recipe = _recipe(batch)
    if lr is not None:
        recipe["lr"], recipe["resolved_from"] = float(lr), "--train-lr"
    torch.manual_seed(0)
    model, step, desc = _recipe_parts(device, recipe, num_classes=num_classes)
    transform = make_transform({"img_size": res, "no_aug": True}, is_training=True)
    loader = train_loader(shards, batch, transform=transform, epoch_size=batch * steps, seed=0, num_workers=0)
    losses = []
    t0 = time.perf_counter()
    for x, y in loader:
        losses.append(float(step(x.to(device), y.to(device)).detach()))
    dt = time.perf_counter() - t0
    k = min(5, len(losses))
    first5, last5 = sum(losses[:k]) / k, sum(losses[-k:]) / k
    return {"steps": len(losses), "resolution": res, "batch_size": batch, "num_classes": num_classes,
            "images_seen": loader.seen_total, "seconds": dt, "loss_first": losses[0], "loss_last": losses[-1],
            "loss_mean_first5": first5, "loss_mean_last5": last5, "loss_fell": last5 < first5, "losses": losses,
            "data": "real images from the shards, resize + centre crop + normalise (no augmentation)", **desc}


# ---------------------------------------------------------------------------------------------- main

def project(model: dict, device) -> dict:
    if device.type != "cuda":
        return {"status": "not measured", "reason": "no GPU figure (projections are made only from GPU throughput)"}
    best = max((v for v in (model.get("recipe_compiled"), model.get("recipe_eager")) if v and v.get("status") == "measured"),
               key=lambda v: v["images_per_s"], default=None)
    if best is None:
        return {"status": "not measured", "reason": "no recipe throughput measured"}
    ips = best["images_per_s"]
    return {"status": "projected", "from": "recipe_compiled" if best is model.get("recipe_compiled") else "recipe_eager",
            "images_per_s": ips, "imagenet_train_images": IMAGENET_TRAIN_IMAGES,
            **{f"gpu_hours_{e}_epochs": IMAGENET_TRAIN_IMAGES * e / ips / 3600 for e in PROJECTION_EPOCHS},
            "assumes": "one GPU of this kind, the data pipeline keeping up, no evaluation time"}


def run(args, command: list[str], results: Path) -> int:
    """The tool's measurements on its arguments: writes ``args.out`` (default: ``results``/
    retrain_throughput_<device>.json, recording ``command``) and prints the figures; 2 after a one-line error."""
    import torch

    try:
        try:
            device = torch.device(args.device)
        except RuntimeError:
            raise InputError(f"unknown device {args.device!r}; accepted: cpu, cuda, cuda:N") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise InputError("device cuda asked for but CUDA is not available; accepted: cpu")
        if device.type not in ("cpu", "cuda"):
            raise InputError(f"device {args.device!r}; accepted: cpu, cuda, cuda:N")
        for name in ("steps", "warmup", "batch_size", "data_batches", "per_class", "train_steps", "train_batch_size"):
            v = getattr(args, name)
            if v is not None and v < (0 if name == "warmup" else 1):
                raise InputError(f"--{name.replace('_', '-')} {v}; accepted: a positive whole number")
        data_root = Path(args.data)
        if not data_root.is_dir():
            raise InputError(f"image folder {data_root} does not exist; accepted: a folder holding one sub-folder per class")
    except InputError as e:
        print(f"bench_retrain: {e}", file=sys.stderr)
        return 2

    cuda = device.type == "cuda"
    batch = args.batch_size or (256 if cuda else 16)
    steps = args.steps or (50 if cuda else 5)
    warmup = args.warmup if args.warmup is not None else (10 if cuda else 2)
    compile_ = args.compile if args.compile is not None else cuda
    if args.threads:
        torch.set_num_threads(args.threads)
    dev_tag = args.device.replace(":", "")
    out_path = Path(args.out) if args.out else Path(results) / f"retrain_throughput_{dev_tag}.json"

    from mobile_mote.provenance import provenance

    from .shards import write_shards

    record = {"provenance": provenance(command, extra_packages=("webdataset",)),
              "settings": {"device": str(device), "batch_size": batch, "resolution": args.resolution, "steps": steps,
                           "warmup": warmup, "compile": compile_, "torch_threads": torch.get_num_threads(),
                           "model": PRESET, "recipe": RECIPE}}
    print(f"bench_retrain on {device} ({record['provenance']['gpu'] or record['provenance']['cpu']}), "
          f"batch {batch} at {args.resolution}, {steps} timed steps after {warmup}", flush=True)
    record["model_throughput"] = bench_model(device, batch, args.resolution, steps, warmup, compile_)
    record["projection"] = project(record["model_throughput"], device)

    with tempfile.TemporaryDirectory(prefix="bench_retrain_") as tmp:
        tmp = Path(tmp)
        try:
            n_img = make_subset(data_root, tmp / "images", args.per_class)
            index = write_shards(tmp / "images", tmp / "shards", "bench", max_samples=100, seed=0, progress=False)
        except InputError as e:
            print(f"bench_retrain: {e}", file=sys.stderr)
            return 2
        shards = str(tmp / "shards" / "bench-index.json")
        shard_files = sorted(str(p) for p in (tmp / "shards").glob("bench-*.tar"))
        data_batch = args.data_batch_size or batch
        classes = len(index["classes"])
        record["data"] = {"source": str(data_root), "images_sharded": n_img, "classes": classes,
                          "shards": len(shard_files), "shard_bytes": sum(Path(f).stat().st_size for f in shard_files)}
        record["data_pipeline"] = {
            "cpu_decode": bench_cpu_pipeline(shards, _recipe(data_batch), data_batch, args.data_batches, args.workers)}
        print(f"  data cpu decode: {record['data_pipeline']['cpu_decode']['images_per_s']:.1f} images/s "
              f"({args.workers} workers)", flush=True)
        if cuda:
            record["data_pipeline"]["gpu_decode"] = bench_gpu_decode(shard_files, device, data_batch, args.data_batches)
            print(f"  data gpu decode: {record['data_pipeline']['gpu_decode']['images_per_s']:.1f} images/s", flush=True)
        else:
            record["data_pipeline"]["gpu_decode"] = "not measured: no GPU"
        st = short_training(shards, device, args.train_steps, args.train_resolution, args.train_batch_size, classes,
                            args.train_lr)
        record["short_training"] = st
        print(f"  short run: {st['steps']} steps at {st['resolution']}, loss {st['loss_first']:.3f} -> "
              f"{st['loss_last']:.3f} (mean of first/last 5: {st['loss_mean_first5']:.3f} -> "
              f"{st['loss_mean_last5']:.3f})", flush=True)

    out_path.parent.mkdir(parents=True, exist_ok=True)
    write_text(out_path, json.dumps(record, indent=2) + "\n")
    mt = record["model_throughput"]
    print("\n| measurement | images/s |\n|---|---|")
    for k, v in mt.items():
        print(f"| model: {k} | {v['images_per_s']:.1f} |" if v.get("status") == "measured" else f"| model: {k} | {v['status']} |")
    for k, v in record["data_pipeline"].items():
        print(f"| data: {k} | {v['images_per_s']:.1f} |" if isinstance(v, dict) else f"| data: {k} | {v} |")
    pr = record["projection"]
    if pr["status"] == "projected":
        print(f"\nImageNet-1K projection: {pr['gpu_hours_200_epochs']:.1f} GPU-hours (200 epochs), "
              f"{pr['gpu_hours_600_epochs']:.1f} (600 epochs)")
    else:
        print(f"\nImageNet-1K projection: {pr['status']} ({pr['reason']})")
    print(f"wrote {out_path}")
    return 0
