"""A space's component table: every zero-cost proxy of every distinct network, with MACs and params.

Proxies run once per *network* (``space.network_key``), at their authors' batch, with one fixed seed,
through ``estimate_many`` (passes shared where the maths allows). Each finished network is appended
to a JSONL file as it completes, so a killed run resumes where it stopped; ``write_table`` expands the
records to one CSV row per architecture key (the keys of one network share its values), with columns
named as ``mote fuse`` reads them: ``arch``, then one column per component, higher = better (a flagged
proxy, e.g. NaN jacov of a network whose output ignores its input, is ``-inf``: it ranks last).
"""
from __future__ import annotations

import gzip
import io
import json
import math
import sys
import time
from pathlib import Path
from typing import Mapping

import numpy as np

#: Raw terms kept beside the scores (VKDNW_single's two keys).
EXTRA_TERMS = ("vkdnw_dim", "vkdnw_entropy")


def network_order(space, seed: int = 0, first_under: int | None = None) -> list[str]:
    """The distinct networks of an enumerable space in a seeded random order (a prefix is a random
    sample); with ``first_under``, the networks of at most that many MACs come first (each part seeded)."""
    nets = sorted({space.network_key(a) for a in space.enumerate()})
    rng = np.random.default_rng(seed)
    order = [nets[i] for i in rng.permutation(len(nets))]
    if first_under is None:
        return order
    return [n for n in order if space.macs(n) <= first_under] + [n for n in order if space.macs(n) > first_under]


def shard_path(path: str | Path, shard: tuple[int, int] | None) -> Path:
    """Shard i of n writes ``<stem>.shard<i>of<n>.jsonl`` beside ``path``."""
    p = Path(path)
    if not shard or shard[1] == 1:
        return p
    return p.with_name(f"{p.stem}.shard{shard[0]}of{shard[1]}{p.suffix}")


def read_records(path: str | Path) -> dict[str, dict]:
    """{network: record} from a components JSONL file, its gzipped archive ``<file>.gz`` and its shards (a torn last line from a kill is
    skipped; several records of one network are merged), with the values of ``import_records``
    (``<stem>.shard_imported.jsonl``) added to the networks the run scored."""
    out: dict[str, dict] = {}
    p = Path(path)
    imported = p.with_name(f"{p.stem}.shard_imported{p.suffix}")
    # the run's own records first; imported values then fill in the networks the run scored
    archived = p.with_name(p.name + ".gz")  # a committed, gzipped part (a large records file is kept so)
    files = [archived, p] + sorted(f for f in p.parent.glob(f"{p.stem}.shard*{p.suffix}") if f != imported)
    for f in files + [imported]:
        if not f.exists():
            continue
        text = gzip.decompress(f.read_bytes()).decode() if f.suffix == ".gz" else f.read_text()
        for line in text.splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            prev = out.get(rec["network"])
            if prev is None and f == imported:
                continue
            if prev is None:
                out[rec["network"]] = rec
            else:  # several records of one network (a resumed run, an imported proxy): their union
                for field in ("components", "status", "seconds"):
                    prev[field] = {**prev[field], **rec[field]}
    return out


def import_records(space, path, name: str, seed: int = 0) -> list[dict]:
    """Component records from an estimator's per-key records (``tools/correlation.py``'s JSONL) whose
    key is its network's key and whose seed and configuration are this estimator's defaults: the values
    a component run would compute (same code, same seed, same network), so nothing is scored twice."""
    from ..estimators import get_estimator
    want = get_estimator(name).config_hash()
    out = []
    for line in Path(path).read_text().splitlines():
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            continue
        if (r.get("arch") != space.network_key(r.get("arch", "")) or r.get("seed") != seed
                or r.get("config_hash") != want or r.get("status") not in ("ok", "flagged")):
            continue
        value = r["score"] if r["status"] == "ok" else -math.inf
        out.append({"network": r["arch"], "seed": seed, "components": {name: value},
                    "status": {name: r["status"]}, "seconds": {name: round(r.get("seconds") or 0.0, 4)},
                    "imported_from": str(path)})
    return out


def _component(rec) -> float | None:
    if rec.status == "ok":
        return rec.score
    if rec.status == "flagged":
        return -math.inf
    return None


def score_network(space, network: str, names, data, seed: int = 0, device="cpu") -> dict:
    """One JSONL record: every proxy in ``names`` of one network."""
    from ..estimators.zero_cost import estimate_many
    t0 = time.perf_counter()
    recs = estimate_many(names, space, network, data, seed=seed, device=device)
    out = {"network": network, "seed": seed, "components": {}, "status": {}, "seconds": {}}
    for name, rec in recs.items():
        out["components"][name] = _component(rec)
        out["status"][name] = rec.status if rec.status == "ok" else f"{rec.status}: {rec.error}"
        out["seconds"][name] = round(rec.seconds, 4)
        for k in EXTRA_TERMS:
            if k in (rec.terms or {}):
                out["components"][k] = rec.terms[k]
    out["total_seconds"] = round(time.perf_counter() - t0, 4)
    return out


def run_components(space, names, data, out_jsonl: str | Path, limit: int | None = None, seed: int = 0,
                   order_seed: int = 0, device="cpu", progress: bool = True, missing_only: bool = True,
                   first_under: int | None = None, shard: tuple[int, int] | None = None,
                   first: dict[str, dict] | None = None, only_recorded: bool = False) -> int:
    """Score the networks of ``space`` in seeded order, appending to ``out_jsonl``; returns how many were added.

    A network already recorded (in the file or any shard of it) is skipped when it has every proxy in
    ``names``; otherwise the missing proxies are scored and the record is appended again, merged.
    ``shard=(i, n)``: this process takes every n-th network of the order from the i-th, writing its own
    file (``shard_path``), so n processes share one run without sharing a file.
    ``first``: records of networks to take first (``table_records``: a component table's values), whose
    missing proxies are scored and which are then written with the values they came with.
    ``only_recorded``: score only networks the records already hold (a new proxy over an existing pool).
    """
    from tqdm import tqdm
    done = read_records(out_jsonl)
    todo = network_order(space, order_seed, first_under)
    if first:
        for net, rec in first.items():
            done.setdefault(net, rec)  # what this run scored itself wins
        todo = list(first) + [n for n in todo if n not in first]
    if only_recorded:
        todo = [n for n in todo if n in done]
    if limit is not None:
        todo = todo[:limit]
    if shard:
        todo = todo[shard[0]::shard[1]]
    added = 0
    target = shard_path(out_jsonl, shard)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "a") as fh, tqdm(todo, desc=f"components of {space.name}", disable=not progress,
                                          unit="net") as bar:
        for net in bar:
            prev = done.get(net)
            need = [n for n in names if not prev or n not in prev["components"]] if missing_only else list(names)
            if not need:
                continue
            rec = score_network(space, net, need, data, seed, device)
            if prev:
                for field in ("components", "status", "seconds"):
                    rec[field] = {**prev[field], **rec[field]}
                if prev.get("from_table"):
                    rec["from_table"] = prev["from_table"]
                rec["total_seconds"] = round(prev.get("total_seconds", 0) + rec["total_seconds"], 4)
            fh.write(json.dumps(rec, allow_nan=True) + "\n")
            fh.flush()
            done[net] = rec
            added += 1
            bar.set_postfix(s=f"{rec['total_seconds']:.1f}")
    return added


def table_records(space, path: str | Path) -> dict[str, dict]:
    """{network: record} of a component table's rows (``fusion.read_component_table``), for ``first``:
    its values as they are, marked with the table they came from (their seconds unknown)."""
    from ..fusion import read_component_table
    archs, cols = read_component_table(path)
    out = {}
    for i, arch in enumerate(archs):
        net = space.network_key(arch)
        comps = {c: v[i] for c, v in cols.items() if c not in ("arch", "macs", "params") and v[i] is not None}
        out[net] = {"network": net, "seed": 0, "components": comps, "status": {c: "ok" for c in comps},
                    "seconds": {}, "total_seconds": 0.0, "from_table": Path(path).name}
    return out


def _cell(v) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return repr(float(v)) if not isinstance(v, int) else str(v)


def table_rows(space, records: dict[str, dict], components=None) -> tuple[list[str], list[list[str]]]:
    """(header, rows): one row per architecture key of every network with a record."""
    comps = list(components) if components else sorted({c for r in records.values() for c in r["components"]})
    header = ["arch", "macs", "params"] + comps
    rows = []
    for arch in space.enumerate():
        rec = records.get(space.network_key(arch))
        if rec is None:
            continue
        vals = [rec["components"].get(c) for c in comps]
        rows.append([arch, str(space.macs(arch)), str(space.params(arch))] + [_cell(v) for v in vals])
    return header, rows


def write_table(space, records: dict[str, dict], out: str | Path, components=None) -> int:
    """Write the table (gzip-compressed when ``out`` ends in .gz, deterministic bytes); returns the row count."""
    from ..atomic import write_bytes
    header, rows = table_rows(space, records, components)
    text = "\n".join(",".join(r) for r in [header] + rows) + "\n"
    data = text.encode()
    if str(out).endswith(".gz"):
        buf = io.BytesIO()
        with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, filename="") as gz:
            gz.write(data)
        data = buf.getvalue()
    write_bytes(Path(out), data)
    return len(rows)


def table_provenance(space, records: Mapping[str, dict], rows: int, command: str | None = None) -> dict:
    """What a written table holds and how it was made (written beside it as <table>.json)."""
    from ..estimators import estimator_class
    from ..provenance import provenance
    names = sorted({n for r in records.values() for n in r["status"]})
    total = len({space.network_key(a) for a in space.enumerate()})
    batches = {}
    for n in names:
        cfg = estimator_class(n).Config()
        batches[n] = {k: getattr(cfg, k) for k in ("batch_size", "num_batches", "input") if hasattr(cfg, k)}
    seconds = {n: float(np.median([r["seconds"][n] for r in records.values() if n in r["seconds"]])) for n in names}
    return {"provenance": provenance(command.split() if command else None), "space": space.name,
            "networks_scored": len(records), "networks_total": total, "rows": rows,
            "proxies": names, "proxy_batches": batches, "median_seconds_per_network": seconds,
            "seed": sorted({r["seed"] for r in records.values()}),
            "keys": "one row per architecture key; the keys of one network (space.network_key) share its "
                    "values, computed once on the network key with that key's seed",
            "columns": "arch, macs, params (analytic), one column per proxy (the estimator's score, higher is "
                       "better; -inf: flagged non-finite, ranks last; empty: failed), vkdnw_dim and vkdnw_entropy "
                       "(VKDNW_single's two keys)",
            "order": "networks in a seeded permutation (seed 0), those of at most 60 M MACs first; a partial "
                     "table is a random sample within that order"}


def rule_scores_rows(space, records: Mapping[str, dict], rule, max_macs: float | None = None) -> list[str]:
    """``arch,score,seconds`` lines (the search-table tool's precomputed scores): the fused score of
    ``rule`` over every key with a record (one component name alone: that component), and the seconds
    its components took on the key's network (0 for the analytic macs/params)."""
    from ..fusion import log_rank_sum
    from .rules import macro_columns
    # the population the ranks are taken over: every key with a record (of at most max_macs)
    keys, cols = macro_columns(space, records, [k for k in space.enumerate()
                                                if max_macs is None or space.macs(k) <= max_macs])
    comps = [c for c in rule if c in cols]
    scores = log_rank_sum({c: cols[c] for c in comps}) if len(comps) > 1 else cols[comps[0]]
    lines = ["arch,score,seconds"]
    for k, v in zip(keys, scores):
        rec = records[space.network_key(k)]
        secs = sum(rec["seconds"].get(c, 0.0) for c in comps)
        lines.append(f"{k},{'' if v is None else repr(float(v))},{secs:.4f}")
    return lines


def run(args, command: str) -> int:
    """The tool's job on its arguments: imports (``--import``), scoring (resumable, sharded), the table with
    its provenance JSON (recording ``command``), and a rule's scores; 2 after a one-line error."""
    from mobile_mote.search_spaces import get_space

    from ..atomic import write_text
    from ..data.proxy_data import load_proxy_data
    from ..errors import InputError
    from ..fusion import DEFAULT_RULE
    from ..units import parse_count
    try:
        space = get_space(args.space)
        data = load_proxy_data(args.proxy_data)
        names = [n.strip() for n in args.proxies.split(",") if n.strip()]
        first_under = int(parse_count(args.first_under, "--first-under")) if args.first_under else None
        shard = tuple(int(v) for v in args.shard.split("/")) if args.shard else None
        if shard and not (len(shard) == 2 and 0 <= shard[0] < shard[1]):
            raise ValueError(f"--shard {args.shard!r}; accepted: i/n with 0 <= i < n")
    except (InputError, ValueError) as e:
        print(f"component_table: error: {e}", file=sys.stderr)
        return 2
    if args.imports:
        target = Path(args.records).with_name(Path(args.records).stem + ".shard_imported.jsonl")
        rows = [rec for spec in args.imports for rec in import_records(space, spec.split("=", 1)[1], spec.split("=", 1)[0])]
        write_text(target, "".join(json.dumps(r) + "\n" for r in rows))
        print(f"{len(rows)} imported component values -> {target}")
    if args.limit != 0 and names:
        first = table_records(space, args.first_from) if args.first_from else None
        run_components(space, names, data, args.records, limit=args.limit, seed=args.seed, device=args.device,
                       first_under=first_under, shard=shard, first=first, only_recorded=args.only_recorded)
    if args.out:
        records = read_records(args.records)
        n = write_table(space, records, args.out)
        info = table_provenance(space, records, n, command)
        write_text(Path(str(args.out).removesuffix(".gz").removesuffix(".csv") + ".json"), json.dumps(info, indent=1))
        print(f"{n} rows ({len(records)} of {info['networks_total']} networks) -> {args.out}")
    if args.scores_out:
        rule = [c.strip() for c in args.rule.split(",")] if args.rule else list(DEFAULT_RULE)
        cap = parse_count(args.scores_max_macs, "--scores-max-macs") if args.scores_max_macs else None
        lines = rule_scores_rows(space, read_records(args.records), rule, cap)
        write_text(Path(args.scores_out), "\n".join(lines) + "\n")
        print(f"{len(lines) - 1} scores of {','.join(rule)} -> {args.scores_out}")
    return 0

