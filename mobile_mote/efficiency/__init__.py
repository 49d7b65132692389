"""Efficiency: MACs, params and latency of an architecture, and the budgets (constraints) on them.

One factory, ``make_costs``, joins the analytic counters with one latency source: a per-architecture
table (finite spaces, e.g. NB201's latency_ms.csv), a per-block LUT (block spaces, `mote latency-lut`)
or a measurement on this machine. Every source is checked against the space when it is built.
"""
from __future__ import annotations

from ..errors import InputError
from .constraints import Constraint, Costs, check_achievable, parse_constraints


def make_costs(space, latency_table=None, latency_device=None, latency_lut=None, index_for=None,
               measure_device=None) -> Costs:
    """``Costs`` of ``space`` with at most one latency source; InputError for a bad or foreign one.

    ``index_for(table)`` translates a table keyed by a benchmark's index (``tables.LatencyTable``)."""
    given = [n for n, v in (("--latency-table", latency_table), ("--latency-lut", latency_lut),
                            ("measurement", measure_device)) if v]
    if len(given) > 1:
        raise InputError("give one latency source: --latency-table with --latency-device, or --latency-lut")
    latency = None
    if latency_table:
        from .tables import LatencyTable
        latency = LatencyTable(latency_table, latency_device or "", space, index_for)
    elif latency_device:
        raise InputError("--latency-device names a column of --latency-table; give both")
    elif latency_lut:
        from .latency import LutLatency
        latency = LutLatency(latency_lut, space)
    elif measure_device:
        from .latency import MeasuredLatency
        latency = MeasuredLatency(space, measure_device)
    return Costs(space, latency)


__all__ = ["Constraint", "Costs", "check_achievable", "make_costs", "parse_constraints"]
