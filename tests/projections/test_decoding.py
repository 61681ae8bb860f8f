"""A projection reader decodes short event data once and shares it, without changing what an
entry decodes to: a malformed envelope around known data is still malformed, longer data is
kept only once it repeats, very long data never, and the memory of decoded texts stays
bounded."""

from __future__ import annotations

from typing import cast

import schemas
from projections import reading
from projections.reading import Decoded, Entry, Skip
from projections.scans import SCANS
from schemas.classification import RECYCLABLE, Classification, ScanAnswer
from schemas.envelope import Envelope
from schemas.scan import SCAN_JOB, AnswerCompleted, Stage, StageStarted
from schemas.users import UserRegistered
from tests.projections.memory_tables import reader_for


def _entry(position: int, message: schemas.Event, **overrides: str) -> Entry:
    envelope = schemas.registry.envelope(
        message, aggregate_id=f"job-{position}", aggregate_type=SCAN_JOB, version=position
    )
    return (f"{position}-0", envelope.to_fields() | overrides)


def _decoded(item: Decoded | Skip) -> Decoded:
    assert isinstance(item, Decoded), item
    return item


def test_the_same_short_data_decodes_once_into_equal_events_of_their_own_envelopes() -> None:
    reader = reader_for(SCANS)
    started = StageStarted(stage=Stage.VISION, progress=40)
    first = _decoded(reader.decode(2, _entry(1, started)))
    second = _decoded(reader.decode(2, _entry(2, started)))
    assert first.message == second.message == started
    assert second.message is first.message  # shared, not decoded again
    assert (second.envelope.aggregate_id, second.envelope.version) == ("job-2", 2)
    assert (second.envelope.position, second.envelope.shard) == (2, 2)
    assert second.envelope.data == started.model_dump(mode="json")
    assert second.envelope.id != first.envelope.id


def test_known_data_in_a_malformed_envelope_is_still_malformed() -> None:
    reader = reader_for(SCANS)
    started = StageStarted(stage=Stage.RULE, progress=55)
    _decoded(reader.decode(0, _entry(1, started)))
    assert reader.decode(0, _entry(2, started, ver="two")) is Skip.MALFORMED
    assert reader.decode(0, _entry(3, started, ts="later")) is Skip.MALFORMED
    # the same text under a newer schema version is not the known event
    assert reader.decode(0, _entry(4, started, sv="99")) is Skip.UNKNOWN


def test_invalid_short_data_is_malformed_every_time() -> None:
    reader = reader_for(SCANS)
    started = StageStarted(stage=Stage.RULE, progress=55)
    bad = '{"stage":"nowhere","progress":1}'
    assert reader.decode(0, _entry(1, started, data=bad)) is Skip.MALFORMED
    assert reader.decode(0, _entry(2, started, data=bad)) is Skip.MALFORMED


def _answer(text: str) -> AnswerCompleted:
    return AnswerCompleted(
        user_id="user-1",
        classification=Classification(major_category=RECYCLABLE, middle_category="종이"),
        rule_found=True,
        answer=ScanAnswer(disposal_steps={"1": "테이프를 떼세요"}, user_answer=text),
    )


def test_longer_data_is_kept_once_it_repeats() -> None:
    reader = reader_for(SCANS)
    answer = _answer("묶어서 배출하세요.")
    entry = _entry(1, answer)
    assert reading.CACHED_DATA_CHARS < len(entry[1]["data"]) <= reading.CACHED_LONG_DATA_CHARS
    first = _decoded(reader.decode(0, entry))
    second = _decoded(reader.decode(0, _entry(2, answer)))
    third = _decoded(reader.decode(0, _entry(3, answer)))
    assert first.message == second.message == third.message == answer
    assert second.message is not first.message  # seen once: not kept
    assert third.message is second.message  # seen again: kept
    assert (third.envelope.aggregate_id, third.envelope.position) == ("job-3", 3)


def test_very_long_data_is_never_kept() -> None:
    reader = reader_for(SCANS)
    answer = _answer("묶어서 배출하세요. " * 100)
    assert len(_entry(1, answer)[1]["data"]) > reading.CACHED_LONG_DATA_CHARS
    messages = [_decoded(reader.decode(0, _entry(n, answer))).message for n in (1, 2, 3)]
    assert messages[0] == messages[1] == messages[2] == answer
    assert len({id(m) for m in messages}) == 3
    assert isinstance(messages[0], AnswerCompleted)


def test_the_memory_of_decoded_texts_is_bounded() -> None:
    reader = reader_for(SCANS)
    bound = reading.CACHED_DATA_ENTRIES
    for progress in range(bound + 10):
        started = StageStarted(stage=Stage.ANSWER, progress=progress)
        item = reader.decode(0, _entry(progress + 1, started))
        assert _decoded(item).message == started
    assert len(reader._decoded) <= bound
    for n in range(2 * bound + 10):  # longer texts, each seen twice
        answer = _answer(f"{n:06d} 묶어서 배출하세요.")
        for position in (2 * n + 1, 2 * n + 2):
            assert _decoded(reader.decode(0, _entry(position, answer))).message == answer
    assert len(reader._decoded_long) <= bound
    assert len(reader._long_seen) <= bound


def test_fields_no_handler_reads_are_still_checked() -> None:
    """The envelope is lazy, not lenient: a bad id or metadata, or data that is not an object,
    is malformed even though the scans handlers read none of them."""
    reader = reader_for(SCANS)
    started = StageStarted(stage=Stage.VISION, progress=40)
    _decoded(reader.decode(0, _entry(1, started)))  # its data text is now known
    for position, change in enumerate(
        [{"id": "not-a-uuid"}, {"meta": '{"trace": 5}'}, {"data": "[1, 2]"}, {"data": "{oops"}],
        start=2,
    ):
        assert reader.decode(0, _entry(position, started, **change)) is Skip.MALFORMED, change


def test_the_envelope_gives_what_the_full_envelope_gives() -> None:
    reader = reader_for(SCANS)
    started = StageStarted(stage=Stage.ANSWER, progress=60)
    entry = _entry(5, started)
    envelope = _decoded(reader.decode(3, entry)).envelope
    full = Envelope.from_fields(entry[1], position=5, shard=3)
    assert (envelope.id, envelope.aggregate_id, envelope.version, envelope.timestamp) == (
        full.id, full.aggregate_id, full.version, full.timestamp,
    )
    assert (envelope.metadata, envelope.data, envelope.position, envelope.shard) == (
        full.metadata, full.data, 5, 3,
    )


def _sent(entry: Entry) -> Entry:
    """The entry as a replay's own client reads it: its fields undecoded, in their order."""
    fields = cast(dict[str, str], entry[1])
    return (entry[0], [part.encode() for pair in fields.items() for part in pair])


def test_an_entry_read_undecoded_decodes_as_it_does_by_name() -> None:
    by_name, undecoded = reader_for(SCANS), reader_for(SCANS)
    events: list[schemas.Event] = [
        StageStarted(stage=Stage.VISION, progress=40), _answer("묶어서 배출하세요."),
        UserRegistered(username="u", nickname="n", provider="dev", provider_user_id="u"),
    ]
    for position, event in enumerate(events, start=1):
        entry = _entry(position, event)
        expected, got = by_name.decode(1, entry), undecoded.decode(1, _sent(entry))
        if expected is Skip.IGNORED:  # a user event: not the scans projection's
            assert got is Skip.IGNORED
            continue
        assert _decoded(got).message == _decoded(expected).message
        assert tuple(got.envelope)[:-1] == tuple(expected.envelope)[:-1]  # all but the fields
        assert got.envelope.id == expected.envelope.id
        assert got.envelope.data == expected.envelope.data


def test_entries_read_undecoded_are_refused_and_skipped_as_by_name() -> None:
    reader = reader_for(SCANS)
    started = StageStarted(stage=Stage.VISION, progress=40)
    entry = _entry(1, started)
    fields = cast(dict[str, str], entry[1])
    reordered = ("1-0", {"agg": fields["agg"]} | fields)
    assert _decoded(reader.decode(0, _sent(reordered))).message == started  # read by name
    for change in [{"ver": "x"}, {"data": "[1, 2]"}, {"type": "scan.unheard_of"}]:
        expected = reader.decode(0, _entry(2, started, **change))
        assert reader.decode(0, _sent(_entry(2, started, **change))) is expected, change
    flat = cast(list[bytes], _sent(entry)[1])
    flat[3] = b"\xff"  # not UTF-8
    assert reader.decode(0, ("3-0", flat)) is Skip.MALFORMED
    assert reader.decode(0, ("4-0", flat[:-1])) is Skip.MALFORMED  # not name-value pairs
