"""SSE streams of a job (``/api/v1/scan/{job}/events``, ``/api/v1/chat/{job}/events``).

Exact resume, gap-free and duplicate-free:

1. register with the ``LiveHub`` FIRST, so nothing published from now on is missed;
2. read the job's stream (``{tag}:agg:<job>``) and send every event after ``Last-Event-ID``
   (all of them on a fresh connection); a malformed or foreign id (not an integer, or beyond
   the job's version) is a clear reset: a comment saying so, then the full history;
3. forward live messages: a version already sent is skipped, the next one is sent as is, and a
   version gap (or a lost pub/sub connection, or a quiet keepalive interval) is filled from the
   job's stream. ``id:`` is the version, ``event:`` the stage; the stream ends after ``done``.

``done`` read from the job's stream is held until the job's snapshot holds it (bounded by
``LiveConfig.done_wait_s``): the snapshot projector may lag the log, and a client that has
seen ``done`` must be able to read its result at once. Live messages need no such wait — the
projector publishes only after writing the snapshot — so the held ``done`` waits for its own
live message, not on snapshot reads. A job finished longer ago than the
snapshot TTL has no snapshot to wait for: its ``done`` is sent at once (results fold the log).

A chat turn's fresh (or reset) connection gets the text so far as one ``token_recovery``
instead of the individual deltas.

A reconnect to a finished job that already had ``done`` gets ``204`` (EventSource stops
reconnecting). Unknown jobs and other users' jobs are 404.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from prometheus_client import Histogram
from sse_starlette import EventSourceResponse, ServerSentEvent
from sse_starlette.sse import SendTimeoutError
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from eventstore.cancellation import raise_if_cancelled
from gateway.auth import current_user
from gateway.errors import NotFound
from gateway.job_reads import JobOwner, JobReads
from gateway.live_hub import LiveHub
from gateway.live_subscription import Frame, Frames, PublishedEvent, Signal, Subscription
from gateway.metrics import GatewayMetrics
from gateway.params import parse_int
from gateway.state import LiveConfig, gateway_state
from projections.chat import with_token_recovery
from projections.live_view import JobView, LiveEvent, apply_event
from schemas.chat import CHAT_TURN
from schemas.envelope import Envelope
from schemas.registry import Message
from schemas.scan import SCAN_JOB

log = logging.getLogger(__name__)

_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
History = Sequence[tuple[Envelope, Message | None]]
RESYNC_POLL_S = 0.25  # a held ``done`` re-reads the snapshot this often while messages may be lost


def resume_point(raw: str | None, current: int) -> tuple[int, str | None]:
    """(version the client already has, reset note or None) for a ``Last-Event-ID`` value."""
    if raw is None or raw.strip() == "":
        return 0, None
    text = raw.strip()
    version = parse_int(text)
    if version is None:
        return 0, f"reset: Last-Event-ID {text[:40]!r} is not a version; replaying from the start"
    if version > current:
        return 0, (
            f"reset: Last-Event-ID {version} is beyond this job (at version {current}); "
            "replaying from the start"
        )
    return version, None


def to_sse(event: LiveEvent) -> ServerSentEvent:
    if isinstance(event, PublishedEvent) and event.frame is not None:
        return event.frame  # encoded once by the hub for every client of the job
    return Frame(event.data, event=event.stage, id=str(event.version))


def keepalive() -> ServerSentEvent:
    return ServerSentEvent(data=json.dumps({"ts": time.time()}), event="keepalive")


class JobStream:
    """The exact-resume state machine of one connection."""

    def __init__(
        self, job_id: str, sub: Subscription, reads: JobReads, config: LiveConfig, *, sent: int
    ) -> None:
        self.job_id = job_id
        self.sub = sub
        self.reads = reads
        self.config = config
        self.sent = sent  # the client has every version <= sent
        self.folded = 0  # versions folded into view (catch-up only; live messages are not)
        self.view: JobView | None = None
        self.finished = False
        self.appended_at = 0.0  # of the event just yielded (0: not an event, or unknown)

    async def run(
        self, history: History, note: str | None, metrics: GatewayMetrics | None = None,
        stream: str = "scan", *, grouped: bool = False,
    ) -> AsyncIterator[ServerSentEvent]:
        """The stream's messages; ``grouped``: live messages that are ready one after another
        come as one ``Frames`` (written with one send)."""
        gauge = metrics.sse_connections.labels(stream) if metrics else None
        delivery = metrics.sse_delivery.labels(stream) if metrics else None
        if gauge:
            gauge.inc()
        try:
            if note:
                yield ServerSentEvent(comment=note)
            if grouped:  # what happened so far, in one write
                sofar = [event async for event in self._feed(history)]
                if sofar:
                    yield sofar[0] if len(sofar) == 1 else Frames(sofar)
            else:
                async for event in self._feed(history):
                    yield event
            self.appended_at = 0.0
            # Code after a ``yield`` runs once the response has written that message: the
            # delivery time of each event sent from here on (not of the history above) is
            # observed there.
            while not self.finished:
                raise_if_cancelled()
                item = await self.sub.next(self.config.keepalive_s)
                if item is Signal.OVERFLOW:
                    if metrics:
                        metrics.sse_slow_disconnects.inc()
                    yield ServerSentEvent(comment="too far behind: reconnect with Last-Event-ID")
                    return
                if item is Signal.TIMEOUT:
                    yield keepalive()
                    # Anything missed is in the log: the hub read the job's version for every
                    # client timed out in the same tick at once, and only a client behind it
                    # re-reads its job (re-folding it on every keepalive of every stream cost
                    # more than the live messages, and queued 10,000 streams for 8 readers).
                    version = self.sub.log_version
                    if version is None:
                        version = await self.reads.version(self.job_id)
                    if version <= self.sent:
                        continue
                if isinstance(item, Signal):  # resync, or a timeout with versions missed
                    async for event in self._catch_up():
                        yield event
                        self._observe(delivery)
                    continue
                if item.version <= self.sent:
                    continue
                if item.version > self.sent + 1:  # a gap: fill it from the job's stream
                    async for event in self._catch_up():
                        yield event
                        self._observe(delivery)
                if item.version == self.sent + 1 and not self.finished:
                    self.sent = item.version
                    self.finished = item.terminal
                    ready = [item]
                    while grouped and not self.finished:
                        more = self.sub.take_next(self.sent + 1)
                        if more is None:
                            break
                        ready.append(more)
                        self.sent = more.version
                        self.finished = more.terminal
                    if len(ready) == 1:
                        self.appended_at = item.appended_at
                        yield to_sse(item)
                        self._observe(delivery)
                        continue
                    yield Frames([to_sse(live) for live in ready])
                    for live in ready:
                        self.appended_at = live.appended_at
                        self._observe(delivery)
        finally:
            self.sub.close()
            if gauge:
                gauge.dec()

    def _observe(self, delivery: Histogram | None) -> None:
        """The delivery latency of the event yielded last, if it was one."""
        if self.appended_at and delivery is not None:
            delivery.observe(max(0.0, time.time() - self.appended_at))
        self.appended_at = 0.0

    async def _catch_up(self) -> AsyncIterator[ServerSentEvent]:
        history = await self.reads.events(self.job_id, after=self.folded)
        raise_if_cancelled()
        async for event in self._feed(history):
            yield event

    async def _feed(self, history: History) -> AsyncIterator[ServerSentEvent]:
        for envelope, message in history:
            if envelope.version <= self.folded:
                continue
            self.folded = envelope.version
            live = None
            if message is not None:
                self.view, live = apply_event(self.view, envelope, message)
            if envelope.version <= self.sent:
                continue
            self.sent = envelope.version
            if live is None:
                continue
            self.appended_at = envelope.timestamp
            if live.terminal:
                await self._hold_done(live.version, envelope.timestamp)
                raise_if_cancelled()
                self.finished = True
            yield to_sse(live)
            if self.finished:
                return


    async def _hold_done(self, version: int, recorded_at: float) -> None:
        """Hold ``done`` read from the log until the job's snapshot holds it (at most
        ``done_wait_s``). The wait is for the job's own live message, which the projector
        publishes only after writing the snapshot: a snapshot read every few ms per stream, with
        every stream at its ``done`` when the projector lagged a saturated host, had kept the
        hub's few reader connections so busy that streams opening meanwhile timed out waiting
        for one (503s in ``eco2 bench chat`` at 2,500 users). The snapshot is read again only
        when messages may have been lost (a pub/sub reconnect) and at the deadline."""
        deadline = time.monotonic() + self.config.done_wait_s
        while not await self.reads.snapshot_holds(self.job_id, version, recorded_at):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                log.warning("job %s: snapshot not at v%d after %.1fs",
                            self.job_id, version, self.config.done_wait_s)
                return
            if await self.sub.published(version, remaining):
                return
            await asyncio.sleep(min(RESYNC_POLL_S, max(0.0, deadline - time.monotonic())))


class _EventStream(EventSourceResponse):
    """An ``EventSourceResponse`` that treats a client who stopped reading as a disconnect."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        except SendTimeoutError:
            log.info("sse: dropped a client that stopped reading")


@dataclass(frozen=True)
class Opened:
    """A registered stream with the job's history read after registration."""

    stream: JobStream
    history: History
    note: str | None  # the reset notice for a malformed or foreign Last-Event-ID

    def events(
        self, metrics: GatewayMetrics | None = None, kind: str = "scan", *, grouped: bool = False
    ) -> AsyncIterator[ServerSentEvent]:
        return self.stream.run(self.history, self.note, metrics, kind, grouped=grouped)


async def open_job_stream(
    hub: LiveHub, reads: JobReads, config: LiveConfig, job_id: str, last_event_id: str | None,
    *, owned: Callable[[JobOwner | None], bool] | None = None,
) -> Opened | None:
    """Register for ``job_id`` and read its history, with its owner in the same round trip
    (``NotFound`` when ``owned`` rejects it); None when the client already has the job's final
    event (nothing will ever follow)."""
    sub = hub.subscribe(job_id)  # FIRST: from here on nothing published is missed
    try:
        owner, history = await reads.owner_and_events(job_id)
        raise_if_cancelled()
        if owned is not None and not owned(owner):
            raise NotFound("job not found")
    except BaseException:
        sub.close()
        raise
    current = history[-1][0].version if history else 0
    start, note = resume_point(last_event_id, current)
    if start and start >= current and _finished(history):
        sub.close()
        return None
    return Opened(JobStream(job_id, sub, reads, config, sent=start), history, note)


async def _job_events(
    request: Request, *, stream: str, kind: str,
    fresh: Callable[[History], History] | None = None,
) -> Response:
    """The stream of a job of ``kind``; ``fresh`` rewrites the history a client that has
    nothing yet is sent."""
    user_id = await current_user(request)
    gw = gateway_state(request)
    job_id = request.path_params["job_id"]
    if not _JOB_ID.fullmatch(job_id):
        raise NotFound("job not found")

    def owned(owner: JobOwner | None) -> bool:
        return owner is not None and owner.user_id == user_id and owner.kind in ("", kind)

    raw = request.headers.get("last-event-id") or request.query_params.get("lastEventId")
    opened = await open_job_stream(gw.hub, gw.reads, gw.live, job_id, raw, owned=owned)
    if opened is None:
        return Response(status_code=204)  # it already has `done`: EventSource stops retrying
    if fresh is not None and opened.stream.sent == 0:  # fresh (or reset)
        opened = Opened(opened.stream, fresh(opened.history), opened.note)
    return _EventStream(
        opened.events(gw.metrics, stream, grouped=True),
        ping=0,  # our own `keepalive` events (named, as the client expects)
        send_timeout=gw.live.send_timeout_s,
        background=BackgroundTask(_leave, opened.stream.sub),  # also if the body never started
    )


async def _leave(sub: Subscription) -> None:
    # async: Starlette runs a plain function's background task in its thread pool, one
    # thread hand-off per stream's end (10,000 at once when a busy process drains).
    sub.close()


def _finished(history: History) -> bool:
    view: JobView | None = None
    for envelope, message in history:
        if message is not None:
            view, _ = apply_event(view, envelope, message)
    return bool(view and view.terminal)


async def scan_events(request: Request) -> Response:
    """``GET /scan/{job}/events``."""
    return await _job_events(request, stream="scan", kind=SCAN_JOB)


async def chat_events(request: Request) -> Response:
    """``GET /chat/{job}/events``: the text so far replaces the client's on a fresh connection."""
    return await _job_events(request, stream="chat", kind=CHAT_TURN, fresh=with_token_recovery)
