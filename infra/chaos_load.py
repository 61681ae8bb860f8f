"""The users of a chaos run: scans and chat turns through the HTTP API, each followed on its SSE
stream like the PWA follows it, through every fault.

A user retries what a real client would retry — a dropped connection or a 503, under the same
idempotency key — and records everything the checks need: which commands were accepted, every
SSE event it received (across reconnects), and every HTTP status with its wall-clock time.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from infra.bench.chat import QUESTIONS
from infra.bench.http import StreamRefused, UserConnection, http_clients, sse_events
from infra.bench.scan import HINTS, upload_photo
from infra.chaos_faults import SseDrops

# What a client treats as "the connection broke": retry (POST: same idempotency key; SSE:
# resume from the last id it has).
_BROKEN = (OSError, ValueError, IndexError, asyncio.IncompleteReadError, TimeoutError)


@dataclass
class Transcript:
    """Every SSE event one job's follower received, in arrival order, across reconnects."""

    job_id: str
    kind: str  # "scan" | "chat"
    user_id: str
    events: list[tuple[int, str]] = field(default_factory=list)  # (id, event name)
    connections: int = 0
    ends: Counter[str] = field(default_factory=Counter)  # why each connection ended
    complete: bool = False  # received the terminal event
    answer_ok: bool = True  # chat: the streamed text equals done.result.answer


@dataclass
class Traffic:
    """What the users saw."""

    accepted: dict[str, str] = field(default_factory=dict)  # job id → "scan" | "chat"
    transcripts: dict[str, Transcript] = field(default_factory=dict)
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[tuple[float, str, int]] = field(default_factory=list)  # (time, route, status)
    client_errors: list[tuple[float, str, int]] = field(default_factory=list)  # unexpected 4xx
    given_up: int = 0  # commands never accepted before the deadline

    def saw(self, route: str, status: int) -> None:
        self.statuses[status] += 1
        if status >= 500:
            self.server_errors.append((time.time(), route, status))


class Users:
    """``scans`` scans and ``chat_turns`` chat turns by ``users`` users over ``load_s``."""

    def __init__(
        self, base_url: str, auth: Callable[[str], dict[str, str]], drops: SseDrops, *,
        scans: int, chat_turns: int, users: int, load_s: float, seed: int = 11,
    ) -> None:
        self.base_url = base_url
        self.auth = auth
        self.drops = drops
        self.scans, self.chat_turns, self.users = scans, chat_turns, users
        self.load_s = load_s
        self.rng = random.Random(seed)
        self.traffic = Traffic()
        self.deadline = 0.0  # monotonic; nothing is retried after it
        self.images: list[str] = []

    async def prepare(self) -> None:
        """Upload each scan user's photo (before the clock and the faults start)."""
        async with http_clients(self.base_url, count=4) as clients:
            self.images = list(await asyncio.gather(*(
                upload_photo(clients[i % len(clients)], self.auth(f"chaos-scan-{i}"))
                for i in range(self.users)
            )))

    async def run(self, *, drain_s: float) -> Traffic:
        """Submit everything over ``load_s``, then follow every stream to its end (at most
        ``drain_s`` more)."""
        self.deadline = time.monotonic() + self.load_s + drain_s
        async with http_clients(self.base_url, count=4) as clients:
            scan_users = [f"chaos-scan-{i}" for i in range(self.users)]
            images = self.images
            chatters = max(1, min(self.users, self.chat_turns // 4))
            began = time.monotonic()
            tasks = [
                self._scan(clients[i % len(clients)], scan_users[i % self.users],
                           images[i % self.users], began + self.load_s * i / self.scans)
                for i in range(self.scans)
            ]
            turns = [self.chat_turns // chatters + (i < self.chat_turns % chatters)
                     for i in range(chatters)]
            tasks += [
                self._chatter(clients[i % len(clients)], f"chaos-chat-{i}", turns[i],
                              began + self.load_s * i / chatters / 4)
                for i in range(chatters)
            ]
            await asyncio.gather(*tasks)
        return self.traffic

    # --- one scan --------------------------------------------------------------------------
    async def _scan(self, client: httpx.AsyncClient, user: str, image: str, at: float) -> None:
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        headers = self.auth(user)
        body = {"image_url": image, "user_input": self.rng.choice(HINTS)}
        reply = await self._submit("/api/v1/scan", body, headers, expect=202)
        if reply is None:
            return
        job_id = str(reply["job_id"])
        self.traffic.accepted[job_id] = "scan"
        transcript = await self._follow("scan", job_id, user, headers)
        if transcript.complete:
            await self._read(client, f"/api/v1/scan/{job_id}/result", "/scan/{job}/result",
                             headers)

    # --- one chat user: a chat, then its turns one after another ---------------------------
    async def _chatter(self, client: httpx.AsyncClient, user: str, turns: int, at: float) -> None:
        await asyncio.sleep(max(0.0, at - time.monotonic()))
        headers = self.auth(user)
        created = await self._submit("/api/v1/chat", {"title": "chaos"}, headers, expect=201)
        if created is None:
            return
        chat_id = str(created["id"])
        pause = self.load_s / max(1, turns)
        for _ in range(turns):
            started = time.monotonic()
            question, location = self.rng.choice(QUESTIONS)
            body: dict[str, Any] = {"message": question}
            if location is not None:
                body["user_location"] = location
            reply = await self._submit(f"/api/v1/chat/{chat_id}/messages", body, headers,
                                       expect=202, route="/chat/{id}/messages")
            if reply is None:
                continue
            job_id = str(reply["job_id"])
            self.traffic.accepted[job_id] = "chat"
            await self._follow("chat", job_id, user, headers)
            await self._read(client, f"/api/v1/chat/{chat_id}", "/chat/{id}", headers)
            await self._read(client, "/api/v1/chat", "/chat", headers)
            rest = pause - (time.monotonic() - started)
            if rest > 0 and time.monotonic() + rest < self.deadline:
                await asyncio.sleep(self.rng.uniform(0.5, 1.0) * rest)

    # --- HTTP with a client's retries ------------------------------------------------------
    async def _submit(
        self, path: str, body: dict[str, Any], headers: dict[str, str], *, expect: int,
        route: str | None = None,
    ) -> Any:
        """POST until ``expect`` (same idempotency key on every try); None if never."""
        route = route or path.removeprefix("/api/v1")
        conn = UserConnection(self.base_url, headers)
        key = uuid.uuid4().hex
        try:
            while time.monotonic() < self.deadline:
                try:
                    async with asyncio.timeout(30):
                        status, reply = await conn.post(path, body, X_Idempotency_Key=key)
                except _BROKEN:
                    conn.close()
                    await asyncio.sleep(0.5)
                    continue
                self.traffic.saw(route, status)
                if status == expect:
                    return reply
                if status < 500:
                    self.traffic.client_errors.append((time.time(), route, status))
                    return None
                await asyncio.sleep(1.0)
        finally:
            conn.close()
        self.traffic.given_up += 1
        return None

    async def _read(
        self, client: httpx.AsyncClient, path: str, route: str, headers: dict[str, str]
    ) -> None:
        """GET once more after each 503 or broken connection, until 200 or the deadline."""
        while time.monotonic() < self.deadline:
            try:
                response = await client.get(path, headers=headers, timeout=30)
            except httpx.HTTPError:
                await asyncio.sleep(0.5)
                continue
            self.traffic.saw(route, response.status_code)
            if response.status_code == 200:
                return
            if response.status_code < 500:
                self.traffic.client_errors.append((time.time(), route, response.status_code))
                return
            await asyncio.sleep(1.0)

    async def _follow(self, kind: str, job_id: str, user: str, headers: dict[str, str]) -> Transcript:
        """Read the job's stream to its terminal event, resuming with ``Last-Event-ID`` after
        every drop (ours — at the instant of an SSE-drop fault — or the server's)."""
        transcript = Transcript(job_id, kind, user)
        self.traffic.transcripts[job_id] = transcript
        route = f"/{kind}/{{job}}/events"
        stream = _JobStream(self.base_url, f"/api/v1/{kind}/{job_id}/events", headers, transcript)
        while not transcript.complete and time.monotonic() < self.deadline:
            transcript.connections += 1
            received = len(transcript.events)
            connection = asyncio.create_task(stream.connect())
            dropped = asyncio.create_task(self.drops.after(self.drops.generation))
            done, _ = await asyncio.wait(
                {connection, dropped}, timeout=max(1.0, self.deadline - time.monotonic()),
                return_when=asyncio.FIRST_COMPLETED,
            )
            dropped.cancel()
            if connection not in done:
                connection.cancel()  # closes the socket: the server sees a vanished client
                await asyncio.gather(connection, return_exceptions=True)
                transcript.ends["dropped by the client" if dropped in done else "deadline"] += 1
                self.drops.dropped += dropped in done
                continue
            try:
                connection.result()
                self.traffic.saw(route, 200)
            except StreamRefused as refused:
                transcript.ends[f"answered {refused.status}"] += 1
                self.traffic.saw(route, refused.status)
                if refused.status < 500:
                    self.traffic.client_errors.append((time.time(), route, refused.status))
                    return transcript
                await asyncio.sleep(1.0)
            except (*_BROKEN, httpx.HTTPError) as exc:
                transcript.ends[f"broken ({type(exc).__name__})"] += 1
                await asyncio.sleep(0.5)
            else:
                if not transcript.complete and len(transcript.events) == received:
                    await asyncio.sleep(0.3)  # closed with nothing new: look again shortly
        return transcript


class _JobStream:
    """One job's SSE stream as the PWA keeps it: the last id seen and the chat text so far."""

    def __init__(self, base_url: str, path: str, headers: dict[str, str],
                 transcript: Transcript) -> None:
        self.base_url, self.path, self.headers = base_url, path, headers
        self.transcript = transcript
        self.last, self.text = "", ""

    async def connect(self) -> None:
        """One connection, read until ``done`` or until the server closes it."""
        t = self.transcript
        extra = {"Last-Event-ID": self.last} if self.last else {}
        async for event, event_id, data in sse_events(
            self.base_url, self.path, {**self.headers, **extra}
        ):
            if event == "keepalive":
                continue
            self.last = event_id or self.last
            t.events.append((int(event_id) if event_id.isdigit() else -1, event))
            self.text = _text(event, data, self.text)
            if event == "done":
                t.complete = True
                if t.kind == "chat":
                    t.answer_ok = _answer(data) == self.text
                return
        t.ends["closed by the server"] += 1


def _text(event: str, data: str, text: str) -> str:
    """The chat text as the PWA keeps it: deltas appended, a recovery replaces it."""
    if event == "token":
        return text + str(json.loads(data).get("content", ""))
    if event == "token_recovery":
        return str(json.loads(data).get("accumulated", ""))
    return text


def _answer(data: str) -> str | None:
    result = json.loads(data).get("result") or {}
    answer = result.get("answer") if isinstance(result, dict) else None
    return answer if isinstance(answer, str) else None
