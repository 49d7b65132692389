"""Input problems a user can fix: printed by the CLI as one line, exit status 2.

One root for the whole project: ``InputError`` (defined with the spaces, the lowest layer);
``ArchError`` (a malformed architecture) is a subclass of it. ``DeviceError`` is no input error: the CLI
prints it as one line with its own exit status (``mobile_mote.cli.DEVICE_FAILURE``).
"""
from mobile_mote.search_spaces.errors import ArchError, InputError

__all__ = ["ArchError", "DeviceError", "InputError", "load_error"]


class DeviceError(RuntimeError):
    """Out of memory or a CUDA error that outlived its retries: a fault of the device or of the run, not of
    the candidate, so it is raised instead of becoming the candidate's failed record (a store would keep
    that for good). The run stops; ``--resume`` scores the candidate again."""


def load_error(e: BaseException) -> str:
    """One line for why ``torch.load`` (or a loader like it) could not read a file. torch's refusal of a
    pickle that would run code is several sentences on several lines; it is said here in one clause."""
    text = str(e)
    if "Weights only load failed" in text:
        return ("it holds pickled Python objects besides tensors; refused, as loading them could run code "
                "(expected a state dict of tensors, or .safetensors)")
    first = text.splitlines()[0] if text else ""
    return f"{type(e).__name__}: {first}" if first else type(e).__name__
