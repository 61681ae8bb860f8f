"""A local Redis Cluster for development and tests: 3 masters + 3 replicas, one binary.

``with EmbeddedRedisCluster(settings) as url`` starts six ``redis-server`` processes (the same
binary ``EmbeddedRedis`` uses, AOF on, data under ``<data_dir>/redis-cluster/<port>/``) on free
ports, joins them with ``CLUSTER MEET``, gives each master a third of the 16384 slots, attaches a
replica to each, waits until every node reports ``cluster_state:ok`` and yields the first
master's URL — any node's URL works, clients discover the rest. Leaving the block stops them.
The cluster is formed with plain cluster commands, so no ``redis-cli`` is needed.
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import time
from types import TracebackType

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from infra.embedded._process import EmbeddedServiceError, stop_process, tail
from infra.embedded.redis_server import EmbeddedRedis
from infra.settings import Settings

SLOTS = 16384
BUS_OFFSET = 10000  # Redis Cluster's node-to-node bus listens on port + 10000
PORT_ATTEMPTS = 5


class PortTaken(EmbeddedServiceError):
    """A node could not bind its port or bus port: another process took it after the probe."""


def _bindable(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def cluster_ports(count: int, host: str = "127.0.0.1", start: int = 30000) -> list[int]:
    """``count`` ports whose bus ports (port + 10000) are free as well."""
    ports: list[int] = []
    port = start
    while len(ports) < count:
        if port + BUS_OFFSET >= 65536:
            raise EmbeddedServiceError("no free ports for a local Redis Cluster")
        if _bindable(host, port) and _bindable(host, port + BUS_OFFSET):
            ports.append(port)
        port += 1
    return ports


class EmbeddedRedisCluster:
    """``masters`` masters with ``replicas`` replicas each, started fresh and stopped on exit."""

    start_timeout_s = 60.0

    def __init__(
        self, settings: Settings, *, masters: int = 3, replicas: int = 1, first_port: int = 30000
    ) -> None:
        self.settings = settings
        self.home = (settings.data_dir / "redis-cluster").resolve()
        self.masters = masters
        self.replicas = replicas
        self.first_port = first_port
        self.host = "127.0.0.1"
        self.ports: list[int] = []
        self._children: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.ports[0]}/0"

    @property
    def master_ports(self) -> list[int]:
        return self.ports[: self.masters]

    def __enter__(self) -> str:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self.url

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def client(self, port: int) -> redis.Redis:
        return redis.Redis(
            host=self.host, port=port, decode_responses=True, socket_connect_timeout=2,
            socket_timeout=10,
        )

    def start(self) -> None:
        """Start every node and form the cluster (a previous cluster's data is discarded).

        Free ports are probed before the nodes bind them, so another process of the machine can
        take one in between (two test runs starting clusters at once): the nodes are then started
        again on ports further on, a few times."""
        first = self.first_port
        for _ in range(PORT_ATTEMPTS):
            shutil.rmtree(self.home, ignore_errors=True)
            self.ports = cluster_ports(self.masters * (1 + self.replicas), self.host, first)
            self._children = [self._spawn(port) for port in self.ports]
            try:
                for port, child in zip(self.ports, self._children, strict=True):
                    self._wait(lambda p=port, c=child: self._answers(p, c), f"node {port} to answer")
            except PortTaken:
                self.stop()
                first = max(self.ports) + 1
                continue
            self._form()
            return
        raise EmbeddedServiceError(f"ports kept being taken while {PORT_ATTEMPTS} clusters started")

    def _spawn(self, port: int) -> subprocess.Popen[bytes]:
        node = EmbeddedRedis(self.settings.with_(data_dir=self.home / str(port)))
        node.prepare()
        node.home.mkdir(parents=True, exist_ok=True)
        conf = node.config(port) + "\n".join(
            [
                "cluster-enabled yes",
                "cluster-config-file nodes.conf",
                "cluster-node-timeout 5000",
                # A dev cluster on one machine: let a lone master serve its slots.
                "cluster-require-full-coverage no",
                "",
            ]
        )
        (node.home / "redis.conf").write_text(conf)
        with (node.home / "server.log").open("ab") as log:
            return subprocess.Popen(
                [str(node.binary), str(node.home / "redis.conf")],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=node.home,
                start_new_session=True,
            )

    def _answers(self, port: int, child: subprocess.Popen[bytes]) -> bool:
        """True when ``child`` answers on ``port`` (not another process that bound it first)."""
        # Short timeouts, no retries: a port taken by something that never answers must not
        # hold the wait while the node that failed to bind it has already exited.
        client = redis.Redis(
            host=self.host, port=port, socket_connect_timeout=1, socket_timeout=1,
            retry=Retry(NoBackoff(), 0),
        )
        try:
            return int(client.info("server")["process_id"]) == child.pid
        except redis.RedisError:
            return False
        finally:
            client.close()

    def _form(self) -> None:
        first = self.ports[0]
        ids: dict[int, str] = {}
        for port in self.ports:
            client = self.client(port)
            try:
                ids[port] = str(client.execute_command("CLUSTER MYID"))
                if port != first:
                    client.execute_command("CLUSTER MEET", self.host, first)
            finally:
                client.close()
        per_master = SLOTS // self.masters
        for index, port in enumerate(self.master_ports):
            low = index * per_master
            high = SLOTS - 1 if index == self.masters - 1 else low + per_master - 1
            client = self.client(port)
            try:
                client.execute_command("CLUSTER ADDSLOTS", *range(low, high + 1))
            finally:
                client.close()
        self._wait(self._everyone_met, "the nodes to meet")
        for index, port in enumerate(self.ports[self.masters :]):
            master = self.master_ports[index % self.masters]
            client = self.client(port)
            try:
                client.execute_command("CLUSTER REPLICATE", ids[master])
            finally:
                client.close()
        self._wait(self._ok, "cluster_state:ok on every node")

    def _everyone_met(self) -> bool:
        for port in self.ports:
            client = self.client(port)
            try:
                nodes = client.execute_command("CLUSTER NODES")  # parsed: {"host:port": {...}}
                if len(nodes) < len(self.ports) or any(
                    "handshake" in n["flags"] or "noaddr" in n["flags"] for n in nodes.values()
                ):
                    return False
            finally:
                client.close()
        return True

    def _ok(self) -> bool:
        for port in self.ports:
            client = self.client(port)
            try:
                info = client.execute_command("CLUSTER INFO")  # parsed into a dict
                if info.get("cluster_state") != "ok":
                    return False
                slots = client.execute_command("CLUSTER SLOTS")
                if sum(int(r[1]) - int(r[0]) + 1 for r in slots) != SLOTS:
                    return False
                if not all(len(r) >= 3 + self.replicas for r in slots):
                    return False  # a replica is not attached yet
            except redis.RedisError:
                return False
            finally:
                client.close()
        return True

    def _wait(self, ready: object, what: str) -> None:
        deadline = time.monotonic() + self.start_timeout_s
        assert callable(ready)
        while not ready():
            for port, child in zip(self.ports, self._children, strict=False):
                if child.poll() is not None:
                    log = tail(self.home / str(port) / "redis" / "server.log")
                    failure = PortTaken if "Address already in use" in log else EmbeddedServiceError
                    raise failure(f"cluster node {port} exited with {child.returncode}:\n{log}")
            if time.monotonic() > deadline:
                raise EmbeddedServiceError(f"timed out waiting for {what}")
            time.sleep(0.1)

    def stop(self) -> None:
        """Stop every node (idempotent)."""
        children, self._children = self._children, []
        for child in children:
            if child.poll() is None:
                stop_process(child.pid, signal.SIGTERM, child=child, timeout_s=15.0)

    def move_slot(self, slot: int, target_port: int, batch: int = 50) -> None:
        """Move ``slot`` (with its keys) to the master on ``target_port``, live, the way
        ``redis-cli --cluster reshard`` does: IMPORTING/MIGRATING, MIGRATE in batches, then
        SETSLOT NODE on every master. Clients meanwhile get ASK/TRYAGAIN and follow."""
        with self.client(self.ports[0]) as any_node:
            _, source_port = slot_owner(any_node, slot)
        if source_port == target_port:
            return
        with self.client(source_port) as source, self.client(target_port) as target:
            source_id = str(source.execute_command("CLUSTER MYID"))
            target_id = str(target.execute_command("CLUSTER MYID"))
            target.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", source_id)
            source.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", target_id)
            while keys := source.execute_command("CLUSTER GETKEYSINSLOT", slot, batch):
                source.execute_command(
                    "MIGRATE", self.host, target_port, "", 0, 10_000, "REPLACE", "KEYS", *keys
                )
            target.execute_command("CLUSTER SETSLOT", slot, "NODE", target_id)
            source.execute_command("CLUSTER SETSLOT", slot, "NODE", target_id)
        for port in self.master_ports:
            if port not in (source_port, target_port):
                with self.client(port) as other:
                    other.execute_command("CLUSTER SETSLOT", slot, "NODE", target_id)

    def slot_owner_port(self, slot: int) -> tuple[str, int]:
        """(host, port) of the master serving ``slot`` now."""
        with self.client(self.ports[0]) as any_node:
            return slot_owner(any_node, slot)

    def kill_node(self, port: int) -> None:
        """SIGKILL one node (failover tests)."""
        index = self.ports.index(port)
        child = self._children[index]
        child.kill()
        child.wait()


def slot_owner(client: redis.Redis, slot: int) -> tuple[str, int]:
    """(host, port) of the master serving ``slot``, asked of any node."""
    for row in client.execute_command("CLUSTER SLOTS"):
        if int(row[0]) <= slot <= int(row[1]):
            return str(row[2][0]), int(row[2][1])
    raise LookupError(f"slot {slot} is not served")
