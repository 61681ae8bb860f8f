"""The process limits a role that holds many sockets raises at start.

A gateway holding 10,000 SSE streams needs 10,000 file descriptors and more; distributions
ship a soft ``RLIMIT_NOFILE`` of 1,024 under a far larger hard limit, which an unprivileged
process may raise itself to. The hard limit stays the operator's (systemd ``LimitNOFILE``,
a container's ``ulimit``).
"""

from __future__ import annotations

import resource


def raise_open_files_limit() -> int:
    """Raise this process's soft ``RLIMIT_NOFILE`` to its hard limit; returns the soft limit
    in force afterwards (unchanged if the system refused)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard
    if hard == resource.RLIM_INFINITY:  # an unlimited hard limit: ask for a large finite one
        target = max(soft, 1 << 20)
    if soft >= target and soft != resource.RLIM_INFINITY:
        return soft
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return soft
    return target
