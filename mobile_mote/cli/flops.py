"""`mote flops` and `mote spaces`."""
from __future__ import annotations

import json

from mobile_mote.search_spaces import get_space, list_spaces


def _flops(args) -> int:
    from ..efficiency.costs import count_arch
    rec = count_arch(args.space, args.arch, args.resolution, args.num_classes, args.reduced, args.check)
    print(json.dumps(rec, indent=None if args.compact else 2))
    return 0


def _spaces(args) -> int:
    for name in list_spaces():
        sp = get_space(name)
        size = sp.size()
        print(f"{name}\tsize={size if size is not None else '?'}\tdefault={sp.default_arch()}")
    return 0


def register(sub) -> None:
    from . import MACS_NOTE
    f = sub.add_parser("flops", help="MACs ('FLOPs') and params of one architecture", description=MACS_NOTE)
    f.add_argument("--space", required=True, help=f"one of {', '.join(list_spaces())}")
    f.add_argument("--arch", required=True, help="architecture string or preset name (e.g. mobilenetv2_100)")
    f.add_argument("--resolution", type=int, default=None, help="input side in pixels (default: the space's)")
    f.add_argument("--num-classes", type=int, default=None)
    f.add_argument("--reduced", action="store_true", help="count the reduced (proxy) architecture")
    f.add_argument("--check", action="store_true", help="also count with fvcore and ptflops (builds the model)")
    f.add_argument("--compact", action="store_true", help="one-line JSON")
    f.set_defaults(func=_flops)

    s = sub.add_parser("spaces", help="list the search spaces")
    s.set_defaults(func=_spaces)
