// The operations page: shard heads, consumer groups, projections (with rebuild), dead letters
// (inspect, replay, purge) and a live tail of the log. Every action has a CLI twin:
// eco2 dlq list|show|replay|purge, eco2 projections status|rebuild.
"use strict";

(() => {
  const { t, el, api, record } = Eco2;
  const $ = (id) => document.getElementById(id);
  const ADMIN = "/api/v1/admin";
  const REFRESH_MS = 2000;
  const TAIL_ROWS = 200;

  Eco2.addTexts({
    "ops.title": ["운영", "Operations"], "ops.auto": ["자동 새로고침", "Auto refresh"],
    "ops.shards": ["샤드 로그", "Shard logs"], "ops.groups": ["컨슈머 그룹", "Consumer groups"],
    "ops.projections": ["프로젝션", "Projections"], "ops.dlq": ["DLQ (처리 실패 메시지)", "Dead letters"],
    "ops.tail": ["실시간 이벤트", "Live events"],
    "ops.figures": ["이 게이트웨이 (시작 이후)", "This gateway (since it started)"],
    "fig.requests": ["요청", "Requests"], "fig.errors": ["5xx", "5xx"], "fig.p95": ["요청 p95", "Request p95"],
    "fig.streams": ["열린 SSE", "Open SSE streams"], "fig.delivered": ["SSE 전달", "SSE deliveries"],
    "fig.p99": ["SSE 전달 p99", "SSE delivery p99"], "trace": ["트레이스", "Trace"],
    "rebuild.table": ["재구축 중 v{version}: {position} / {target} ({pct}%)", "building v{version}: {position} / {target} ({pct}%)"],
    "ops.cli": ["모든 작업은 CLI로도 할 수 있어요: eco2 dlq list|show|replay|purge, eco2 projections status|rebuild",
      "Every action is also a CLI command: eco2 dlq list|show|replay|purge, eco2 projections status|rebuild"],
    "ops.updated": ["{time} 갱신", "updated {time}"],
    "col.shard": ["샤드", "Shard"], "col.head": ["헤드 위치", "Head"], "col.events": ["이벤트", "Events"],
    "col.commands": ["커맨드", "Commands"], "col.dlq": ["DLQ", "DLQ"], "col.group": ["그룹", "Group"],
    "col.stream": ["스트림", "Stream"], "col.lag": ["지연", "Lag"], "col.pending": ["처리 중", "Pending"],
    "col.retry": ["재시도 대기", "Retry backlog"], "col.projection": ["프로젝션", "Projection"],
    "col.version": ["버전", "Version"], "col.positions": ["샤드별 위치 / 헤드", "Position / head per shard"],
    "col.per_shard": ["샤드별 지연 / 처리 중", "Lag / pending per shard"],
    "col.rebuild": ["재구축", "Rebuild"], "col.type": ["타입", "Type"], "col.attempts": ["시도", "Attempts"],
    "col.at": ["실패 시각", "Failed at"], "col.error": ["오류", "Error"],
    "dlq.replay_all": ["모두 재처리", "Replay all"], "dlq.purge_all": ["모두 삭제", "Purge all"],
    "dlq.inspect": ["보기", "Inspect"], "dlq.replay": ["재처리", "Replay"], "dlq.purge": ["삭제", "Purge"],
    "dlq.empty": ["처리 실패 메시지가 없어요.", "No dead letters."],
    "dlq.replayed": ["{n}건을 재처리 대기열로 보냈어요.", "Sent {n} back to their group's retry stream."],
    "dlq.purged": ["{n}건을 삭제했어요.", "Purged {n}."],
    "dlq.confirm_purge": ["정말 삭제할까요? 되돌릴 수 없어요.", "Delete for good? This cannot be undone."],
    "rebuild.start": ["재구축", "Rebuild"], "rebuild.running": ["재구축 중 {done} / {total} · {rate}/s", "rebuilding {done} / {total} · {rate}/s"],
    "rebuild.done": ["완료: v{previous} → v{version}, {done}개 이벤트, {seconds}초", "done: v{previous} → v{version}, {done} events in {seconds} s"],
    "rebuild.failed": ["실패: {error}", "failed: {error}"],
    "stale": ["코드가 더 새로움: 재구축 필요", "code is newer: rebuild"],
    "halted": ["s{shard} 멈춤 (위치 {position}): {type} {id} — {kind}: {error}. 새 릴리스 배포 또는 결정: {command}",
      "s{shard} STOPPED at position {position}: {type} {id} — {kind}: {error}. Deploy a release that can apply it, or decide: {command}"],
    "tail.pause": ["일시 정지", "Pause"], "tail.resume": ["다시 보기", "Resume"],
    "tail.live": ["연결됨", "live"], "tail.reconnecting": ["다시 연결하는 중…", "reconnecting…"],
    "error.generic": ["문제가 생겼어요: {message}", "Something went wrong: {message}"],
  });

  const num = (value) => el("td", { class: "num", text: value === null || value === undefined ? "–" : Number(value).toLocaleString() });
  const rebuildCells = new Map(); // projection name -> persistent cell content (survives refreshes)
  let traceUrl = null; // ECO2_TRACE_URL: "{trace_id}" is replaced (null: no trace UI)
  const traceLink = (id) => (traceUrl && id
    ? el("a", { href: traceUrl.replace("{trace_id}", id), target: "_blank", rel: "noopener", class: "trace" }, t("trace"))
    : null);

  // ---- overview ------------------------------------------------------------------------

  async function refresh() {
    try {
      const [overview, dlq] = await Promise.all([api(`${ADMIN}/overview`), api(`${ADMIN}/dlq?limit=200`)]);
      renderOverview(overview);
      renderDeadLetters(dlq.dead_letters);
      $("updated").textContent = t("ops.updated", { time: new Date().toLocaleTimeString() });
    } catch (error) {
      $("updated").textContent = t("error.generic", { message: error.message });
    }
  }

  const seconds = (value) => el("td", { class: "num", text: value === null || value === undefined ? "–" : `${(value * 1000).toFixed(1)} ms` });

  function renderOverview(o) {
    $("namespace").textContent = `namespace ${o.namespace}`;
    const f = o.figures;
    $("figures").replaceChildren(el("tr", {}, num(f.http_requests),
      el("td", { class: f.http_errors ? "num bad" : "num", text: f.http_errors }), seconds(f.http_p95_s),
      num(f.sse_streams), num(f.sse_delivered), seconds(f.sse_delivery_p99_s)));
    traceUrl = o.trace_url;
    $("shards").replaceChildren(...o.shards.map((s) => el("tr", { dataset: { shard: s.shard } },
      el("td", { text: s.shard }), num(s.head), num(s.events), num(s.commands),
      el("td", { class: s.dead_letters ? "num bad" : "num", text: s.dead_letters }))));
    // One row per group (and the stream it reads), totals first, shards as "s<k> lag/pending".
    const groups = new Map();
    for (const g of o.groups) {
      const key = `${g.group}/${g.stream}`;
      if (!groups.has(key)) groups.set(key, { group: g.group, stream: g.stream, lag: 0, pending: 0, retry: 0, shards: [] });
      const row = groups.get(key);
      row.lag += g.lag || 0; row.pending += g.pending; row.retry += g.retry_backlog; row.shards.push(g);
    }
    $("groups").replaceChildren(...[...groups.values()].map((g) => el("tr", { dataset: { group: g.group } },
      el("td", {}, el("b", { text: g.group }), el("p", { class: "note", text: g.stream })),
      el("td", { class: g.lag ? "num bad" : "num", text: g.lag }), num(g.pending), num(g.retry),
      el("td", {}, g.shards.map((x) => el("span", { class: "chip", text: `s${x.shard} ${x.lag ?? "?"}/${x.pending}` }))))));
    $("projections-error").hidden = !o.projections_error;
    $("projections-error").textContent = o.projections_error || "";
    $("projections").replaceChildren(...o.projections.map((p) => el("tr", { dataset: { projection: p.name } },
      el("td", {}, el("b", { text: p.name }), p.stale ? el("p", { class: "note error", text: t("stale") }) : null,
        ...(p.halted || []).map((h) => el("p", { class: "note error", dataset: { testid: `halted-${p.name}-${h.shard}` },
          text: t("halted", { shard: h.shard, position: h.position, type: h.event_type, id: h.event_id, kind: h.kind, error: h.error, command: h.skip_command }) }))),
      el("td", {}, p.active ? `v${p.active}` : "–", p.rebuild ? el("p", { class: "note", dataset: { testid: `building-${p.name}` },
        text: t("rebuild.table", { version: p.rebuild.version, position: p.rebuild.position, target: p.rebuild.target, pct: Math.floor(100 * p.rebuild.ratio) }) }) : null),
      el("td", {}, p.shards.map((s) => el("span", s.stopped
        ? { class: "chip bad", title: s.stopped, text: `s${s.shard} ${s.position}/${s.head} STOPPED` }
        : { class: "chip", text: `s${s.shard} ${s.position}/${s.head}` }))),
      el("td", { class: p.lag ? "num bad" : "num", text: p.lag }),
      el("td", { class: "rebuild" }, rebuildCell(p.name)))));
  }

  // ---- rebuilds ------------------------------------------------------------------------

  function rebuildCell(name) {
    if (rebuildCells.has(name)) return rebuildCells.get(name).node;
    const button = el("button", { type: "button", dataset: { rebuild: name } }, t("rebuild.start"));
    const fill = el("div", { class: "fill" });
    const bar = el("div", { class: "bar", hidden: true }, fill);
    const text = el("p", { class: "note", dataset: { testid: `rebuild-${name}` } });
    const cell = { node: el("div", {}, button, bar, text), button, bar, fill, text };
    button.addEventListener("click", () => startRebuild(name, cell));
    rebuildCells.set(name, cell);
    api(`${ADMIN}/projections/${name}/rebuild`).then((s) => {
      if (s.state === "running") followRebuild(name, cell);
      else if (s.state !== "none") showRebuild(cell, s);
    }).catch(() => {});
    return cell.node;
  }

  async function startRebuild(name, cell) {
    cell.button.disabled = true;
    try {
      showRebuild(cell, await api(`${ADMIN}/projections/${name}/rebuild`, { method: "POST" }));
      followRebuild(name, cell);
    } catch (error) {
      cell.button.disabled = false;
      cell.text.textContent = t("rebuild.failed", { error: error.message });
    }
  }

  function followRebuild(name, cell) {
    cell.button.disabled = true;
    const stream = new EventSource(`${ADMIN}/projections/${name}/rebuild/events`);
    stream.addEventListener("progress", (event) => {
      const s = JSON.parse(event.data);
      record("rebuild", s.state, event.lastEventId, s);
      showRebuild(cell, s);
      if (s.state !== "running") { stream.close(); cell.button.disabled = false; }
    });
  }

  function showRebuild(cell, s) {
    cell.bar.hidden = s.state !== "running";
    const pct = s.total ? Math.min(100, (100 * s.done) / s.total) : 0;
    cell.fill.style.width = `${pct}%`;
    cell.text.dataset.state = s.state;
    if (s.state === "running") cell.text.textContent = t("rebuild.running", { done: s.done, total: s.total ?? "?", rate: Math.round(s.rate || 0) });
    else if (s.state === "done") cell.text.textContent = t("rebuild.done", { previous: s.previous ?? "–", version: s.version, done: s.done, seconds: s.seconds });
    else if (s.state === "failed") cell.text.textContent = t("rebuild.failed", { error: s.error || "" });
  }

  // ---- dead letters ----------------------------------------------------------------------

  let shownLetters = null;
  function renderDeadLetters(letters) {
    // Re-rendered only when the set changes, so a button is not replaced under the pointer.
    const key = letters.map((d) => `${d.shard}/${d.id}`).join(",");
    if (key === shownLetters) return;
    shownLetters = key;
    $("dlq-count").textContent = `(${letters.length})`;
    if (!letters.length) {
      $("dlq").replaceChildren(el("tr", {}, el("td", { colspan: 8, class: "note", text: t("dlq.empty") })));
      return;
    }
    $("dlq").replaceChildren(...letters.map((d) => el("tr", { dataset: { dlq: d.id, shard: d.shard, aggregate: d.aggregate_id } },
      el("td", { text: d.shard }), el("td", { text: d.id }), el("td", { text: d.group }), el("td", { text: d.type }),
      num(d.attempts), el("td", { text: new Date(d.at * 1000).toLocaleString() }),
      el("td", { class: "bad", text: d.error.slice(0, 120) }),
      el("td", { class: "actions" },
        d.trace_link ? el("a", { href: d.trace_link, target: "_blank", rel: "noopener", class: "trace", dataset: { testid: "trace-link" } }, t("trace")) : null, " ",
        el("button", { type: "button", onclick: () => inspect(d) }, t("dlq.inspect")), " ",
        el("button", { type: "button", dataset: { action: "replay" }, onclick: () => act("replay", { shard: d.shard, ids: [d.id] }) }, t("dlq.replay")), " ",
        el("button", { type: "button", class: "danger", onclick: () => act("purge", { shard: d.shard, ids: [d.id] }) }, t("dlq.purge"))))));
  }

  async function inspect(letter) {
    const detail = await api(`${ADMIN}/dlq/${letter.shard}/${encodeURIComponent(letter.id)}`);
    const fields = { ...detail.fields };
    for (const key of ["data", "meta"]) {
      try { fields[key] = JSON.parse(fields[key]); } catch (_) { /* keep the text */ }
    }
    $("dlq-inspect").textContent = JSON.stringify(fields, null, 2);
    $("dlq-inspect").hidden = false;
  }

  async function act(action, where) {
    if (action === "purge" && !window.confirm(t("dlq.confirm_purge"))) return;
    try {
      const reply = await api(`${ADMIN}/dlq/${action}`, { method: "POST", json: where });
      const n = (reply.replayed || reply.purged || []).length;
      $("dlq-message").textContent = t(action === "replay" ? "dlq.replayed" : "dlq.purged", { n });
      $("dlq-inspect").hidden = true;
    } catch (error) {
      $("dlq-message").textContent = t("error.generic", { message: error.message });
    }
    await refresh();
  }

  // ---- live tail -----------------------------------------------------------------------

  function startTail() {
    const seen = new Set();
    let paused = false;
    $("tail-pause").addEventListener("click", () => {
      paused = !paused;
      $("tail-pause").textContent = t(paused ? "tail.resume" : "tail.pause");
    });
    const stream = new EventSource(`${ADMIN}/tail?backlog=30`);
    stream.onopen = () => { $("tail-state").textContent = t("tail.live"); };
    stream.onerror = () => { $("tail-state").textContent = t("tail.reconnecting"); };
    stream.addEventListener("entry", (event) => {
      const e = JSON.parse(event.data);
      const key = `${e.shard}:${e.position}`;
      if (seen.has(key) || paused) return; // a reconnect sends the backlog again
      seen.add(key);
      record("tail", e.type, key, e);
      const time = new Date(e.ts * 1000).toLocaleTimeString();
      $("tail").prepend(el("li", { dataset: { aggregate: e.aggregate_id, type: e.type }, title: e.preview },
        `${time}  s${e.shard}#${e.position}  `, el("span", { class: "type", text: e.type }),
        `  ${e.aggregate_type}:${e.aggregate_id.slice(0, 8)} v${e.version}  `, e.preview.slice(0, 80), " ", traceLink(e.trace_id)));
      while ($("tail").children.length > TAIL_ROWS) $("tail").lastChild.remove();
    });
  }

  // ---- start ---------------------------------------------------------------------------

  Eco2.translate();
  Eco2.setSignedOutHandler(() => { location.href = "/ops"; });
  $("dlq-replay-all").addEventListener("click", () => act("replay", { all: true }));
  $("dlq-purge-all").addEventListener("click", () => act("purge", { all: true }));
  refresh();
  startTail();
  setInterval(() => { if ($("auto").checked) refresh(); }, REFRESH_MS);
})();
