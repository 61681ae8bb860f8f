"""``eco2 dlq`` against a real Redis: tables, dry runs, replay and purge."""

from __future__ import annotations

import pytest
import redis
from typer.testing import CliRunner

from eventstore.keys import Layout
from eventstore.redis_client import open_redis_sync
from infra.cli import app
from schemas.envelope import Envelope

pytestmark = pytest.mark.redis


def dead_letter(client: redis.Redis, layout: Layout, shard: int, group: str, error: str) -> str:
    fields = Envelope(aggregate_id="a", type="test.item_added", data={"name": "x"}).to_fields()
    fields.update({"dlq_group": group, "dlq_stream": layout.keys(shard).events, "dlq_entry": "7-0",
                   "dlq_attempts": "5", "dlq_error": error, "dlq_at": "1700000000.0"})
    return str(client.xadd(layout.keys(shard).dlq, fields))


def test_list_show_replay_purge(namespace: str, redis_url: str) -> None:
    layout = Layout(namespace, 4)
    client = open_redis_sync(redis_url, decode_responses=True)
    env = {"REDIS_URL": redis_url, "ECO2_NAMESPACE": namespace, "COLUMNS": "200"}
    runner = CliRunner()
    try:
        first = dead_letter(client, layout, 1, "reward", "TimeoutError: grpc")
        dead_letter(client, layout, 2, "scan", "ValueError: bad image")

        listed = runner.invoke(app, ["dlq", "list"], env=env)
        assert listed.exit_code == 0, listed.output
        assert "2 dead letter(s)" in listed.output and "reward" in listed.output

        shown = runner.invoke(app, ["dlq", "show", first], env=env)
        assert "TimeoutError: grpc" in shown.output and "dlq_attempts" in shown.output

        dry = runner.invoke(app, ["dlq", "replay", "--group", "reward", "--dry-run"], env=env)
        assert "would replay 1" in dry.output
        assert client.xlen(layout.keys(1).dlq) == 1

        replayed = runner.invoke(app, ["dlq", "replay", "--group", "reward"], env=env)
        assert "replayed 1" in replayed.output
        assert client.xlen(layout.keys(1).dlq) == 0
        [(_, fields)] = client.xrange(layout.keys(1).retry("reward"))
        assert fields["type"] == "test.item_added" and "dlq_error" not in fields

        purged = runner.invoke(app, ["dlq", "purge", "--error", "bad image"], env=env)
        assert "purged 1" in purged.output
        assert client.xlen(layout.keys(2).dlq) == 0
    finally:
        client.close()
