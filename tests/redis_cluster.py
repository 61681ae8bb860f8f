"""The test suite's local Redis Cluster (3 masters + 3 replicas), started once per session.

``ECO2_TEST_CLUSTER_URL`` names an existing cluster instead. The cluster is started on first
use only, so a run that selects no cluster test never pays for it.
"""

from __future__ import annotations

import atexit
import os
import tempfile
from pathlib import Path

from infra.embedded.redis_cluster import EmbeddedRedisCluster

_started: list[EmbeddedRedisCluster] = []


def cluster() -> EmbeddedRedisCluster | None:
    """The cluster this session started (None when ``ECO2_TEST_CLUSTER_URL`` names one)."""
    cluster_url()
    return _started[0] if _started else None


def cluster_url() -> str:
    """A URL of one node of the session's Redis Cluster, starting it on first call."""
    given = os.environ.get("ECO2_TEST_CLUSTER_URL")
    if given:
        return given
    if not _started:
        from infra.settings import Settings

        data = Path(tempfile.mkdtemp(prefix="eco2-cluster-"))
        server = EmbeddedRedisCluster(Settings.from_env({}).with_(data_dir=data))
        server.start()
        atexit.register(server.stop)
        _started.append(server)
    return _started[0].url
