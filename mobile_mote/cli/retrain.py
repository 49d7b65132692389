"""`mote retrain`: retrain a model (a winner, a preset, a timm name) with a timm recipe under Accelerate.

One process::

    mote retrain --recipe mote_nas_200ep --model runs/search1 --train-shards 'in1k/imagenet-train-{000000..001023}.tar' \\
        --val-shards 'in1k/imagenet-val-{000000..000063}.tar' --output runs/search1/retrain

Several (one per GPU; on CPU add ``env CUDA_VISIBLE_DEVICES=``, see ``mobile_mote.parallel.launch_command``)::

    accelerate launch --multi_gpu --num_processes 8 -m mobile_mote retrain ...

Also runnable as ``python -m mobile_mote.cli.retrain retrain ...`` (same arguments, same exit codes).
"""
from __future__ import annotations

import json


def _retrain(args) -> int:
    from ..errors import InputError

    if args.imagefolder and (args.train_shards or args.val_shards):
        raise InputError("give either --train-shards/--val-shards or --imagefolder, not both")
    if not args.imagefolder and not args.train_shards:
        raise InputError("no training data; accepted: --train-shards PATTERN [--val-shards PATTERN] or "
                         "--imagefolder ROOT")
    from .args import threads_from_args
    threads = threads_from_args(args)  # per process; under accelerate launch, cores // WORLD_SIZE by default
    from mobile_mote.train.loop import retrain  # imports torch/timm/accelerate: only when the command runs

    from ..devices import apply_threads
    apply_threads(threads)

    res = retrain(args.recipe, args.model, train_data=args.train_shards or None, val_data=args.val_shards or None,
                  output_dir=args.output, imagefolder=args.imagefolder, resume=args.resume, max_steps=args.max_steps,
                  epochs=args.epochs, batch_size=args.batch_size, grad_accum=args.grad_accum,
                  checkpoint_every=args.checkpoint_every, num_workers=args.workers, seed=args.seed,
                  log_every=args.log_every, img_size=args.img_size, num_classes=args.num_classes,
                  epoch_size=args.epoch_size, progress=not args.no_progress)
    if _is_main():
        print(json.dumps({k: res.get(k) for k in ("model", "step", "epoch", "weights", "top1", "top5", "final")}))
    return 0


def _is_main() -> bool:
    import os
    return os.environ.get("RANK", "0") in ("", "0")


def register(sub) -> None:
    from .args import add_threads_argument
    r = sub.add_parser("retrain", help="retrain a winner / preset with a timm recipe (Accelerate, checkpoints, resume)",
                       description="Retrain with a timm recipe on webdataset shards or an ImageFolder; launch with "
                                   "`accelerate launch -m mobile_mote retrain ...` for several processes.")
    r.add_argument("--recipe", required=True, help="recipe name (train/recipes/*.yaml) or a YAML path")
    r.add_argument("--model", required=True, help="MOTE / timm model name, winner.json, or runs/<name>")
    r.add_argument("--train-shards", default=None, help="training shards: PREFIX-index.json, brace pattern or folder")
    r.add_argument("--val-shards", default=None, help="validation shards (every image seen once)")
    r.add_argument("--imagefolder", default=None, help="ImageFolder ROOT with train/ and val/ (instead of shards)")
    r.add_argument("--output", required=True, help="run folder (checkpoints, metrics.csv, final.pt, model card)")
    r.add_argument("--resume", action="store_true", help="continue from the latest complete checkpoint in --output")
    r.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs (the schedule follows)")
    r.add_argument("--batch-size", type=int, default=None,
                   help="images per process per micro-batch (default: the recipe's)")
    r.add_argument("--max-steps", type=int, default=None, help="stop after this many optimizer steps")
    r.add_argument("--grad-accum", type=int, default=1, help="micro-batches per optimizer step")
    r.add_argument("--checkpoint-every", type=int, default=1000, help="optimizer steps between checkpoints "
                   "(also one at every epoch end)")
    r.add_argument("--workers", type=int, default=4, help="data-loading workers per process")
    r.add_argument("--img-size", type=int, default=None, help="override the recipe's image size")
    r.add_argument("--num-classes", type=int, default=None, help="classes (default: recipe, shard index or folders)")
    r.add_argument("--epoch-size", type=int, default=None, help="images per epoch for resampled shards "
                   "(default: the shard index's total)")
    r.add_argument("--log-every", type=int, default=50, help="optimizer steps between metrics.csv rows")
    r.add_argument("--seed", type=int, default=0)
    add_threads_argument(r)
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    r.set_defaults(func=_retrain)


if __name__ == "__main__":  # python -m mobile_mote.cli.retrain retrain ... (same as `mote retrain ...`)
    from . import main
    raise SystemExit(main())
