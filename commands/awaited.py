"""The commands a request waits for: the consumer group ``awaited``.

Signing in, changing or deleting the profile and creating, renaming or deleting a chat are
commands like every other write, but the API answers them with their outcome (the user's
cookies, the profile, the chat), so the gateway appends one and reads the event it causes.
Their handlers are quick (a fold and one append), so they have a group of their own: a request
never waits behind a scan or a chat turn.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from commands.chat.sessions import handle_create_chat, handle_delete_chat, handle_rename_chat
from commands.users import handle_delete_user, handle_sign_in, handle_update_profile
from eventstore.consumer import Handler, Subscription
from eventstore.port import EventStorePort
from schemas.chat import CreateChat, DeleteChat, RenameChat
from schemas.envelope import Envelope
from schemas.registry import Message
from schemas.users import DeleteUser, SignIn, UpdateProfile

GROUP = "awaited"
M = TypeVar("M", bound=Message)


def _bound(
    cls: type[M], handle: Callable[..., Awaitable[None]], store: EventStorePort
) -> Handler:
    async def run(envelope: Envelope, message: Message) -> None:
        if not isinstance(message, cls):
            raise TypeError(f"{GROUP} handler of {cls.__name__} got {type(message).__name__}")
        await handle(envelope, message, store=store)

    return run


def awaited_subscription(store: EventStorePort) -> Subscription:
    """The group ``awaited`` on the commands log, its handlers bound to ``store``."""
    handlers: dict[type[Message], Handler] = {
        SignIn: _bound(SignIn, handle_sign_in, store),
        UpdateProfile: _bound(UpdateProfile, handle_update_profile, store),
        DeleteUser: _bound(DeleteUser, handle_delete_user, store),
        CreateChat: _bound(CreateChat, handle_create_chat, store),
        RenameChat: _bound(RenameChat, handle_rename_chat, store),
        DeleteChat: _bound(DeleteChat, handle_delete_chat, store),
    }
    return Subscription(GROUP, "commands", handlers)
