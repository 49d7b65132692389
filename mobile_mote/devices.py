"""Which torch device a command runs on, and how many CPU threads each process takes.

``resolve_device(name)``: ``auto`` (every command's default) is ``cuda`` when torch sees a CUDA
device, else ``cpu``; ``cpu``, ``cuda``, ``cuda:N`` (N below the device count) and ``mps`` are taken
when this machine has them. Anything else is an :class:`InputError` of one line that lists what this
machine accepts (``device 'cuda': no CUDA device on this machine; accepted: auto, cpu``).

``resolve_device(name, import_torch=False)`` checks what it can without importing torch (the name's
form; ``auto`` and ``cuda`` on a machine without any GPU driver, where torch could not find one) and
returns the rest unchanged, so that input errors found later still answer without loading torch; the
command asks again, in full, when it is about to run.

``default_threads(processes)``: CPU threads per process such that threads x processes never exceeds
the cores this process may use (``OMP_NUM_THREADS`` lowers it further when set).
"""
from __future__ import annotations

import os
import re
import sys

from .errors import InputError

_FORM = re.compile(r"^(auto|cpu|mps|cuda(?::(\d+))?)$")
_GPU_NODES = ("/dev/nvidiactl", "/dev/nvidia0", "/dev/kfd", "/dev/dxg")  # NVIDIA, ROCm, WSL


def _cuda_hidden() -> bool:
    return os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1")


def _no_gpu_possible() -> bool:
    """True when torch certainly sees no GPU: Linux without any GPU driver node, or CUDA hidden."""
    if _cuda_hidden():
        return True
    return sys.platform.startswith("linux") and not any(os.path.exists(p) for p in _GPU_NODES)


def _torch_devices() -> tuple[int, bool]:
    """(CUDA device count, whether MPS is available), asked of torch."""
    import torch
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    mps = getattr(torch.backends, "mps", None)
    return n, bool(mps is not None and mps.is_available())


def _known_without_torch() -> tuple[int, bool] | None:
    """(0, False) where torch certainly finds neither CUDA nor MPS (Linux, no GPU driver or CUDA hidden)."""
    return (0, False) if sys.platform.startswith("linux") and _no_gpu_possible() else None


def available_devices(n_cuda: int | None = None, mps: bool | None = None) -> list[str]:
    """The device names this machine accepts, ``auto`` and ``cpu`` first."""
    if n_cuda is None or mps is None:
        n_cuda, mps = _known_without_torch() or _torch_devices()
    out = ["auto", "cpu"]
    if n_cuda:
        out += ["cuda", *(f"cuda:{i}" for i in range(n_cuda))]
    if mps:
        out.append("mps")
    return out


def _refuse(name: str, why: str, n_cuda: int | None = None, mps: bool | None = None) -> InputError:
    return InputError(f"device {name!r}: {why}; accepted: {', '.join(available_devices(n_cuda, mps))}")


def resolve_device(name, verbose: bool = False, import_torch: bool = True) -> str:
    """The device ``name`` stands for on this machine (see the module doc), or a one-line InputError.

    ``verbose``: say on stderr which GPU ``auto`` chose (nothing when it is the cpu)."""
    raw = "auto" if name is None else str(name)
    text = raw.strip().lower()
    m = _FORM.match(text)
    if m is None:
        raise _refuse(raw, "not a device name")
    if text == "cpu":
        return "cpu"
    if _no_gpu_possible() and (text == "auto" or text.startswith("cuda")):  # no torch needed to know
        if text == "auto":
            return "cpu"
        why = ("no CUDA device visible (CUDA_VISIBLE_DEVICES hides them)" if _cuda_hidden()
               else "no CUDA device on this machine")
        raise _refuse(raw, why)
    if text == "mps" and sys.platform != "darwin":
        raise _refuse(raw, "MPS (Apple GPU) exists on macOS only")
    if not import_torch and "torch" not in sys.modules:
        return text  # the form is right; asked again, with torch, when the command is about to run
    n_cuda, mps = _torch_devices()
    if text == "auto":
        out = "cuda" if n_cuda else "cpu"
        if verbose and out != "cpu":
            import torch
            more = f", {n_cuda} devices" if n_cuda > 1 else ""
            print(f"device auto: cuda ({torch.cuda.get_device_name(0)}{more})", file=sys.stderr)
        return out
    if text == "mps":
        if not mps:
            raise _refuse(raw, "no MPS (Apple GPU) device on this machine", n_cuda, mps)
        return "mps"
    if not n_cuda:
        raise _refuse(raw, "no CUDA device on this machine", n_cuda, mps)
    if m.group(2) is not None and int(m.group(2)) >= n_cuda:
        raise _refuse(raw, f"this machine has {n_cuda} CUDA device{'s' if n_cuda > 1 else ''} "
                      f"(cuda:0..cuda:{n_cuda - 1})", n_cuda, mps)
    return text


# -- CPU threads ------------------------------------------------------------------------------------
def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells it, else os.cpu_count())."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _positive_env(key: str) -> int | None:
    v = os.environ.get(key, "").strip()
    return int(v) if v.isdigit() and int(v) > 0 else None


def default_threads(processes: int | None = None) -> int:
    """Threads per process: max(1, cores // processes), lowered to OMP_NUM_THREADS when that is set.

    ``processes``: how many processes share the machine (``--processes``); None or below 2 takes
    accelerate's / torchrun's WORLD_SIZE of this process (1 when not launched)."""
    n = processes if processes and processes > 1 else (_positive_env("WORLD_SIZE") or 1)
    threads = max(1, available_cores() // n)
    env = _positive_env("OMP_NUM_THREADS")
    return min(threads, env) if env else threads


def check_threads(value, processes: int | None = None) -> int:
    """``--threads``: the value given (1 or more) or, for None, :func:`default_threads`."""
    if value is None:
        return default_threads(processes)
    try:
        n = int(value)
    except (TypeError, ValueError):
        n = 0
    if n < 1 or str(value).strip() != str(n):
        raise InputError(f"--threads {value}: expected a whole number of CPU threads per process, 1 or more "
                         f"(default here: {default_threads(processes)})")
    return n


def apply_threads(n: int) -> int:
    """Set torch's intra-op threads for this process; returns ``n``."""
    import torch
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n


def thread_env(n: int) -> dict[str, str]:
    """The environment that gives a child process ``n`` threads (OpenMP, MKL, OpenBLAS)."""
    return {k: str(n) for k in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")}


__all__ = ["apply_threads", "available_cores", "available_devices", "check_threads", "default_threads",
           "resolve_device", "thread_env"]
