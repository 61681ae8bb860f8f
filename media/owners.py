"""Uploads bound to a live owner, each upload URL good for one upload: the owner records.

When an upload URL is handed out, two Redis keys are written for its media key (one hash tag per
media key, so they spread over a cluster's slots):

- ``{<ns>:media:<key>}:owner`` — the user id the key was issued to; ``ERASED`` once that user
  deleted the account (a tombstone, kept: an upload URL signed by S3 cannot be revoked, so an
  object re-created after the erasure must still be recognised as an orphan);
- ``{<ns>:media:<key>}:upload`` — the unused upload, expiring with the URL. The gateway's PUT
  takes it with ``GETDEL``: a second PUT finds it gone (single use).

The gateway writes them; every process reads images through ``infra.media_owners``'s
``OwnedMediaStore``, which hides (and deletes) an image whose owner is erased. ``redis`` is any
async Redis client (decoded responses).
"""

from __future__ import annotations

from typing import Any, Protocol

from media.store import MediaStore

ERASED = "\x00erased"  # not a user id (ids are printable)


def owner_record(namespace: str, key: str) -> str:
    return "{" + f"{namespace}:media:{key}" + "}:owner"


def upload_record(namespace: str, key: str) -> str:
    return "{" + f"{namespace}:media:{key}" + "}:upload"


async def bind_upload(redis: Any, namespace: str, key: str, user_id: str, ttl_s: int) -> None:
    """Record ``user_id`` as the owner of ``key`` and open its single upload for ``ttl_s``."""
    await redis.set(owner_record(namespace, key), user_id)
    await redis.set(upload_record(namespace, key), user_id, ex=ttl_s)


async def claim_upload(redis: Any, namespace: str, key: str) -> str | None:
    """Take the open upload of ``key``: its owner's id, or None when the URL was already used,
    expired or revoked. Only one caller ever gets the id."""
    owner = await redis.getdel(upload_record(namespace, key))
    return None if owner is None else str(owner)


async def reopen_upload(redis: Any, namespace: str, key: str, user_id: str, ttl_s: int) -> None:
    """Give back a claimed upload whose write failed (the client may try the URL again)."""
    await redis.set(upload_record(namespace, key), user_id, ex=ttl_s, nx=True)


async def owner_is_live(redis: Any, namespace: str, key: str) -> bool:
    """False once the owner of ``key`` erased the account (True for keys without an owner)."""
    return is_live(await redis.get(owner_record(namespace, key)))


def is_live(owner: str | None) -> bool:
    """Whether ``owner``, the value of an ``owner_record`` (None: no record), is not erased."""
    return owner != ERASED


async def erase_owner(redis: Any, namespace: str, key: str) -> None:
    """Mark ``key``'s owner as erased and close its upload. Call before deleting the image: a
    PUT racing with the erasure then either lands before the delete or sees the mark."""
    await redis.set(owner_record(namespace, key), ERASED)
    await redis.delete(upload_record(namespace, key))


class OwnedMedia(MediaStore, Protocol):
    """A ``MediaStore`` that hides (and deletes) the images whose owner is erased
    (``infra.media_owners.OwnedMediaStore``)."""

    async def exists_owned(self, key: str, owner: str | None) -> bool:
        """``exists``, given the value of ``key``'s ``owner_record`` the caller read itself
        (in a round trip it shared with other reads): False for an orphan, which is deleted."""
        ...
