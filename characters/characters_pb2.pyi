from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Character(_message.Message):
    __slots__ = ("code", "name", "type", "dialog", "match_label", "is_default")
    CODE_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    DIALOG_FIELD_NUMBER: _ClassVar[int]
    MATCH_LABEL_FIELD_NUMBER: _ClassVar[int]
    IS_DEFAULT_FIELD_NUMBER: _ClassVar[int]
    code: str
    name: str
    type: str
    dialog: str
    match_label: str
    is_default: bool
    def __init__(self, code: _Optional[str] = ..., name: _Optional[str] = ..., type: _Optional[str] = ..., dialog: _Optional[str] = ..., match_label: _Optional[str] = ..., is_default: _Optional[bool] = ...) -> None: ...

class CatalogRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CatalogReply(_message.Message):
    __slots__ = ("characters",)
    CHARACTERS_FIELD_NUMBER: _ClassVar[int]
    characters: _containers.RepeatedCompositeFieldContainer[Character]
    def __init__(self, characters: _Optional[_Iterable[_Union[Character, _Mapping]]] = ...) -> None: ...

class MatchRequest(_message.Message):
    __slots__ = ("middle_category",)
    MIDDLE_CATEGORY_FIELD_NUMBER: _ClassVar[int]
    middle_category: str
    def __init__(self, middle_category: _Optional[str] = ...) -> None: ...

class MatchReply(_message.Message):
    __slots__ = ("found", "character")
    FOUND_FIELD_NUMBER: _ClassVar[int]
    CHARACTER_FIELD_NUMBER: _ClassVar[int]
    found: bool
    character: Character
    def __init__(self, found: _Optional[bool] = ..., character: _Optional[_Union[Character, _Mapping]] = ...) -> None: ...

class DefaultRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
