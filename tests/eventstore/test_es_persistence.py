"""What ``eventstore.es.persistence`` adds beyond the library's contracts: our keys, our envelope,
one shard per factory, atomic multi-aggregate saves, snapshots kept out of the log.

Uses the ``namespace`` fixture of ``tests/conftest.py`` (fresh namespace, keys deleted after).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Any
from uuid import UUID, uuid4

import pytest
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate
from eventsourcing.persistence import (
    InfrastructureFactory,
    IntegrityError,
    OperationalError,
    StoredEvent,
    Tracking,
)
from eventsourcing.utils import Environment

from eventstore.es.codec import SV_BASE64, SV_JSON, decode_state, encode_state, event_id
from eventstore.es.persistence import RedisFactory
from eventstore.es.recorders import RedisApplicationRecorder
from eventstore.es.store import load_append_script
from eventstore.es.tracking import RedisProcessRecorder
from eventstore.keys import Layout, ShardKeys, shard_of
from eventstore.redis_client import open_redis_sync
from eventstore.scripts import append_args
from schemas.envelope import Envelope

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
MODULE = "eventstore.es.persistence"


@pytest.fixture
def raw(redis_url: str) -> Iterator[Any]:
    client = open_redis_sync(redis_url, socket_timeout=10)
    yield client
    client.close()


class Factories(list[RedisFactory]):
    """The factories a test made, all on ``url`` (a single node or a cluster)."""

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url


@pytest.fixture
def factories(redis_url: str) -> Iterator[list[RedisFactory]]:
    made = Factories(redis_url)
    yield made
    for factory in made:
        factory.close()


def make_factory(
    made: list[RedisFactory], namespace: str, name: str = "", **env: str
) -> RedisFactory:
    url = made.url if isinstance(made, Factories) else REDIS_URL
    settings = {"PERSISTENCE_MODULE": MODULE, "REDIS_URL": url, "ECO2_NAMESPACE": namespace}
    settings.update(env)
    factory = RedisFactory(Environment(name, settings))
    made.append(factory)
    return factory


def application_recorder(factory: RedisFactory) -> RedisApplicationRecorder:
    recorder = factory.application_recorder()
    assert isinstance(recorder, RedisApplicationRecorder)
    return recorder


# --- codec (no Redis) -------------------------------------------------------------------------


def test_json_object_states_are_stored_verbatim_others_in_base64() -> None:
    assert encode_state(b'{"a":"\xec\x9e\xac"}') == (SV_JSON, b'{"a":"\xec\x9e\xac"}')
    for state in (b"state1", b"\xff\x00", b"[1,2]", b'"text"', b""):
        sv, data = encode_state(state)
        assert sv == SV_BASE64
        assert decode_state(sv.encode(), data) == state


def test_event_ids_are_deterministic_per_originator_and_version() -> None:
    originator = uuid4()
    assert event_id(originator, 3) == event_id(str(originator), 3)
    assert event_id(originator, 3) != event_id(originator, 4)
    assert UUID(event_id(originator, 0)).version == 5


# --- layout and envelope ----------------------------------------------------------------------


@pytest.mark.redis
def test_entries_are_envelopes_in_the_shard_log_and_the_aggregate_stream(
    namespace: str, factories: list[RedisFactory], raw: Any
) -> None:
    recorder = application_recorder(make_factory(factories, namespace, ECO2_ES_SHARD="2"))
    keys = ShardKeys(namespace, 2)
    originator = uuid4()
    stored = StoredEvent(originator, 0, "app.domain:Thing.Created", b'{"name":"\xed\x8c\x8c"}')

    assert recorder.insert_events([stored]) == [1]

    [(log_id, log_fields)] = raw.xrange(keys.events)
    [(agg_id, agg_fields)] = raw.xrange(keys.aggregate(str(originator)))
    assert (log_id, agg_id) == (b"1-0", b"0-1")
    envelope = Envelope.from_fields({k.decode(): v.decode() for k, v in agg_fields.items()})
    assert envelope.id == UUID(event_id(originator, 0))
    assert envelope.aggregate_id == str(originator)
    assert envelope.aggregate_type == "eventsourcing"
    assert envelope.type == "app.domain:Thing.Created"
    assert (envelope.version, envelope.position, envelope.schema_version) == (0, 1, 1)
    assert envelope.data == {"name": "파"}
    assert envelope.metadata.model_dump(exclude_defaults=True) == {}
    assert abs(envelope.timestamp - time.time()) < 60
    assert {k: v for k, v in agg_fields.items() if k != b"pos"} == log_fields
    assert raw.get(keys.head) == b"1"


@pytest.mark.redis
def test_binary_states_round_trip_marked_b64(
    namespace: str, factories: list[RedisFactory], raw: Any
) -> None:
    recorder = application_recorder(make_factory(factories, namespace, ECO2_ES_SHARD="0"))
    originator = uuid4()
    recorder.insert_events([StoredEvent(originator, 1, "t", b"\x00\xffzlib")])

    [(_, fields)] = raw.xrange(ShardKeys(namespace, 0).events)
    assert (fields[b"sv"], fields[b"data"]) == (b"b64", b"AP96bGli")
    assert recorder.select_events(originator)[0].state == b"\x00\xffzlib"
    assert recorder.select_notifications(None, 1)[0].state == b"\x00\xffzlib"


@pytest.mark.redis
def test_shard_is_env_or_the_application_names_shard(
    namespace: str, factories: list[RedisFactory]
) -> None:
    by_name = make_factory(factories, namespace, name="Recycling")
    assert by_name.datastore.keys == ShardKeys(namespace, shard_of("Recycling", 4))
    explicit = make_factory(factories, namespace, name="Recycling", RECYCLING_ECO2_ES_SHARD="3")
    assert explicit.datastore.keys == ShardKeys(namespace, 3)
    eight = make_factory(factories, namespace, name="Recycling", ECO2_SHARDS="8")
    assert eight.datastore.keys.shard == shard_of("Recycling", 8)


@pytest.mark.parametrize(
    "env",
    [
        {"ECO2_ES_SHARD": "4"},
        {"ECO2_SHARDS": "0"},
        {"ECO2_ES_SHARD": "x"},
        {"ECO2_NAMESPACE": "a}b"},
    ],
)
def test_bad_settings_fail_when_the_factory_is_built(env: dict[str, str]) -> None:
    with pytest.raises(OSError):
        RedisFactory({"REDIS_URL": REDIS_URL, **env})


@pytest.mark.redis
def test_aggregates_live_in_the_recorders_shard_whatever_their_own_shard(
    namespace: str, factories: list[RedisFactory], raw: Any
) -> None:
    recorder = application_recorder(make_factory(factories, namespace, ECO2_ES_SHARD="1"))
    layout = Layout(namespace, 4)
    originator = next(u for u in iter(uuid4, None) if layout.shard_of(str(u)) != 1)

    recorder.insert_events([StoredEvent(originator, 1, "t", b"{}")])

    assert raw.exists(layout.keys(1).aggregate(str(originator))) == 1
    assert raw.exists(layout.keys_for(str(originator)).aggregate(str(originator))) == 0


@pytest.mark.redis
def test_interleaved_batches_return_positions_in_input_order(
    namespace: str, factories: list[RedisFactory]
) -> None:
    recorder = application_recorder(make_factory(factories, namespace, ECO2_ES_SHARD="0"))
    a, b = uuid4(), uuid4()
    batch = [
        StoredEvent(a, 1, "a1", b"{}"),
        StoredEvent(b, 1, "b1", b"{}"),
        StoredEvent(a, 2, "a2", b"{}"),
    ]

    ids = recorder.insert_events(batch)

    assert ids is not None and sorted(ids) == [1, 2, 3]
    by_id = {n.id: n.topic for n in recorder.select_notifications(None, 10)}
    assert [by_id[i] for i in ids] == ["a1", "b1", "a2"]


@pytest.mark.redis
def test_text_originator_ids(namespace: str, factories: list[RedisFactory]) -> None:
    factory = make_factory(factories, namespace, ECO2_ES_SHARD="0", ORIGINATOR_ID_TYPE="text")
    recorder = application_recorder(factory)
    uuid_text = str(uuid4())
    recorder.insert_events(
        [StoredEvent("job-42", 1, "t", b"{}"), StoredEvent(uuid_text, 1, "t", b"{}")]
    )
    assert recorder.select_events("job-42")[0].originator_id == "job-42"
    assert recorder.select_events(uuid_text)[0].originator_id == uuid_text


# --- the async store's entries and the library's applications ---------------------------------


@pytest.mark.redis
def test_events_appended_by_the_async_stores_script_are_readable(
    namespace: str, factories: list[RedisFactory], raw: Any
) -> None:
    keys = ShardKeys(namespace, 0)
    envelope = Envelope(
        aggregate_id="job-1", aggregate_type="scan_job", type="scan.requested", data={"k": 1}
    )
    fields = envelope.to_fields()
    values = [fields[n] for n in ("id", "agg", "atype", "ver", "type", "sv", "data", "meta", "ts")]
    script = raw.register_script(load_append_script())
    script(
        keys=[keys.events, keys.head, keys.event_ids, keys.aggregate("job-1"), keys.cold],
        args=append_args("1", "", [0, 1], [values]),
    )
    recorder = application_recorder(make_factory(factories, namespace, ECO2_ES_SHARD="0"))

    [stored] = recorder.select_events("job-1")
    assert (stored.originator_id, stored.originator_version, stored.topic) == (
        "job-1",
        1,
        "scan.requested",
    )
    assert stored.state == b'{"k":1}'
    assert recorder.max_notification_id() == 1


@pytest.mark.redis
def test_save_of_two_aggregates_is_one_atomic_insert(
    namespace: str, factories: list[RedisFactory], monkeypatch: pytest.MonkeyPatch, redis_url: str
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("PERSISTENCE_MODULE", MODULE)
    monkeypatch.setenv("ECO2_NAMESPACE", namespace)
    app = Application[UUID]()
    try:
        assert isinstance(app.factory, RedisFactory)
        first, second = Aggregate(), Aggregate()
        assert [r.notification.id for r in app.save(first, second)] == [1, 2]

        first.trigger_event(Aggregate.Event)
        second.trigger_event(Aggregate.Event)
        # Someone else moves `second` on: the whole save must fail, `first` included.
        app.recorder.insert_events([StoredEvent(second.id, 2, "x:Y", b"{}")])
        with pytest.raises(IntegrityError):
            app.save(first, second)

        assert app.recorder.max_notification_id() == 3
        assert app.repository.get(first.id).version == 1
    finally:
        app.close()


@pytest.mark.redis
def test_snapshots_stay_out_of_the_shard_log(
    namespace: str, monkeypatch: pytest.MonkeyPatch, raw: Any, redis_url: str
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    monkeypatch.setenv("PERSISTENCE_MODULE", MODULE)
    monkeypatch.setenv("ECO2_NAMESPACE", namespace)
    monkeypatch.setenv("IS_SNAPSHOTTING_ENABLED", "y")
    app = Application[UUID]()
    try:
        aggregate = Aggregate()
        aggregate.trigger_event(Aggregate.Event)
        app.save(aggregate)
        app.take_snapshot(aggregate.id)

        keys = app.factory.datastore.keys  # type: ignore[attr-defined]
        assert raw.xlen(keys.events) == 2
        assert raw.xlen(f"{keys.tag}:snapshots:{aggregate.id}") == 1
        assert app.repository.get(aggregate.id).version == 2
        with pytest.raises(IntegrityError):  # an older snapshot than the newest is refused
            app.take_snapshot(aggregate.id, version=1)
    finally:
        app.close()


# --- subscriptions, tracking, errors ----------------------------------------------------------


@pytest.mark.redis
def test_subscription_filters_topics_and_stops_from_another_thread(
    namespace: str, factories: list[RedisFactory]
) -> None:
    recorder = application_recorder(make_factory(factories, namespace, ECO2_ES_SHARD="0"))
    a = uuid4()
    recorder.insert_events([StoredEvent(a, v, f"t{v % 2}", b"{}") for v in range(1, 7)])
    seen: list[int] = []

    with recorder.subscribe(gt=2, topics=["t1"]) as subscription:
        threading.Timer(0.5, subscription.stop).start()
        for notification in subscription:
            seen.append(notification.id)
            if notification.id == 5:
                recorder.insert_events([StoredEvent(a, 7, "t1", b"{}")])

    assert seen == [3, 5, 7]


@pytest.mark.redis
def test_process_recorder_refuses_a_replayed_tracking_position_and_writes_nothing(
    namespace: str, factories: list[RedisFactory], raw: Any
) -> None:
    recorder = make_factory(factories, namespace, ECO2_ES_SHARD="0").process_recorder()
    assert isinstance(recorder, RedisProcessRecorder)
    recorder.insert_events([StoredEvent(uuid4(), 1, "t", b"{}")], tracking=Tracking("up-s0", 7))

    with pytest.raises(IntegrityError):
        recorder.insert_events([StoredEvent(uuid4(), 1, "t", b"{}")], tracking=Tracking("up-s0", 7))

    assert raw.get(ShardKeys(namespace, 0).tracking("up-s0")) == b"7"
    assert recorder.max_notification_id() == 1


def test_an_unreachable_server_is_an_operational_error() -> None:
    factory = InfrastructureFactory.construct(
        {"PERSISTENCE_MODULE": MODULE, "REDIS_URL": "redis://127.0.0.1:1/0"}
    )
    try:
        with pytest.raises(OperationalError):
            factory.application_recorder().max_notification_id()
    finally:
        factory.close()
