"""What auth keeps in Redis, every key with a TTL: login states (each used once), dev-login
codes, and the revocation list (token ids, sign-in sessions, per-user cut-offs).

Keys live under ``<namespace>:auth:``: outside the log, gone when they expire. A revocation
lives exactly as long as the token it revokes could still be presented. They carry no hash
tag, so on a Redis Cluster they spread over every slot (no hot slot); every command touches one
key there, and the revocation check pipelines its three reads (and those a route adds,
``is_revoked_reading``). A single Redis takes them as one ``MGET``: every request makes this
check, and the pipeline built, run and reset for it cost ≈ 30–50 µs more client CPU than the
one command.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, cast

import redis.asyncio as aioredis

from eventstore.redis_client import AsyncRedis
from gateway.auth_tokens import TokenClaims


@dataclass(frozen=True)
class LoginState:
    """A started login, stored under its random ``state`` until the callback uses it."""

    provider: str  # as requested: kakao | google | naver | dev
    backend: str  # who signs in: the provider itself, or "dev"
    origin: str  # the frontend origin to send the browser back to
    redirect_uri: str  # the callback URL given to the provider (must match at the exchange)
    expires_at: float


class AuthStore:
    """Auth state in Redis (``redis`` decodes responses)."""

    def __init__(self, redis: AsyncRedis, namespace: str) -> None:
        self.redis = redis
        self.prefix = f"{namespace}:auth"

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def token_key(self, kind: str, jti: str) -> str:
        """A token's own keys (``jti``, ``rotated``) share a hash tag: the rotation script
        touches both in one slot, while different tokens spread over the cluster."""
        return "{" + f"{self.prefix}:{jti}" + "}" + f":{kind}"

    # -- login states ---------------------------------------------------------------------

    async def put_state(self, state: str, login: LoginState, ttl_s: int) -> None:
        """Remember a started login for ``ttl_s`` seconds."""
        await self.redis.set(self._key("state", state), json.dumps(asdict(login)), ex=ttl_s)

    async def peek_state(self, state: str) -> LoginState | None:
        """The login ``state`` names, leaving it in place (the dev sign-in page)."""
        return _login(cast(str | None, await self.redis.get(self._key("state", state))))

    async def take_state(self, state: str) -> LoginState | None:
        """The login ``state`` names, removed atomically: a state is checked once only."""
        return _login(cast(str | None, await self.redis.getdel(self._key("state", state))))

    async def put_code(self, code: str, subject: str, ttl_s: int) -> None:
        """A one-time authorization code of the dev provider."""
        await self.redis.set(self._key("code", code), subject, ex=ttl_s)

    async def take_code(self, code: str) -> str | None:
        return cast(str | None, await self.redis.getdel(self._key("code", code)))

    # -- revocation -----------------------------------------------------------------------

    async def revoke(self, claims: TokenClaims, *, session: bool = False) -> None:
        """Revoke one token (and, with ``session``, every token of its sign-in session)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(self.token_key("jti", claims.jti), "1", ex=claims.remaining_s())
            if session:
                # A session lives at most one refresh lifetime from its last rotation.
                pipe.set(self._key("fam", claims.fam), "1", ex=claims.remaining_s())
            await pipe.execute()

    async def revoke_session(self, family: str, ttl_s: int) -> None:
        await self.redis.set(self._key("fam", family), "1", ex=ttl_s)

    async def cut_off_user(self, user_id: str, ttl_s: int, now: float | None = None) -> None:
        """Revoke every token of ``user_id`` issued up to now (account deletion)."""
        at = int(time.time() if now is None else now)
        await self.redis.set(self._key("user", user_id), str(at), ex=ttl_s)

    async def is_revoked(self, claims: TokenClaims, *, token: bool = True) -> bool:
        """True if the token (unless ``token`` is False), its session or its user's older
        tokens were revoked."""
        revoked, _ = await self.is_revoked_reading(claims, (), token=token)
        return revoked

    async def is_revoked_reading(self, claims: TokenClaims, keys: Sequence[str], *,
                                 token: bool = True) -> tuple[bool, list[str | None]]:
        """``is_revoked``, and the values of the string ``keys`` read in the same round trip
        (a route's own check rides along: one command fewer per request)."""
        reads = (self.token_key("jti", claims.jti), self._key("fam", claims.fam),
                 self._key("user", claims.sub), *keys)
        if isinstance(self.redis, aioredis.RedisCluster):  # other slots: one command each
            async with self.redis.pipeline(transaction=False) as pipe:
                for key in reads:
                    pipe.get(key)
                values = await pipe.execute()
        else:
            values = await self.redis.mget(reads)
        jti, fam, cutoff = values[:3]
        revoked = bool(jti and token) or bool(fam) or (
            cutoff is not None and claims.iat <= int(cutoff))
        return revoked, list(values[3:])

    async def rotate_refresh(self, claims: TokenClaims, rotated: str, grace_s: int
                             ) -> tuple[bool, str | None]:
        """Spend a refresh token, remembering what it was rotated into for ``grace_s``.

        ``(True, rotated)`` the first time; ``(False, first rotation)`` when it was spent less
        than ``grace_s`` ago (two tabs refreshing at once get the same pair); ``(False, None)``
        once the grace is over or if it was revoked: reuse."""
        reply = await self.redis.eval(
            _ROTATE, 2, self.token_key("jti", claims.jti), self.token_key("rotated", claims.jti),
            claims.remaining_s(), rotated, max(grace_s, 0),
        )
        first, pair = cast(list[Any], reply)
        return bool(int(first)), pair if isinstance(pair, str) else None

    async def use_refresh(self, claims: TokenClaims) -> bool:
        """Mark a refresh token used; False if it was used (or revoked) before: rotation."""
        first = await self.redis.set(
            self.token_key("jti", claims.jti), "used", ex=claims.remaining_s(), nx=True
        )
        return bool(first)


# KEYS: the token's jti key, its rotation key. ARGV: jti ttl, rotated pair, grace s.
_ROTATE = """
if redis.call('SET', KEYS[1], 'used', 'NX', 'EX', ARGV[1]) then
  if tonumber(ARGV[3]) > 0 then
    redis.call('SET', KEYS[2], ARGV[2], 'EX', ARGV[3])
  end
  return {1, ARGV[2]}
end
return {0, redis.call('GET', KEYS[2])}
"""


def _login(raw: str | None) -> LoginState | None:
    if raw is None:
        return None
    try:
        return LoginState(**json.loads(raw))
    except (ValueError, TypeError):
        return None
