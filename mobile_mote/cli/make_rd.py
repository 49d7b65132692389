"""`mote make-rd`: build a reduced data set (.npz + provenance .json) from a large labelled source."""
from __future__ import annotations

import json
from pathlib import Path

from ..errors import InputError


def _labels_arg(args):
    if args.preset and args.labels:
        raise InputError("--preset and --labels exclude each other; give one")
    labels = args.preset or args.labels
    if labels is not None and args.r is not None:
        from ..data.reduced_data import resolve_labels
        n = len(resolve_labels(labels)[0])
        if args.r != n:
            raise InputError(f"--r {args.r} disagrees with the {n} labels given; leave --r out with a label list")
    return labels


def _make_rd(args) -> int:
    import torch

    from ..data.reduced_data import make_reduced_dataset
    from ..devices import resolve_device
    labels = _labels_arg(args)
    device = resolve_device(args.device)  # before anything is read or written
    if args.threads:
        torch.set_num_threads(args.threads)
    pd = make_reduced_dataset(
        args.source, r=args.r, seed=args.seed, embedder=args.embedder, rule=args.rule, size=args.size,
        labels=labels, out=args.out, overwrite=args.overwrite, root=args.root, label_names=args.label_names,
        weights=args.weights, device=device, batch_size=args.batch_size,
        embed_per_label=args.embed_per_label, progress=not args.quiet)
    p = pd.provenance
    print(json.dumps({"out": args.out, "provenance": str(Path(args.out).with_suffix(".json")), "labels": pd.labels,
                      "rule": p["rule"], "embedder": (p["embedder"] or {}).get("name"), "r": p["r"],
                      "seed": p["seed"], "size": p["size"], "train": p["counts"]["total_train"],
                      "test": p["counts"]["total_test"], "seconds": p["seconds"]}))
    return 0


def _positive(s: str) -> int:
    import argparse
    try:
        v = int(s)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{s!r} is not a whole number; accepted: 1 or more") from None
    if v < 1:
        raise argparse.ArgumentTypeError(f"{v}; accepted: a whole number, 1 or more")
    return v


def register(sub) -> None:
    from ..data.embedders import DEFAULT_EMBEDDER, EMBEDDERS
    from ..data.reduced_data import PRESETS, RULES, SOURCES
    p = sub.add_parser(
        "make-rd", help="build a reduced data set (embed, cluster label means, one label per cluster)",
        description="Embed every training image with a pretrained CNN, average per label, K-means the label "
                    "means into r clusters and keep one label per cluster; all images of the chosen labels are "
                    "written, resized, to an .npz with a provenance .json beside it. A preset or a label list "
                    "skips the embedding. Weights are never downloaded.")
    p.add_argument("--source", required=True, choices=SOURCES,
                   help="imagefolder: ROOT/<label>/*.jpg or ROOT/{train,test}/<label>/; cifar100: torchvision "
                        "root (holding cifar-100-python/); wds: .tar shard, brace pattern or directory of shards")
    p.add_argument("--root", required=True, help="where the source lives")
    p.add_argument("--out", required=True, help="output FILE.npz (FILE.json gets the provenance)")
    p.add_argument("--r", type=_positive, default=None, help="number of labels to keep (default 10)")
    p.add_argument("--seed", type=int, default=0, help="K-means random_state and subsampling seed (default 0)")
    p.add_argument("--embedder", choices=EMBEDDERS, default=DEFAULT_EMBEDDER,
                   help=f"pretrained CNN (default {DEFAULT_EMBEDDER}, offline; vgg16 needs local torchvision weights)")
    p.add_argument("--weights", default=None, help="embedder weights file (default: packaged / torch hub cache)")
    p.add_argument("--rule", choices=RULES, default="paper",
                   help="paper: farthest-point sampling across clusters; official: per cluster the label farthest "
                        "(summed) from the other cluster centres")
    p.add_argument("--size", type=_positive, default=32, help="output image side in pixels (default 32)")
    p.add_argument("--preset", choices=sorted(PRESETS), default=None, help="a published label list (skips embedding)")
    p.add_argument("--labels", default=None, help="comma-separated label names to keep (skips embedding)")
    p.add_argument("--label-names", default=None, help="wds: JSON/txt mapping class index to name")
    p.add_argument("--embed-per-label", type=_positive, default=None,
                   help="embed at most N images per label (seeded; default all)")
    p.add_argument("--batch-size", type=_positive, default=64)
    p.add_argument("--device", default="auto", help="torch device for embedding: auto (default: cuda when this "
                   "machine has a CUDA device, else cpu), cpu, cuda, cuda:N or mps")
    p.add_argument("--threads", type=_positive, default=None, help="torch CPU threads")
    p.add_argument("--overwrite", action="store_true", help="replace an existing output")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_make_rd)
