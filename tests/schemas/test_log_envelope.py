"""A projector's lazy envelope (``log_envelope``) and JSON decoding (``decode_json``) give what
the full envelope and ``decode`` give, and refuse what they refuse."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import orjson
import pytest

from projections.synthetic import SyntheticLog
from schemas import registry
from schemas.envelope import (
    Envelope,
    MalformedEntry,
    Metadata,
    decode_fields,
    log_envelope,
)
from schemas.envelope_sent import flat_log_envelope
from schemas.registry import InvalidMessage, Message, MessageRegistry, UnknownMessageType

FIELDS = ("aggregate_id", "aggregate_type", "version", "type", "schema_version", "metadata",
          "timestamp", "position", "shard", "id", "data")


def _sample_fields(**overrides: str) -> dict[str, str]:
    sent = Envelope(
        aggregate_id="job-1", aggregate_type="scan_job", version=3, type="scan.queued",
        schema_version=2, data={"user_id": "u", "n": [1, 2.5, None]},
        metadata=Metadata(correlation_id="c", user_id="u", trace={"traceparent": "00-ab"}),
    )
    return sent.to_fields() | overrides


def _same(fields: dict[str, str]) -> None:
    lazy = log_envelope(fields, position=7, shard=1)
    full = Envelope.from_fields(fields, position=7, shard=1)
    for name in FIELDS:
        assert getattr(lazy, name) == getattr(full, name), name
    assert lazy.envelope() == full


def test_every_field_reads_as_in_the_full_envelope() -> None:
    _same(_sample_fields())
    _same(_sample_fields(meta="{}"))
    braced = _sample_fields()
    braced["id"] = "{" + braced["id"].upper() + "}"
    _same(braced)


@pytest.mark.parametrize("left_out", ["atype", "ver", "sv", "data", "meta", "ts"])
def test_optional_fields_left_out_take_the_full_envelopes_defaults(left_out: str) -> None:
    fields = _sample_fields()
    del fields[left_out]
    _same(fields)


@pytest.mark.parametrize(
    "change",
    [
        {"id": "not-a-uuid"},
        {"id": "0123456-89ab-cdef-0123-456789abcdefg"},
        {"id": "zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz"},
        {"ver": "three"},
        {"sv": ""},
        {"ts": "noon"},
        {"meta": '{"trace": 5}'},
        {"meta": "{broken"},
    ],
)
def test_malformed_envelopes_are_refused(change: dict[str, str]) -> None:
    fields = _sample_fields(**change)
    with pytest.raises(MalformedEntry):
        Envelope.from_fields(fields)
    with pytest.raises(MalformedEntry):
        log_envelope(fields, position=1, shard=0)


def _as_sent(fields: dict[str, str]) -> list[bytes]:
    """The fields as a client that does not decode replies reads them from XRANGE."""
    return [part.encode() for pair in fields.items() for part in pair]


def test_an_entry_read_undecoded_gives_the_envelope_of_its_fields() -> None:
    for fields in (_sample_fields(), _sample_fields(meta="{}", data="{}")):
        flat = _as_sent(fields)
        assert decode_fields(flat) == fields
        undecoded = flat_log_envelope(flat, position=7, shard=1)
        assert undecoded is not None
        named = log_envelope(fields, position=7, shard=1)
        for name in FIELDS:
            assert getattr(undecoded, name) == getattr(named, name), name
        assert undecoded.envelope() == named.envelope()


def test_an_entry_not_in_the_stores_field_order_is_left_to_its_dict() -> None:
    fields = _sample_fields()
    reordered = {"agg": fields["agg"]} | fields
    assert flat_log_envelope(_as_sent(reordered), position=1, shard=0) is None
    del fields["atype"]
    assert flat_log_envelope(_as_sent(fields), position=1, shard=0) is None


@pytest.mark.parametrize(
    "change",
    [{"id": "not-a-uuid"}, {"ver": "three"}, {"sv": ""}, {"ts": "noon"},
     {"meta": '{"trace": 5}'}, {"agg": "\udcff"}],
)
def test_malformed_entries_read_undecoded_are_left_to_their_dict(change: dict[str, str]) -> None:
    flat = _as_sent(_sample_fields())
    for name, value in change.items():  # the bytes as sent, invalid UTF-8 included
        flat[flat.index(name.encode()) + 1] = value.encode("utf-8", "surrogateescape")
    assert flat_log_envelope(flat, position=1, shard=0) is None


@pytest.mark.parametrize(
    "change", [{"id": "{" + str(UUID(int=7)).upper() + "}"}, {"ver": "\u0663"}, {"sv": " 2 "}]
)
def test_unusual_but_valid_fields_read_undecoded_decode_by_name(change: dict[str, str]) -> None:
    fields = _sample_fields(**change)
    undecoded = flat_log_envelope(_as_sent(fields), position=1, shard=0)
    named = log_envelope(fields, position=1, shard=0)
    if undecoded is None:  # left to the dict, which reads it
        undecoded = log_envelope(decode_fields(_as_sent(fields)), position=1, shard=0)
    assert tuple(undecoded)[:-1] == tuple(named)[:-1]


@pytest.mark.parametrize(
    ("ver", "sv"),
    [("1", "1"), ("1023", "7"), ("1024", "1"), ("987654321", "12"), ("0", "0"), ("007", "01"),
     ("+5", "1_0"), ("-3", "-1")],
)
def test_versions_read_undecoded_are_the_integers_of_their_text(ver: str, sv: str) -> None:
    # small ones come from a table of the store's own digits, the others from ``int``
    fields = _sample_fields(ver=ver, sv=sv)
    undecoded = flat_log_envelope(_as_sent(fields), position=1, shard=0)
    assert undecoded is not None
    assert (undecoded.version, undecoded.schema_version) == (int(ver), int(sv))
    assert tuple(undecoded)[:-1] == tuple(log_envelope(fields, position=1, shard=0))[:-1]


@pytest.mark.parametrize("missing", ["id", "agg", "type"])
def test_entries_without_required_fields_are_refused(missing: str) -> None:
    fields = _sample_fields()
    del fields[missing]
    with pytest.raises(MalformedEntry):
        log_envelope(fields, position=1, shard=0)


def _logged_messages() -> list[tuple[str, int, str]]:
    """(wire name, schema version, data text) of every event of a few synthetic scan jobs."""
    log, out = SyntheticLog(registry, salt=3), []
    for _ in range(25):
        for envelopes, _ in log.scan_job():
            for envelope in envelopes:
                fields = envelope.to_fields()
                out.append((fields["type"], int(fields["sv"]), fields["data"]))
    return out


def test_decode_json_validates_into_the_same_messages_as_decode() -> None:
    logged = _logged_messages()
    assert len({name for name, _, _ in logged}) >= 10
    for name, version, text in logged:
        expected = registry.decode(name, version, orjson.loads(text))
        decoded = registry.decode_json(name, version, text)
        assert type(decoded) is type(expected) and decoded == expected


@pytest.mark.parametrize(
    "text",
    ["{not json", "[1, 2]", "3", '"text"', '{"stage": "nowhere", "progress": 1}', '{"progress": 1}',
     '{"stage": "vision", "progress": 1, "extra": true}', '{"stage": "vision", "progress": "x"}'],
)
def test_decode_json_refuses_what_decode_refuses(text: str) -> None:
    with pytest.raises(InvalidMessage):
        registry.decode_json("scan.stage_started", 1, text)


def test_decode_json_upcasts_older_versions_and_refuses_newer_ones() -> None:
    local = MessageRegistry()

    @local.register("test.noted", version=2)
    class Noted(Message):
        text: str
        words: int

    @local.upcaster("test.noted", from_version=1)
    def _count_words(data: dict[str, Any]) -> dict[str, Any]:
        return data | {"words": len(data["text"].split())}

    assert local.decode_json("test.noted", 1, '{"text": "a b c"}') == Noted(text="a b c", words=3)
    assert local.decode_json("test.noted", 2, '{"text": "a", "words": 1}') == Noted(text="a", words=1)
    with pytest.raises(InvalidMessage):
        local.decode_json("test.noted", 1, "[1]")
    with pytest.raises(UnknownMessageType):
        local.decode_json("test.noted", 3, '{"text": "a", "words": 1}')
    with pytest.raises(UnknownMessageType):
        local.decode_json("test.unknown", 1, "{}")


@pytest.mark.parametrize(
    "ident",
    [str(UUID(int=7)).replace("-", "", 1) + "0",  # a dash moved
     str(UUID(int=7))[:-1] + "g", str(UUID(int=7))[:-1] + "-",  # not a hex digit
     str(UUID(int=7))[:-1], str(UUID(int=7)) + "0", ""],  # too short, too long
)
def test_only_canonical_ids_are_read_by_place(ident: str) -> None:
    assert flat_log_envelope(_as_sent(_sample_fields(id=ident)), position=1, shard=0) is None


def test_canonical_ids_of_either_case_are_read_by_place() -> None:
    for ident in (str(UUID(int=2**128 - 1)), str(UUID(int=2**128 - 1)).upper(), str(UUID(int=0))):
        envelope = flat_log_envelope(_as_sent(_sample_fields(id=ident)), position=1, shard=0)
        assert envelope is not None and envelope.id == UUID(ident)
