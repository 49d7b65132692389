"""Write an ImageFolder tree as webdataset shards plus an index JSON (thin layer over ``train.shards``).

    python tools/make_shards.py /data/imagenet/train --out /data/shards --prefix imagenet-train --shard-size 1GB
    python tools/make_shards.py /data/imagenet/val   --out /data/shards --prefix imagenet-val --shard-samples 1000

Writes ``OUT/PREFIX-000000.tar`` ... and ``OUT/PREFIX-index.json`` (classes, per-shard samples, bytes
and per-class counts, totals, seed, date). Samples: ``__key__``, ``jpg`` (original bytes when the
file is a JPEG, otherwise converted), ``cls`` (class index). Same seed, same bytes. Rerunning the same
command resumes after the last complete shard; a killed run never leaves a truncated shard under its
final name. Bad input: one line on stderr, exit status 2.
"""
from __future__ import annotations

import argparse
import sys

from mobile_mote.errors import InputError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="make_shards", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("root", help="ImageFolder root: one sub-folder per class (ImageNet: train/ or val/ sorted by wnid)")
    p.add_argument("--out", required=True, help="output folder (created if missing)")
    p.add_argument("--prefix", required=True, help="shard name prefix, e.g. imagenet-train -> imagenet-train-000000.tar")
    p.add_argument("--shard-size", default=None,
                   help="max bytes per shard: 1GB, 500MB, 64KiB, or a byte count (default 1GB unless --shard-samples)")
    p.add_argument("--shard-samples", type=int, default=None, help="max samples per shard")
    p.add_argument("--seed", type=int, default=0, help="shuffle seed (default 0)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace this prefix's shards and index in OUT instead of resuming")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from tqdm import tqdm

    from mobile_mote.train.shards import write_shards

    def log(msg: str) -> None:
        tqdm.write(f"make_shards: {msg}", file=sys.stderr)

    try:
        index = write_shards(args.root, args.out, args.prefix, max_bytes=args.shard_size,
                             max_samples=args.shard_samples, seed=args.seed, overwrite=args.overwrite,
                             progress=not args.quiet, log=log)
    except InputError as e:
        print(f"make_shards: error: {e}", file=sys.stderr)
        return 2
    t = index["totals"]
    print(f"{t['samples']} images of {index['num_classes']} classes in {t['shards']} shards "
          f"({t['bytes'] / 1e9:.3f} GB): {args.out}/{index['pattern']}"
          + (f"; {t['converted']} converted to JPEG" if t["converted"] else "")
          + (f"; {len(t['skipped'])} unreadable skipped" if t["skipped"] else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
