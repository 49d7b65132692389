"""`mote fuse`: the population-rank fusion of a table of components (``mobile_mote.fusion``)."""
from __future__ import annotations

import sys


def _fuse(args) -> int:
    from pathlib import Path

    from ..errors import InputError
    from ..fusion import fuse_table
    out = Path(args.out)
    if out.exists() and Path(args.table).exists() and out.resolve() == Path(args.table).resolve():
        raise InputError(f"--out {args.out} is the --table itself; choose another --out (the table is kept)")
    if out.is_dir():
        raise InputError(f"--out {args.out} is a folder; expected a CSV file to write")
    if out.exists() and not args.force:
        raise InputError(f"{args.out} exists; pass --force to overwrite it, or choose another --out")
    if not out.parent.is_dir():
        raise InputError(f"--out {args.out}: the folder {out.parent} does not exist; create it, or choose "
                         "another --out")
    comps = [c.strip() for c in args.components.split(",") if c.strip()] if args.components else None
    info = fuse_table(args.table, args.out, comps)
    print(f"fused {info['fused']} of {info['networks']} networks from {', '.join(info['components'])} -> {args.out}",
          file=sys.stderr)
    return 0


def register(sub) -> None:
    f = sub.add_parser("fuse", help="fuse per-network components into one score (sum of log-ranks)",
                       description="Reads a CSV with an 'arch' column and one column per component, each a score "
                                   "where higher is better; writes arch,score with score = sum over components of "
                                   "log(rank / N) in this table's population (empty where a component is missing).")
    f.add_argument("--table", required=True, help="CSV: arch plus one column per component")
    f.add_argument("--out", required=True, help="CSV to write: arch,score")
    f.add_argument("--components", default=None, help="comma-separated columns to fuse (default: the components of the rule chosen for every "
                   "space that the table has: mobile_mote.fusion.DEFAULT_RULE)")
    f.add_argument("--force", action="store_true", help="overwrite --out")
    f.set_defaults(func=_fuse)
