"""The user's aggregate (``user``, id = user id): profile and character ownership.

Personal fields (username, nickname, phone number) never enter the log, not even in a command:
the gateway writes them to the profile vault and appends a command that carries ids only
(docs/PRIVACY.md).
"""

from __future__ import annotations

from pydantic import Field

from schemas.registry import Command, Event, message

USER = "user"


@message("user.registered")
class UserRegistered(Event):
    username: str
    nickname: str
    provider: str
    provider_user_id: str


@message("user.logged_in")
class UserLoggedIn(Event):
    provider: str


@message("user.profile_updated")
class ProfileUpdated(Event):
    nickname: str | None = Field(default=None, min_length=1, max_length=120)
    phone_number: str | None = Field(default=None, min_length=10, max_length=20)


@message("user.deleted")
class UserDeleted(Event):
    """After this event the user's read models hold no personal fields."""


@message("user.character_granted")
class CharacterGranted(Event):
    """Ownership of a character, recorded at most once per (user, character)."""

    character_code: str
    character_name: str
    source_job_id: str | None = None


@message("user.sign_in")
class SignIn(Command):
    """Record a sign-in of the provider account ``provider_user_id`` (the hash of its subject)
    as ``user_id``: its registration on the first, a login after that."""

    user_id: str
    provider: str
    provider_user_id: str


@message("user.update_profile")
class UpdateProfile(Command):
    """Record that the user's profile changed (the values went to the vault, not here)."""

    user_id: str


@message("user.delete")
class DeleteUser(Command):
    user_id: str
