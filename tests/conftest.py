"""Shared fixtures: real Redis and Postgres, one throwaway namespace/schema per test.

Tests read ``REDIS_URL`` / ``DATABASE_URL``. When one is unset they use the local server on its
standard port if one answers, else start an embedded one for the session (``infra.embedded``)
and export its URL, so subprocesses agree. A PostgreSQL that refuses the connection (no
``test`` database, a password asked) stops the run at once with the fix named. Every test gets
its own key namespace (Redis) or schema (Postgres), so runs never collide.

A run whose ``-m`` expression deselects every server mark (``redis``, ``postgres``, ``e2e``,
``browser``) resolves no server at all: both URLs point at a closed port, so a test that
touches a server without its mark fails instead of quietly using one. A test whose fixtures
reach Redis or Postgres without the matching mark is refused at collection.
"""

from __future__ import annotations
import __future__

import ast
import asyncio
import atexit
import builtins
import functools
import itertools
import operator
import os
import signal
import socket
import sys
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from eventstore.keys import Layout
from eventstore.redis_client import AsyncRedis, open_redis, open_redis_sync

_FUTURE_FLAGS = functools.reduce(
    operator.or_, (getattr(__future__, name).compiler_flag for name in __future__.all_feature_names)
)


def _serialise_ast_building() -> None:
    """Let one thread at a time turn source into AST objects in this process: every
    ``compile(..., ast.PyCF_ONLY_AST)``, which is what ``ast.parse`` calls.

    CPython 3.11 before 3.11.8 keeps the AST builder's recursion counter in state shared by
    every thread (gh-106905): two such calls interleaving in different threads (a garbage
    collection inside one can switch threads) fail one of them with "SystemError: AST
    constructor recursion depth mismatch". The tests run servers in threads while the main
    thread parses all the time (Hypothesis reads lambdas' source, pytest rewrites plugin
    modules imported lazily, tracebacks locate their carets), and anyio builds its lazy-import
    map with a direct ``compile`` whenever a module of it loads; CI failed on it three times,
    the last after only ``ast.parse`` was guarded. The wait is bounded, so a build never
    deadlocks on it; it only stops guarding.

    ``compile`` takes the ``__future__`` features of the frame that calls it unless told not
    to: the wrapper passes on its caller's (this module's own ``annotations`` would otherwise
    leak into every compiled string).
    """
    build, lock = builtins.compile, threading.RLock()

    def serialised(source: object, filename: object, mode: str, flags: int = 0,
                   dont_inherit: bool = False, optimize: int = -1, **kwargs: object) -> object:
        if not dont_inherit:  # what compile would have taken from its caller's frame
            flags |= sys._getframe(1).f_code.co_flags & _FUTURE_FLAGS
        held = bool(flags & ast.PyCF_ONLY_AST) and lock.acquire(timeout=10)
        try:
            return build(source, filename, mode, flags, True, optimize, **kwargs)  # type: ignore[call-overload]
        finally:
            if held:
                lock.release()

    builtins.compile = serialised  # type: ignore[assignment]


_serialise_ast_building()


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


LOCAL_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"


def _resolve_services() -> tuple[str, str]:
    redis_url = os.environ.get("REDIS_URL")
    database_url = os.environ.get("DATABASE_URL")
    if redis_url is None and _answers(6379):
        redis_url = "redis://127.0.0.1:6379/0"
    if database_url is None and _answers(5432):
        database_url = LOCAL_POSTGRES
    if redis_url is None or database_url is None:
        from infra.embedded import EmbeddedPostgres, EmbeddedRedis
        from infra.settings import Settings

        settings = Settings.from_env({}).with_(data_dir=Path(tempfile.mkdtemp(prefix="eco2-test-")))
        if redis_url is None:
            redis_server = EmbeddedRedis(settings)
            redis_url = redis_server.__enter__()
            atexit.register(redis_server.stop)
        if database_url is None:
            pg_server = EmbeddedPostgres(settings)
            database_url = pg_server.__enter__()
            atexit.register(pg_server.stop)
    os.environ["REDIS_URL"], os.environ["DATABASE_URL"] = redis_url, database_url
    return redis_url, database_url


SERVER_MARKS = ("redis", "postgres", "e2e", "browser")
# Port 1 is never served here: a stray connection is refused at once.
UNREACHABLE = ("redis://127.0.0.1:1/0", "postgresql://postgres@127.0.0.1:1/test")
# Fixtures that reach a server, by the mark a test using them must carry.
SERVER_FIXTURES = {
    "redis": {"redis_url", "redis_client", "redis_targets", "redis_cluster_url", "namespace"},
    "postgres": {"database_url"},
}
REDIS_URL, DATABASE_URL = UNREACHABLE  # set in pytest_configure, before test modules import


def _selects_servers(markexpr: str) -> bool:
    """Whether the ``-m`` expression admits a test with any server mark."""
    if not markexpr:
        return True
    from _pytest.mark.expression import Expression

    expression = Expression.compile(markexpr)
    other = ("slow", "asyncio")
    for marks in itertools.product((False, True), repeat=len(SERVER_MARKS) + len(other)):
        present = {m for m, on in zip(SERVER_MARKS + other, marks, strict=True) if on}
        if present & set(SERVER_MARKS) and expression.evaluate(_having(present)):
            return True
    return False


def _having(marks: set[str]) -> Callable[..., bool]:
    return lambda name, /, **kwargs: name in marks


def postgres_problem(database_url: str, *, given: bool) -> str | None:
    """Why the tests cannot use ``database_url`` (None when they can), with the fix."""
    import psycopg

    try:
        with psycopg.connect(database_url, connect_timeout=10):
            return None
    except psycopg.Error as exc:
        error = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if given:
        return (
            f"DATABASE_URL={database_url} is not usable by the tests ({error}). Point "
            "DATABASE_URL at a database they may create schemas in, or unset it."
        )
    return (
        f"a PostgreSQL answers on 127.0.0.1:5432, so the tests use {LOCAL_POSTGRES}, but it "
        f"is not usable ({error}). Fix one of: create the database and let the `postgres` "
        "user in from 127.0.0.1 without a password (`createdb -U postgres test`; `trust` for "
        "127.0.0.1/32 in pg_hba.conf), or set DATABASE_URL to a database you can use, or stop "
        "that server so the tests start an embedded PostgreSQL."
    )


def pytest_configure(config: pytest.Config) -> None:
    global REDIS_URL, DATABASE_URL
    if _selects_servers(config.getoption("markexpr") or ""):
        given = "DATABASE_URL" in os.environ
        REDIS_URL, DATABASE_URL = _resolve_services()
        # One clear stop before any test when the PostgreSQL in use refuses us, rather than
        # the same connection error in every database test.
        problem = postgres_problem(DATABASE_URL, given=given)
        if problem is not None:
            pytest.exit(problem, returncode=pytest.ExitCode.USAGE_ERROR)
    else:
        REDIS_URL, DATABASE_URL = UNREACHABLE
        os.environ["REDIS_URL"], os.environ["DATABASE_URL"] = UNREACHABLE


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    unmarked = [
        f"{item.nodeid} (no '{mark}' mark)"
        for item in items
        for mark, fixtures in SERVER_FIXTURES.items()
        if fixtures & set(getattr(item, "fixturenames", ())) and item.get_closest_marker(mark) is None
    ]
    if unmarked:
        raise pytest.UsageError("tests reach a server without its mark:\n" + "\n".join(unmarked))


def _print_tasks(signum: int, frame: object) -> None:
    loop = asyncio._get_running_loop()
    if loop is None:
        return
    print(f"--- the event loop's tasks, {TASKS_SHOWN_BEFORE_TIMEOUT_S:.0f} s before the timeout ---",
          file=sys.stderr)
    for task in asyncio.all_tasks(loop):
        task.print_stack(file=sys.stderr)


TASKS_SHOWN_BEFORE_TIMEOUT_S = 15.0


@pytest.fixture(autouse=True)
def _tasks_shown_before_timeout(request: pytest.FixtureRequest) -> Iterator[None]:
    """Shortly before pytest-timeout fails an asyncio test, print where each of its tasks waits.

    The timeout's own traceback only shows the event loop's ``select``: with this, a test stuck
    on an await says which await (the output is the test's captured stderr)."""
    marker = request.node.get_closest_marker("timeout")
    config = request.config
    timeout = float(
        marker.args[0] if marker else config.getoption("timeout") or config.getini("timeout") or 0
    )
    if request.node.get_closest_marker("asyncio") is None or timeout <= TASKS_SHOWN_BEFORE_TIMEOUT_S:
        yield
        return
    previous = signal.signal(signal.SIGUSR1, _print_tasks)
    main = threading.main_thread().ident
    assert main is not None
    timer = threading.Timer(
        timeout - TASKS_SHOWN_BEFORE_TIMEOUT_S, signal.pthread_kill, (main, signal.SIGUSR1)
    )
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()
        signal.signal(signal.SIGUSR1, previous)


@pytest.fixture
def redis_url() -> str:
    return REDIS_URL


@pytest.fixture
def database_url() -> str:
    return DATABASE_URL


@pytest.fixture
def namespace() -> Iterator[str]:
    """A fresh key namespace; its keys are deleted afterwards: the log's (``{ns:s0}:…``) and
    those without a hash tag (``ns:auth:…``, ``ns:rl:…``, ``ns:admin:…``)."""
    ns = f"t{uuid.uuid4().hex[:12]}"
    yield ns
    delete_keys(f"*{ns}*")


def delete_keys(pattern: str, url: str | None = None) -> None:
    """Delete every key matching ``pattern`` (a namespace's: ``{ns:*``) on ``url``, by default
    the suite's Redis."""
    client = open_redis_sync(url or REDIS_URL, socket_timeout=10)
    try:
        keys = list(client.scan_iter(match=pattern, count=1000))
        for start in range(0, len(keys), 500):
            client.delete(*keys[start : start + 500])
    finally:
        client.close()


@pytest.fixture
def layout(namespace: str) -> Layout:
    return Layout(namespace=namespace, shards=4)


def ids_on_shard(layout: Layout, shard: int, n: int) -> list[str]:
    """``n`` fresh aggregate (or job) ids whose entries go to ``shard``."""
    ids: list[str] = []
    while len(ids) < n:
        candidate = str(uuid.uuid4())
        if layout.shard_of(candidate) == shard:
            ids.append(candidate)
    return ids


@pytest.fixture
async def redis_client(redis_url: str) -> AsyncIterator[AsyncRedis]:
    client = await open_redis(redis_url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture(scope="session")
def redis_cluster_url() -> str:
    """A node of the session's local Redis Cluster (started on first use)."""
    from tests.redis_cluster import cluster_url

    return cluster_url()


# Tests of the log run on a single node and on a Redis Cluster: a module opts in with
# ``redis_url = redis_targets`` (the parametrised fixture below replaces ``redis_url``).
@pytest.fixture(params=["node", "cluster"])
def redis_targets(request: pytest.FixtureRequest) -> str:
    if request.param == "node":
        return REDIS_URL
    return str(request.getfixturevalue("redis_cluster_url"))
