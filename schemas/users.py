"""The user's aggregate (``user``, id = user id): profile and character ownership."""

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


@message("user.update_profile")
class UpdateProfile(Command):
    user_id: str
    nickname: str | None = Field(default=None, min_length=1, max_length=120)
    phone_number: str | None = Field(default=None, min_length=10, max_length=20)


@message("user.delete")
class DeleteUser(Command):
    user_id: str
