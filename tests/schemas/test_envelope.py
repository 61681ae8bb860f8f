"""The trusted decoding of log entries gives the envelope strict validation would give."""

from __future__ import annotations

import json
import os
import uuid
from uuid import UUID

import pytest

from schemas.envelope import Envelope, MalformedEntry, Metadata, new_id
from schemas.registry import Message, MessageRegistry


def strictly_validated(fields: dict[str, str], position: int | None, shard: int | None) -> Envelope:
    """The envelope pydantic's full validation builds from the same fields."""
    return Envelope.model_validate(
        {
            "id": fields["id"],
            "aggregate_id": fields["agg"],
            "aggregate_type": fields["atype"],
            "version": fields["ver"],
            "type": fields["type"],
            "schema_version": fields["sv"],
            "data": json.loads(fields["data"]),
            "metadata": Metadata.model_validate_json(fields["meta"]),
            "timestamp": fields["ts"],
            "position": position,
            "shard": shard,
        }
    )


@pytest.mark.parametrize(
    "metadata",
    [Metadata(), Metadata(correlation_id="c", user_id="u", trace={"traceparent": "00-ab"})],
)
def test_from_fields_equals_the_validated_envelope(metadata: Metadata) -> None:
    sent = Envelope(
        aggregate_id="job-1",
        aggregate_type="scan_job",
        version=3,
        type="scan.queued",
        schema_version=2,
        data={"user_id": "u", "n": [1, 2.5, None], "nested": {"ok": True}},
        metadata=metadata,
    )
    fields = sent.to_fields()
    decoded = Envelope.from_fields(fields, position=7, shard=1)
    assert decoded == strictly_validated(fields, 7, 1)
    assert decoded == sent.model_copy(update={"position": 7, "shard": 1})
    assert isinstance(decoded.id, UUID) and decoded.id == sent.id and hash(decoded.id) == hash(sent.id)
    assert str(decoded.id) == fields["id"]
    assert decoded.to_fields() == fields
    assert not decoded.validated
    assert decoded.model_copy(update={"version": 4}).version == 4


def test_from_fields_reads_pos_and_accepts_other_uuid_forms() -> None:
    fields = Envelope(aggregate_id="a", type="t").to_fields()
    braced = fields | {"id": "{" + fields["id"].upper() + "}", "pos": "12"}
    decoded = Envelope.from_fields(braced)
    assert decoded.id == UUID(fields["id"]) and decoded.position == 12


@pytest.mark.parametrize(
    "change",
    [
        {"id": "not-a-uuid"},
        {"id": "0123456-89ab-cdef-0123-456789abcdefg"},
        {"id": "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz"},
        {"ver": "three"},
        {"sv": ""},
        {"ts": "noon"},
        {"data": "{not json"},
        {"data": "[1, 2]"},
        {"data": "3"},
        {"meta": '{"trace": 5}'},
        {"meta": "{broken"},
    ],
)
def test_malformed_entries_are_refused(change: dict[str, str]) -> None:
    fields = Envelope(aggregate_id="a", type="t").to_fields() | change
    with pytest.raises(MalformedEntry):
        Envelope.from_fields(fields)


@pytest.mark.parametrize("missing", ["id", "agg", "type"])
def test_entries_without_required_fields_are_refused(missing: str) -> None:
    fields = Envelope(aggregate_id="a", type="t").to_fields()
    del fields[missing]
    with pytest.raises(MalformedEntry):
        Envelope.from_fields(fields)


def test_registry_envelopes_validate_only_what_the_caller_adds() -> None:
    registry = MessageRegistry()

    @registry.register("test.noted", version=2)
    class Noted(Message):
        text: str

    fast = registry.envelope(Noted(text="a"), aggregate_id="n-1", aggregate_type="note",
                             timestamp=12.5)
    assert fast.validated and fast.type == "test.noted" and fast.schema_version == 2
    strict = Envelope.model_validate(fast.model_dump())
    strict._validated = True
    assert fast == strict
    assert fast.to_fields()["meta"] == "{}" and fast.timestamp == 12.5

    meta = Metadata(correlation_id="c")
    validated = registry.envelope(Noted(text="b"), aggregate_id="n-1", metadata=meta,
                                  timestamp=3, id=str(fast.id))
    assert validated.validated and validated.timestamp == 3.0 and validated.id == fast.id
    assert validated.metadata is meta
    with pytest.raises(ValueError):
        registry.envelope(Noted(text="c"), aggregate_id="n-1", version="many")


def test_new_ids_are_distinct_version_4_uuids_and_a_forked_child_draws_its_own() -> None:
    ids = [new_id() for _ in range(1000)]  # several batches of the pool
    assert len(set(ids)) == len(ids)
    for value in ids[:300]:
        assert value.version == 4 and value.variant == uuid.RFC_4122
        assert uuid.UUID(str(value)) == value and hash(uuid.UUID(str(value))) == hash(value)
    assert Envelope(aggregate_id="a", type="t").id.version == 4
    new_id()  # the pool now holds ids the child must not repeat
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next id, then leave at once
        os.write(write, str(new_id()).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = uuid.UUID(os.read(read, 64).decode())
    os.close(read)
    assert child not in [*ids, *(new_id() for _ in range(300))]
