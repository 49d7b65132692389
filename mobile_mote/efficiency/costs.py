"""Cost of one architecture as plain data: the record behind `mote flops`."""
from __future__ import annotations

from mobile_mote.search_spaces import get_space

from ..errors import InputError


def count_arch(space: str, arch: str, resolution: int | None = None, num_classes: int | None = None,
               reduced: bool = False, check: bool = False) -> dict:
    """MACs and params from the analytic counter; with ``check``, fvcore and ptflops beside it."""
    if resolution is not None and resolution < 1:
        raise InputError(f"resolution {resolution}: expected a positive number of pixels (e.g. 224)")
    if num_classes is not None and num_classes < 1:
        raise InputError(f"num_classes {num_classes}: expected a positive integer (e.g. 1000)")
    sp = get_space(space)
    res = resolution or sp.default_resolution(reduced)
    record = {
        "space": space,
        "arch": sp.canonical(arch),
        "resolution": res,
        "reduced": reduced,
        "macs": sp.macs(arch, res, num_classes, reduced),
        "params": sp.params(arch, num_classes, reduced),
    }
    record["macs_m"] = round(record["macs"] / 1e6, 1)
    if check:
        from mobile_mote.search_spaces.counting import fvcore_macs, ptflops_macs, torch_params
        model = sp.build(arch, num_classes=num_classes, reduced=reduced)
        record["counters"] = {
            "analytic": {"macs": record["macs"], "params": record["params"]},
            "fvcore": {"macs": fvcore_macs(model, res), "params": torch_params(model)},
            "ptflops": {"macs": ptflops_macs(model, res), "params": torch_params(model)},
        }
    arch_def = sp.arch_def(arch, reduced)
    if arch_def is not None:
        record["timm_arch_def"] = arch_def
    return record
