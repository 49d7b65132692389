"""`mote`: a thin command line over the Python API. Bad input exits 2 with one line; a device that failed
while scoring (``DeviceError``) exits ``DEVICE_FAILURE`` with one line.

Each sub-command lives in its own module of this package exposing ``register(subparsers)``; a
command module imports torch, timm and the heavy parts of the package only inside the function that
runs it, so ``mote --help`` and every input error answer at once.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from ..errors import DeviceError, InputError

MACS_NOTE = ("MACs = multiply-accumulates of conv and linear layers (what papers call FLOPs); "
             "BN, activations and pooling excluded.")

# The exit status of a command stopped by its device: out of memory or a CUDA error that outlived its
# retries (``DeviceError``). Not bad input (2): the same command may pass with fewer workers, a smaller
# batch or another device.
DEVICE_FAILURE = 4
DEVICE_FAILURE_STATUS = (f"{DEVICE_FAILURE} the device failed (out of memory or a CUDA error after retries; one "
                         "line: try fewer --workers-per-device, a smaller batch with --set batch_size=N, or "
                         "another --device)")

COMMANDS = ("flops", "score", "fuse", "make_rd", "search", "pareto", "export", "retrain", "latency", "modnas")


class OneLineParser(argparse.ArgumentParser):
    """argparse with the project's error form: one line ``mote <cmd>: error: ...``, exit status 2 (the
    sub-command parsers are of this class too: ``add_subparsers`` makes its parsers of the parent's)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message.splitlines()[0] if message else 'bad arguments'} "
                     f"(see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog="mote", description="MOTE-NAS for mobile image classifiers. " + MACS_NOTE)
    sub = p.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) or a bad argument (2, one line already printed)
        return e.code if isinstance(e.code, int) else 2
    try:
        return args.func(args)
    except (InputError, FileNotFoundError, PermissionError, IsADirectoryError) as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        _say(f"mote {args.command}: error: {msg}")
        return 2
    except DeviceError as e:
        _say(f"mote {args.command}: error: {device_failure_line(e, args)}")
        return DEVICE_FAILURE
    except KeyboardInterrupt:
        _say(f"mote {args.command}: interrupted")
        return 130


def device_failure_line(e: DeviceError, args) -> str:
    """What failed (the error's first line) and what to try; a resumable run says how to go on."""
    msg = str(e).splitlines()[0] if str(e) else "out of memory or a CUDA error"
    workers = getattr(args, "workers", None) or 1
    tries = [f"fewer --workers-per-device (now {workers})"] if workers > 1 else []
    tries += ["a smaller batch (--set batch_size=N)", "another --device"]
    after = ("; the candidates scored so far are kept, --resume goes on" if hasattr(args, "resume")
             else "")
    return f"the device failed: {msg}; try {', '.join(tries[:-1])} or {tries[-1]}{after}"


def _say(line: str) -> None:
    """``line`` on stderr, on a line of its own: a progress bar still open (its loop left by the error)
    is closed first, so the bar ends its line and is not drawn again after the message."""
    tqdm = sys.modules.get("tqdm")
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", ()) or ()):
        try:
            bar.close()
        except Exception:  # noqa: BLE001 (a bar that cannot close must not hide the error)
            pass
    print(line, file=sys.stderr)


if __name__ == "__main__":
    raise SystemExit(main())
