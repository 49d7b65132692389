"""Input problems a user can fix: printed by the CLI as one line, exit status 2.

One root for the whole project: ``InputError`` (defined with the spaces, the lowest layer);
``ArchError`` (a malformed architecture) is a subclass of it.
"""
from search_spaces.errors import ArchError, InputError

__all__ = ["ArchError", "InputError", "load_error"]


def load_error(e: BaseException) -> str:
    """One line for why ``torch.load`` (or a loader like it) could not read a file. torch's refusal of a
    pickle that would run code is several sentences on several lines; it is said here in one clause."""
    text = str(e)
    if "Weights only load failed" in text:
        return ("it holds pickled Python objects besides tensors; refused, as loading them could run code "
                "(expected a state dict of tensors, or .safetensors)")
    first = text.splitlines()[0] if text else ""
    return f"{type(e).__name__}: {first}" if first else type(e).__name__
