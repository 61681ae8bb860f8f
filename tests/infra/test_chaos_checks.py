"""The chaos run's judgements: an SSE transcript against its job's stream, 5xx against outages."""

from __future__ import annotations

from infra.chaos_checks import OUTAGE_GRACE_S, _http, _terminal, transcript_faults
from infra.chaos_faults import Fault, Injected, Kind
from infra.chaos_load import Traffic, Transcript
from schemas.scan import ScanCompleted, ScanFailed, Stage

SCAN = {1: "queued", 2: "vision", 3: "rule", 4: "answer", 5: "reward", 6: "done"}
CHAT = {1: "queued", 2: "intent", 3: "token", 4: "token", 5: "token", 6: "answer", 7: "done"}


def transcript(*events: tuple[int, str], complete: bool = True) -> Transcript:
    return Transcript("job", "scan", "u", events=list(events), complete=complete)


def test_an_exact_transcript_has_no_fault() -> None:
    assert transcript_faults(transcript(*SCAN.items()), SCAN) == []


def test_a_resumed_transcript_is_exact_when_nothing_repeats_or_misses() -> None:
    # Dropped after v2 and resumed with Last-Event-ID: 2 — the same events, one connection more.
    got = transcript(*SCAN.items())
    got.connections = 2
    assert transcript_faults(got, SCAN) == []


def test_a_duplicate_is_reported() -> None:
    events = [(1, "queued"), (2, "vision"), (2, "vision"), *[(v, SCAN[v]) for v in (3, 4, 5, 6)]]
    faults = transcript_faults(transcript(*events), SCAN)
    assert faults == ["v2 vision after v2 (duplicate or out of order)"]


def test_a_gap_is_reported() -> None:
    events = [(v, SCAN[v]) for v in (1, 2, 4, 5, 6)]
    assert transcript_faults(transcript(*events), SCAN) == ["gap before v4: [3] never received"]


def test_a_missing_done_is_reported() -> None:
    events = [(v, SCAN[v]) for v in (1, 2, 3)]
    faults = transcript_faults(transcript(*events, complete=False), SCAN)
    assert faults == ["no done (last v3, stream at v6)"]


def test_a_wrongly_named_event_is_reported() -> None:
    events = [(1, "queued"), (2, "rule"), *[(v, SCAN[v]) for v in (3, 4, 5, 6)]]
    assert transcript_faults(transcript(*events), SCAN) == [
        "v2 received as rule, the stream says vision"
    ]


def test_token_recovery_stands_for_the_deltas_it_folds_only() -> None:
    recovered = [(1, "queued"), (2, "intent"), (4, "token_recovery"), (5, "token"),
                 (6, "answer"), (7, "done")]
    assert transcript_faults(transcript(*recovered), CHAT) == []
    # A recovery does not excuse a missing non-token event before it.
    skipped = [(1, "queued"), (4, "token_recovery"), (5, "token"), (6, "answer"), (7, "done")]
    assert transcript_faults(transcript(*skipped), CHAT) == [
        "gap before v4: [2] never received"
    ]


def test_only_a_503_inside_an_outage_window_is_excused() -> None:
    outage = Injected(Fault(10, Kind.POSTGRES_STOP, hold_s=30), started=1000.0, ended=1030.0,
                      ok=True)
    kill = Injected(Fault(5, Kind.KILL, "gateway"), started=900.0, ended=901.0, ok=True)
    traffic = Traffic()
    traffic.server_errors += [
        (1010.0, "/chat/{id}", 503),  # during the outage: fine
        (1030.0 + OUTAGE_GRACE_S - 1, "/chat", 503),  # pools reconnecting: fine
        (1010.0, "/chat/{id}", 500),  # a 500 is never fine
        (900.5, "/scan", 503),  # a 503 while the gateway restarts is not an outage
    ]
    check = _http(traffic, [outage, kill], {})
    assert not check.ok
    assert check.details == ["1 × 500 /chat/{id} at 00:16:50Z", "1 × 503 /scan at 00:15:00Z"]


def test_lost_failed_and_twice_ended_jobs_fail_the_terminal_check() -> None:
    done, failed = ScanCompleted(user_id="u"), ScanFailed(user_id="u", stage=Stage.VISION,
                                                          error="x")
    traffic = Traffic(accepted={"ok": "scan", "lost": "scan", "failed": "scan", "twice": "scan"})
    histories = {"ok": [(None, done)], "lost": [], "failed": [(None, failed)],
                 "twice": [(None, done), (None, done)]}
    figures: dict[str, object] = {}
    check = _terminal(traffic, histories, figures)
    assert not check.ok
    assert (figures["lost"], figures["failed"], figures["terminal_twice"]) == (1, 1, 1)
    assert check.details == ["lost lost", "failed failed", "ended twice twice"]
    assert _terminal(Traffic(accepted={"ok": "scan"}), {"ok": [(None, done)]}, {}).ok
