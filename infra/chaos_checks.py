"""What a chaos run checks afterwards, each from the system's own records.

- every accepted command reached a terminal event (none lost), and none failed;
- each (user, character) a scan earned is granted exactly once (log of the user aggregates);
- the dead-letter queues are empty;
- every projection caught up with the log and equals a fresh rebuild (``verify``);
- every SSE transcript equals the job's stream: ids increasing (no duplicate), no version that
  produces an SSE event missing (a ``token_recovery`` stands for the deltas it folds), each
  event named as the stream says, ending with ``done``;
- no HTTP 5xx, except 503 while a dependency was down.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import schemas
from characters import CharacterCatalog
from commands.reward import reward_label
from eventstore.dlq import DeadLetters
from gateway.job_reads import JobReads
from infra.bootstrap import Resources, read_side
from infra.chaos_faults import OUTAGES, Injected
from projections.builtin import select
from projections.context import ReadSide
from projections.live_view import JobView, apply_event
from projections.status import projection_status
from projections.verify import verify
from schemas.chat import TurnCompleted, TurnFailed
from schemas.scan import AnswerCompleted, ScanCompleted, ScanFailed
from schemas.users import CharacterGranted

if TYPE_CHECKING:  # annotations only: the load generator is imported by the chaos run itself
    from infra.chaos_load import Traffic, Transcript

OUTAGE_GRACE_S = 15.0  # pools reconnect and in-flight requests finish after a server returns


@dataclass
class Check:
    name: str
    ok: bool
    summary: str
    details: list[str] = field(default_factory=list)


@dataclass
class Findings:
    checks: list[Check] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)


async def check_all(
    resources: Resources, traffic: Traffic, injected: list[Injected], *, settle_s: float
) -> Findings:
    """Wait (up to ``settle_s``) for jobs and projectors to finish, then run every check."""
    reads = JobReads(resources.redis, resources.layout, schemas.registry, resources.store.archive)
    findings = Findings()
    histories = await _settled_histories(reads, traffic, settle_s)
    findings.checks.append(_terminal(traffic, histories, findings.figures))
    findings.checks.append(await _rewards(resources, traffic, histories, findings.figures))
    findings.checks.append(await _dead_letters(resources, findings.figures))
    side = read_side(resources)
    findings.checks.append(await _caught_up(side, resources, settle_s))
    findings.checks.append(await _verified(side, findings.figures))
    findings.checks.append(_transcripts(traffic, histories, findings.figures))
    findings.checks.append(_http(traffic, injected, findings.figures))
    return findings


History = list[tuple[Any, Any]]


def _terminal_of(history: History) -> str | None:
    for _, message in history:
        if isinstance(message, ScanCompleted | TurnCompleted):
            return "completed"
        if isinstance(message, ScanFailed | TurnFailed):
            return "failed"
    return None


async def _settled_histories(reads: JobReads, traffic: Traffic, settle_s: float
                             ) -> dict[str, History]:
    deadline = time.monotonic() + settle_s
    histories: dict[str, History] = {}
    while True:
        pending = [j for j in traffic.accepted if _terminal_of(histories.get(j, [])) is None]
        for job_id in pending:
            histories[job_id] = list(await reads.events(job_id))
        if all(_terminal_of(histories[j]) for j in pending) or time.monotonic() > deadline:
            return histories
        await asyncio.sleep(1.0)


def _terminal(traffic: Traffic, histories: dict[str, History], figures: dict[str, Any]) -> Check:
    ends = Counter(_terminal_of(histories.get(j, [])) for j in traffic.accepted)
    lost = [j for j in traffic.accepted if _terminal_of(histories.get(j, [])) is None]
    failed = [j for j in traffic.accepted if _terminal_of(histories.get(j, [])) == "failed"]
    twice = [j for j in traffic.accepted if _terminals(histories.get(j, [])) > 1]
    kinds = Counter(traffic.accepted.values())
    figures.update(accepted=len(traffic.accepted), scans=kinds["scan"], chat_turns=kinds["chat"],
                   completed=ends["completed"], failed=len(failed), lost=len(lost),
                   never_accepted=traffic.given_up, terminal_twice=len(twice))
    ok = not lost and not failed and not twice and traffic.given_up == 0
    summary = (f"{len(traffic.accepted)} accepted ({kinds['scan']} scans, {kinds['chat']} chat"
               f" turns), {ends['completed']} completed, {len(failed)} failed, {len(lost)} lost,"
               f" {len(twice)} ended twice, {traffic.given_up} never accepted")
    return Check("commands → terminal", ok, summary,
                 [f"lost {j}" for j in lost[:10]] + [f"failed {j}" for j in failed[:10]]
                 + [f"ended twice {j}" for j in twice[:10]])


def _terminals(history: History) -> int:
    return sum(isinstance(m, ScanCompleted | ScanFailed | TurnCompleted | TurnFailed)
               for _, m in history)


async def _rewards(resources: Resources, traffic: Traffic, histories: dict[str, History],
                   figures: dict[str, Any]) -> Check:
    catalog = CharacterCatalog(resources.kb.characters())
    expected: set[tuple[str, str]] = set()
    for job_id, kind in traffic.accepted.items():
        for _, message in histories.get(job_id, []) if kind == "scan" else []:
            if isinstance(message, AnswerCompleted) and (label := reward_label(message)):
                character = catalog.match(label)
                if character is not None:
                    expected.add((message.user_id, character.code))
    users = {t.user_id for t in traffic.transcripts.values() if t.kind == "scan"}
    granted: Counter[tuple[str, str]] = Counter()
    # The raw log on purpose, not ``load_state``: the user's state keeps a character granted
    # twice once, so only the events show a duplicate grant.
    for user in users:
        for envelope in await resources.store.read_aggregate(user):
            message = schemas.registry.decode_envelope(envelope)
            if isinstance(message, CharacterGranted):
                granted[(user, message.character_code)] += 1
    duplicates = sorted(k for k, n in granted.items() if n > 1)
    missing = sorted(expected - set(granted))
    unearned = sorted(set(granted) - expected)
    figures.update(rewards_expected=len(expected), rewards_granted=len(granted),
                   rewards_duplicate=len(duplicates), rewards_missing=len(missing))
    ok = not duplicates and not missing and not unearned
    summary = (f"{len(expected)} (user, character) earned, {len(granted)} granted,"
               f" {len(duplicates)} duplicate, {len(missing)} missing, {len(unearned)} unearned")
    details = ([f"duplicate {u} {c}" for u, c in duplicates[:10]]
               + [f"missing {u} {c}" for u, c in missing[:10]]
               + [f"unearned {u} {c}" for u, c in unearned[:10]])
    return Check("rewards once", ok, summary, details)


async def _dead_letters(resources: Resources, figures: dict[str, Any]) -> Check:
    letters = await DeadLetters(resources.redis, resources.layout).find()
    figures["dlq"] = len(letters)
    by = Counter(f"{d.group}: {d.error[:120]}" for d in letters)
    return Check("DLQ empty", not letters, f"{len(letters)} dead letters",
                 [f"{n} × {what}" for what, n in by.most_common(10)])


async def _caught_up(side: ReadSide, resources: Resources, settle_s: float) -> Check:
    deadline = time.monotonic() + settle_s
    while True:
        heads = {k.shard: int(await resources.redis.get(k.head) or 0)
                 for k in resources.layout.all()}
        behind = []
        async with side.pool.acquire() as conn:
            for projection in select(None):
                status = await projection_status(conn, projection)
                behind += [f"{projection.name} shard {s} at {status.positions.get(s, 0)}/{h}"
                           for s, h in heads.items() if status.positions.get(s, 0) < h]
        if not behind or time.monotonic() > deadline:
            return Check("projectors caught up", not behind,
                         "every projection at the log's head" if not behind
                         else f"{len(behind)} (projection, shard) behind", behind[:10])
        await asyncio.sleep(1.0)


async def _verified(side: ReadSide, figures: dict[str, Any]) -> Check:
    differing, names = [], []
    for projection in select(None):
        report = await verify(side, projection)
        names.append(projection.name)
        differing += [f"{projection.name}.{t.table}: live {t.live_rows} rows, rebuilt"
                      f" {t.rebuilt_rows}" for t in report.tables if not t.clean]
    figures["verify"] = "equal" if not differing else f"{len(differing)} tables differ"
    return Check("projections verify all", not differing,
                 f"{len(names)} projections equal to a fresh rebuild" if not differing
                 else f"{len(differing)} tables differ", differing)


def expected_stages(history: History) -> dict[int, str]:
    """Version → SSE event name of every event the job's stream produces for a client."""
    view: JobView | None = None
    out: dict[int, str] = {}
    for envelope, message in history:
        if message is not None:
            view, live = apply_event(view, envelope, message)
            if live is not None:
                out[live.version] = live.stage
    return out


def transcript_faults(transcript: Transcript, stages: dict[int, str]) -> list[str]:
    """Why ``transcript`` differs from the job's stream of ``stages`` (empty when exact)."""
    faults: list[str] = []
    previous = 0
    for version, event in transcript.events:
        if version <= previous:
            faults.append(f"v{version} {event} after v{previous} (duplicate or out of order)")
            continue
        skipped = [v for v in stages if previous < v < version]
        if event == "token_recovery":  # stands for the deltas before it
            skipped = [v for v in skipped if stages[v] != "token"]
        if skipped:
            faults.append(f"gap before v{version}: {skipped[:5]} never received")
        wanted = "token" if event == "token_recovery" else event
        if stages.get(version) != wanted:
            faults.append(f"v{version} received as {event}, the stream says {stages.get(version)}")
        previous = version
    if not transcript.complete:
        faults.append(f"no done (last v{previous}, stream at v{max(stages, default=0)})")
    if not transcript.answer_ok:
        faults.append("the streamed text differs from done.result.answer")
    return faults


def _transcripts(traffic: Traffic, histories: dict[str, History], figures: dict[str, Any]) -> Check:
    bad: list[str] = []
    reconnects = 0
    ends: Counter[str] = Counter()
    for job_id, transcript in traffic.transcripts.items():
        reconnects += transcript.connections - 1
        ends.update(transcript.ends)
        faults = transcript_faults(transcript, expected_stages(histories.get(job_id, [])))
        bad += [f"{transcript.kind} {job_id}: {f}" for f in faults]
    figures.update(transcripts=len(traffic.transcripts), sse_reconnects=reconnects,
                   transcripts_bad=len({b.split(":")[0] for b in bad}))
    return Check("SSE transcripts exact", not bad,
                 f"{len(traffic.transcripts)} transcripts, {reconnects} resumed connections,"
                 f" {figures['transcripts_bad']} differ",
                 bad[:15] + [f"connections ended: {n} × {why}" for why, n in ends.most_common()])


def _http(traffic: Traffic, injected: list[Injected], figures: dict[str, Any]) -> Check:
    windows = [(i.started, i.ended + OUTAGE_GRACE_S) for i in injected if i.fault.kind in OUTAGES]
    allowed = [e for e in traffic.server_errors
               if e[2] == 503 and any(a <= e[0] <= b for a, b in windows)]
    wrong = [e for e in traffic.server_errors if e not in allowed]
    figures.update(http_5xx=len(wrong), http_503_in_outage=len(allowed),
                   http_4xx_unexpected=len(traffic.client_errors))
    by = Counter(f"{status} {route} at {time.strftime('%H:%M:%S', time.gmtime(at))}Z"
                 for at, route, status in wrong)
    by4 = Counter(f"{status} {route}" for _, route, status in traffic.client_errors)
    ok = not wrong and not traffic.client_errors
    summary = (f"{sum(traffic.statuses.values())} responses, {len(wrong)} 5xx outside outages,"
               f" {len(allowed)} × 503 during outages, {len(traffic.client_errors)} unexpected 4xx")
    return Check("HTTP: no 5xx", ok, summary,
                 [f"{n} × {w}" for w, n in by.most_common(10)]
                 + [f"{n} × {w} (unexpected 4xx)" for w, n in by4.most_common(10)])
