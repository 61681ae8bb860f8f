"""The user's aggregate (``user``) folded from its events, and the ids derived for it.

Pure, no I/O: the user handlers fold it to decide, the gateway to answer (read-your-writes while
the users read model lags) and to find which account a provider sign-in names. It is loaded
through ``eventstore.snapshotting.load_state`` (a user's logins grow its aggregate forever), so it
is also a snapshot: ``SNAPSHOT_FORMAT`` changes whenever a field or the fold does.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import ClassVar

from pydantic import TypeAdapter

from schemas.envelope import Envelope
from schemas.registry import Message, MessageRegistry, RegistryError
from schemas.users import CharacterGranted, UserDeleted, UserLoggedIn, UserRegistered

# uuid5 namespace of user ids, derived from (provider, subject).
USER_NAMESPACE = uuid.UUID("7d0f3c1e-9a4b-5c2d-8e6f-1a2b3c4d5e6f")
MAX_GENERATIONS = 32  # re-registrations after deletion of one provider account


def hashed_subject(provider: str, subject: str) -> str:
    """What the log keeps of a provider account: a hash, never the subject itself."""
    return hashlib.sha256(f"{provider}\x1f{subject}".encode()).hexdigest()


def user_id_for(provider: str, subject: str, generation: int = 0) -> str:
    """The deterministic user id of a provider account. A deleted account stays deleted:
    signing in again creates the next generation's (fresh) account."""
    name = hashed_subject(provider, subject) + (f"\x1f{generation}" if generation else "")
    return str(uuid.uuid5(USER_NAMESPACE, name))


@dataclass(frozen=True)
class OwnedCharacter:
    code: str
    name: str
    acquired_at: float
    source_job_id: str | None = None  # the scan that earned it


@dataclass
class UserState:
    """What the handlers (and the gateway's read-your-writes fallback) know of a user."""

    SNAPSHOT_KIND: ClassVar[str] = "user.state"
    SNAPSHOT_FORMAT: ClassVar[int] = 1

    user_id: str
    version: int = 0
    registered: bool = False
    deleted: bool = False
    provider: str | None = None
    registered_at: float | None = None
    last_login_at: float | None = None
    characters: list[OwnedCharacter] = field(default_factory=list)
    # The commands (causation ids) that recorded the registration and the latest login: a
    # redelivered sign-in is recognised without reading the events a snapshot folded.
    registered_by: str | None = None
    last_login_by: str | None = None

    def apply(self, envelope: Envelope, event: Message) -> None:
        self.version = envelope.version
        if isinstance(event, UserRegistered):
            self.registered = True
            self.provider = event.provider
            self.registered_at = envelope.timestamp
            self.registered_by = envelope.metadata.causation_id
        elif isinstance(event, UserLoggedIn):
            self.provider = event.provider
            self.last_login_at = envelope.timestamp
            self.last_login_by = envelope.metadata.causation_id
        elif isinstance(event, UserDeleted):
            self.deleted = True
        elif isinstance(event, CharacterGranted):
            if all(c.code != event.character_code for c in self.characters):
                self.characters.append(OwnedCharacter(
                    event.character_code, event.character_name, envelope.timestamp,
                    event.source_job_id,
                ))

    def fold(self, envelopes: Iterable[Envelope], registry: MessageRegistry) -> bool:
        """Apply ``envelopes`` in version order; events of newer releases are skipped (their
        version still counted), and False tells that some were."""
        understood = True
        for envelope in envelopes:
            try:
                event = registry.decode_envelope(envelope)
            except RegistryError:
                self.version = envelope.version
                understood = False
                continue
            self.apply(envelope, event)
        return understood

    @classmethod
    def empty(cls, aggregate_id: str) -> UserState:
        """The state before the user's first event."""
        return cls(aggregate_id)

    @classmethod
    def from_events(
        cls, user_id: str, envelopes: Iterable[Envelope], registry: MessageRegistry
    ) -> UserState:
        """The user's state from its aggregate stream (events of newer releases skipped)."""
        state = cls(user_id)
        state.fold(envelopes, registry)
        return state

    def snapshot_data(self) -> str:
        """This state as JSON text (``from_snapshot`` reads it back)."""
        return _SNAPSHOT.dump_json(self).decode()

    @classmethod
    def from_snapshot(cls, aggregate_id: str, data: str) -> UserState:
        """The state ``snapshot_data`` wrote; ``ValueError`` when ``data`` is not one of
        ``aggregate_id``."""
        state = _SNAPSHOT.validate_json(data, strict=True)  # ValidationError is a ValueError
        if state.user_id != aggregate_id:
            raise ValueError(f"a snapshot of {state.user_id}, not of {aggregate_id}")
        return state


_SNAPSHOT = TypeAdapter(UserState)
