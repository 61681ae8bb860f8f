"""A scriptable HTTP server on a loopback ephemeral port, for testing real SDKs and HTTP clients.

Tests queue replies (JSON bodies, SSE streams, error statuses, delays) and afterwards assert on
the recorded requests. It is a real server in a background thread, so the client under test
goes through its whole HTTP stack (connection pool, timeouts, retries) exactly as in production.

    with WireStub() as stub:
        stub.enqueue(Reply.json({"ok": True}), path="/v1/chat/completions")
        ... client(base_url=stub.url("/v1")) ...
        assert stub.requests[0].json()["model"] == "gpt-4o-mini"

A request no queued reply matches gets a 404 with a JSON error (and is still recorded), so a
test fails loudly instead of hanging.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Reply:
    """One scripted response.

    ``delay_s`` is waited before the status line (a client timeout fires during it);
    ``events`` makes it a ``text/event-stream`` reply, one ``data:`` line per event, sent with
    chunked encoding, ``event_delay_s`` between events and ``pauses[i]`` seconds before event
    ``i`` (a stream that stalls part-way).
    """

    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)
    events: Sequence[str] | None = None
    delay_s: float = 0.0
    event_delay_s: float = 0.0
    pauses: Mapping[int, float] = field(default_factory=dict)

    @classmethod
    def json(cls, payload: Any, status: int = 200, **kw: Any) -> Reply:
        """A JSON body (``payload`` is serialised as is)."""
        return cls(status=status, body=json.dumps(payload).encode(), **kw)

    @classmethod
    def sse(cls, payloads: Iterable[Any], *, done_marker: str | None = None, **kw: Any) -> Reply:
        """A server-sent-event stream: each payload (dict → JSON, str as is) is one ``data:``
        event; ``done_marker`` (e.g. ``"[DONE]"``) is sent last when given."""
        events = [p if isinstance(p, str) else json.dumps(p) for p in payloads]
        if done_marker is not None:
            events.append(done_marker)
        return cls(events=events, content_type="text/event-stream", **kw)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # without the query string
    query: str
    headers: Mapping[str, str]  # lower-cased names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def params(self) -> dict[str, str]:
        """The query string's parameters, each with its first value."""
        return {k: v[0] for k, v in parse_qs(self.query).items()}


@dataclass
class _Queued:
    reply: Reply
    path: str | None  # substring the request path must contain; None matches any


class WireStub:
    """The server; use as a context manager (or ``start()``/``stop()``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._queue: list[_Queued] = []
        self._requests: list[RecordedRequest] = []
        self._stopping = threading.Event()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        # a short poll interval makes stop() (which waits for the serve loop) fast
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    # lifecycle -------------------------------------------------------------------------------
    def start(self) -> WireStub:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes handlers sleeping in a scripted delay
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> WireStub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # scripting -------------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def url(self, suffix: str = "") -> str:
        return self.base_url + suffix

    def enqueue(self, *replies: Reply, path: str | None = None) -> None:
        """Queue replies, served in order to requests whose path contains ``path``."""
        with self._lock:
            self._queue.extend(_Queued(r, path) for r in replies)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def pending(self) -> int:
        """How many queued replies were not used yet."""
        with self._lock:
            return len(self._queue)

    # used by the handler ---------------------------------------------------------------------
    def _take(self, request: RecordedRequest) -> Reply | None:
        with self._lock:
            self._requests.append(request)
            for i, queued in enumerate(self._queue):
                if queued.path is None or queued.path in request.path:
                    return self._queue.pop(i).reply
        return None


def _handler_for(stub: WireStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, like real APIs; SSE uses chunked encoding

        def do_GET(self) -> None:
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def log_message(self, format: str, *args: Any) -> None:
            pass  # keep test output clean

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            parts = urlsplit(self.path)
            recorded = RecordedRequest(
                method=self.command,
                path=parts.path,
                query=parts.query,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
            )
            reply = stub._take(recorded)
            if reply is None:
                reply = Reply.json(
                    {"error": {"message": f"wirestub: no reply queued for {parts.path}"}},
                    status=404,
                )
            try:
                self._send(reply)
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True  # the client gave up (timeout): expected

        def _send(self, reply: Reply) -> None:
            if reply.delay_s and stub._stopping.wait(reply.delay_s):
                self.close_connection = True
                return
            self.send_response(reply.status)
            self.send_header("Content-Type", reply.content_type)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if reply.events is None:
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
                return
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Cache-Control", "no-cache")
            self.end_headers()
            for n, event in enumerate(reply.events):
                pause = reply.pauses.get(n, reply.event_delay_s if n else 0.0)
                if pause and stub._stopping.wait(pause):
                    self.close_connection = True
                    return
                self._chunk(f"data: {event}\n\n".encode())
            self._chunk(b"")  # terminating chunk

        def _chunk(self, data: bytes) -> None:
            self.wfile.write(f"{len(data):X}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()

    return Handler
