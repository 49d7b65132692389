#!/usr/bin/env python
"""Retraining throughput on this machine: model images/s, data-pipeline images/s, a short real run.

1. Model: images/s of one training step of the ``mobilenetv2_100`` preset (``mote_mobilenetv2_100``,
   timm's network key for key) on synthetic on-device batches, so it measures the model, not the data:
   * the recipe's loop (``train/recipes/mobilenetv2_100.yaml``): its optimiser through
     ``timm.optim.create_optimizer_v2`` at the linearly scaled lr, label-smoothing loss, drop / drop-path,
     EMA of the weights; bf16 autocast + channels_last on CUDA, fp32 on CPU; eager and ``torch.compile``
     (compile is skipped on CPU unless ``--compile``);
   * a plain PyTorch loop beside it: fp32, contiguous, ``torch.optim.SGD``, cross entropy, no EMA.
2. Data: images/s of the real pipeline over webdataset shards written by ``train.shards.write_shards``
   from a small real image folder (default ``../shared/data/proxy_cifar100_10/train``, 32x32 JPEGs
   upscaled by the recipe's training transform to 224): CPU decoding + augmentation through
   ``train.data.train_loader``; and GPU decoding with ``torchvision.io.decode_jpeg(device='cuda')`` +
   resize when CUDA exists (else "not measured: no GPU").
3. Projection: GPU-hours for 200 and 600 epochs of ImageNet-1K (1,281,167 images) from the measured
   model images/s, only for GPU figures (else "not measured").
4. A short real training run (default 30 steps, 64x64, the recipe's optimiser) on the same shards,
   recording the loss of every step (first / last, and the means of the first and last five).

    python tools/bench_retrain.py --device cpu --batch-size 16 --steps 5 --warmup 2 --threads 1
    python tools/bench_retrain.py --device cuda --batch-size 256 --steps 50 --warmup 10
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "proxy_cifar100_10" / "train"


def main(argv=None) -> int:
    import torch

    from mobile_mote.train.throughput import run

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--batch-size", type=int, default=None, help="model-throughput batch (default 256 on CUDA, 16 on CPU)")
    p.add_argument("--resolution", type=int, default=224)
    p.add_argument("--steps", type=int, default=None, help="timed steps (default 50 on CUDA, 5 on CPU)")
    p.add_argument("--warmup", type=int, default=None, help="untimed steps first (default 10 on CUDA, 2 on CPU)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="also time the torch.compile'd recipe loop (default: on for CUDA, off for CPU)")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--data", default=str(DEFAULT_DATA), help="ImageFolder of real images to shard (default: %(default)s)")
    p.add_argument("--per-class", type=int, default=50, help="images per class taken into the shards")
    p.add_argument("--data-batch-size", type=int, default=None, help="data-pipeline batch (default: --batch-size)")
    p.add_argument("--data-batches", type=int, default=10)
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="DataLoader workers for CPU decoding")
    p.add_argument("--train-steps", type=int, default=30)
    p.add_argument("--train-resolution", type=int, default=64)
    p.add_argument("--train-batch-size", type=int, default=32)
    p.add_argument("--train-lr", type=float, default=None, help="override the recipe's scaled lr in the short run")
    p.add_argument("--out", default=None, help="default benchmarks/results/retrain_throughput_<device>.json")
    args = p.parse_args(argv)
    return run(args, [sys.argv[0], *(argv if argv is not None else sys.argv[1:])], REPO / "benchmarks" / "results")


if __name__ == "__main__":
    sys.exit(main())
