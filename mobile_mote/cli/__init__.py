"""`mote`: a thin command line over the Python API. Bad input exits 2 with one line.

Each sub-command lives in its own ``cmd_*`` module exposing ``register(subparsers)``.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from search_spaces import ArchError

from .errors import InputError

MACS_NOTE = ("MACs = multiply-accumulates of conv and linear layers (what papers call FLOPs); "
             "BN, activations and pooling excluded.")

_COMMAND_MODULES = ("cmd_flops", "cmd_score", "cmd_make_rd", "cmd_search", "cmd_pareto", "cmd_export", "cmd_retrain",
                    "cmd_latency", "cmd_modnas")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="mote", description="MOTE-NAS for mobile image classifiers. " + MACS_NOTE)
    sub = p.add_subparsers(dest="command", required=True)
    for name in _COMMAND_MODULES:
        try:
            mod = importlib.import_module(f"mobile_mote.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"mobile_mote.{name}":
                raise
            continue
        mod.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ArchError, InputError, FileNotFoundError, PermissionError, IsADirectoryError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        print(f"mote {args.command}: error: {msg}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"mote {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
