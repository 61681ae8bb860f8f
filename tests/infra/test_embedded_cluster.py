"""The embedded Redis Cluster (tests, benches and ``eco2 cluster``) on a shared machine."""

from __future__ import annotations

import socket

import pytest
import redis

from infra.embedded import redis_cluster
from infra.embedded.redis_cluster import EmbeddedRedisCluster
from infra.settings import Settings

pytestmark = pytest.mark.e2e


def test_a_port_taken_after_the_probe_moves_the_cluster_on(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two runs starting clusters at once can both find a port free; the one whose node then
    fails to bind it starts its nodes again further on instead of failing."""
    probe = redis_cluster.cluster_ports
    taken: list[socket.socket] = []

    def probe_then_lose_the_first(count: int, host: str = "127.0.0.1", start: int = 30000) -> list[int]:
        ports = probe(count, host, start)
        if not taken:  # another process binds it between the probe and the node
            other = socket.socket()
            other.bind((host, ports[0]))
            other.listen()
            taken.append(other)
        return ports

    monkeypatch.setattr(redis_cluster, "cluster_ports", probe_then_lose_the_first)
    try:
        with EmbeddedRedisCluster(settings, replicas=0) as url:
            client = redis.RedisCluster.from_url(url, decode_responses=True)
            try:
                for key in ("a", "b", "c"):  # slots on each of the three masters
                    client.set(key, key.upper())
                assert [client.get(key) for key in ("a", "b", "c")] == ["A", "B", "C"]
            finally:
                client.close()
            assert taken[0].getsockname()[1] not in redis_cluster_ports(url)
    finally:
        for sock in taken:
            sock.close()


def redis_cluster_ports(url: str) -> set[int]:
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        return {int(address.rsplit(":", 1)[1]) for address in client.execute_command("CLUSTER NODES")}
    finally:
        client.close()
