"""Projections of the log into Postgres read models (ARCHITECTURE §3).

- ``projection``, ``changes``: a projection is a name, a code version, its tables and one
  handler per event class; handlers record row changes that are folded per batch;
- ``scans``, ``users``, ``characters``, ``stats`` (and ``chat``): the projections; ``builtin``
  lists them by name;
- ``reading``, ``fold``, ``commit``: read a shard log batch, fold it, apply it and advance the
  checkpoint in one guarded transaction;
- ``leases``, ``worker``, ``runner``: advisory-lock leases, the per-(projection, shard) loop and
  the process-level service (``ProjectorService``); ``metrics``: lag and position gauges;
- ``replay``, ``rebuild``, ``verify``, ``status``: analysts' tools, exposed by
  ``infra.cli_projections`` (``eco2 projections …``);
- ``snapshot``, ``live_view``: the SSE snapshot projector (Redis side).
"""
