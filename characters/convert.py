"""Conversions between our ``Character`` model and its protobuf message."""

from __future__ import annotations

from characters import characters_pb2 as pb
from characters.model import Character


def to_message(character: Character) -> pb.Character:
    return pb.Character(
        code=character.code,
        name=character.name,
        type=character.type,
        dialog=character.dialog,
        match_label=character.match_label or "",
        is_default=character.is_default,
    )


def from_message(message: pb.Character) -> Character:
    return Character.model_validate(
        {
            "code": message.code,
            "name": message.name,
            "type": message.type,
            "dialog": message.dialog,
            "match_label": message.match_label or None,
            "is_default": message.is_default,
        }
    )
