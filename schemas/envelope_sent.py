"""An entry's envelope read by place, as Redis sent it (``[b"id", id, b"agg", …]``, undecoded).

A replay reads the log with a client that leaves XRANGE replies as Redis sent them
(``projections.reading.undecoded_client``): turning each entry into a dict of decoded text cost
a reader as much as the rest of reading it. ``flat_log_envelope`` reads such an entry by place
and decodes only its text fields; any entry it does not plainly recognise is left to
``log_envelope`` of ``decode_fields`` (the dict path), so the two accept exactly the same entries.
"""

from __future__ import annotations

from schemas.envelope import (
    EMPTY_METADATA,
    WIRE_FIELDS,
    LogEnvelope,
    Metadata,
    validate_metadata_json,
)

# An entry's field names, undecoded, in the order the store writes them (``append.lua``).
_WIRE_KEYS = [name.encode() for name in WIRE_FIELDS]
_HEX = b"0123456789abcdefABCDEF"
_DASH = 0x2D  # ``-``
_new_tuple = tuple.__new__
# Versions and schema versions as the store writes them (``str(n)``, ASCII) up to a bound, by
# their bytes: a look-up is a third of ``int`` of bytes (75 against 211 ns), and most aggregate
# versions and every schema version are small. Anything else (0 included) goes to ``int``.
_NUMBERS = {str(n).encode(): n for n in range(1, 1024)}


def flat_log_envelope(
    flat: list[bytes], position: int, shard: int, name: str | None = None
) -> LogEnvelope | None:
    """``log_envelope`` of an entry as Redis sent it, read by place instead of through a dict
    of decoded fields, with only the text fields decoded. None unless the entry is plainly well
    formed: its fields the store's, in its order, each of them what ``log_envelope`` accepts;
    ``log_envelope`` of ``decode_fields`` then decides (every malformed entry lands there, so
    the two read exactly the same entries alike). ``name``: the entry's ``type`` already
    decoded (the reader looked it up), which is then not decoded again."""
    # The id a UUID in its canonical form (``8-4-4-4-12`` hex digits, either case): a dash at
    # each of the four places, and nothing else than hex digits and four dashes (the check of
    # a ``fullmatch`` of that pattern in two thirds of its time; inlined, as a function call
    # was a sixth of this function's cost).
    ident = flat[1]
    if (
        flat[0::2] != _WIRE_KEYS
        or len(ident) != 36
        or ident[8] != _DASH
        or ident[13] != _DASH
        or ident[18] != _DASH
        or ident[23] != _DASH
        or ident.translate(None, _HEX) != b"----"
    ):
        return None
    try:
        sent_metadata = flat[15]
        metadata = _METADATA.get(sent_metadata)
        if metadata is None:
            metadata = _metadata_sent(sent_metadata)
        return _new_tuple(
            LogEnvelope,
            (
                flat[3].decode(),
                flat[5].decode(),
                # ASCII digits, as ``int`` of their text reads them; small ones looked up
                _NUMBERS.get(flat[7]) or int(flat[7]),
                flat[9].decode() if name is None else name,
                _NUMBERS.get(flat[11]) or int(flat[11]),
                metadata,
                float(flat[17]),
                position,
                shard,
                flat,
            ),
        )
    except ValueError:  # UnicodeDecodeError and pydantic's ValidationError are ValueErrors
        return None


# Metadata by its text as Redis sent it (UTF-8), once per distinct text: the events of one scan
# job share it. A dict, emptied when full, rather than ``functools.lru_cache``: the look-up of
# each event's metadata is a fifth cheaper (0.52 against 0.66 µs on a loaded host: no call,
# no recency list to reorder).
_METADATA: dict[bytes, Metadata] = {}
_METADATA_ENTRIES = 4096


def _metadata_sent(sent: bytes) -> Metadata:
    """``_metadata`` of a text as Redis sent it: ``Metadata.model_validate_json`` without its
    wrapper (see ``MessageRegistry.decode_json``), remembered in ``_METADATA`` once valid."""
    metadata = EMPTY_METADATA if sent in (b"{}", b"") else validate_metadata_json(sent)
    if len(_METADATA) >= _METADATA_ENTRIES:
        _METADATA.clear()
    _METADATA[sent] = metadata
    return metadata
