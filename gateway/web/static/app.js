// The user page: sign in, scan (sample or photo) with live stages, result and reward, chat
// with a streamed answer, the character collection, and nearby collection points.
// It speaks only the public /api/v1 contract (API.md), like the Eco² PWA.
"use strict";

(() => {
  const { t, el, api, record } = Eco2;

  Eco2.addTexts({
    "tab.scan": ["스캔", "Scan"], "tab.chat": ["채팅", "Chat"],
    "tab.collection": ["내 컬렉션", "Collection"], "tab.nearby": ["주변 수거함", "Nearby"],
    "ops.link": ["운영", "Ops"], "logout": ["로그아웃", "Sign out"],
    "signin.title": ["Eco²에 오신 걸 환영해요", "Welcome to Eco²"],
    "signin.lead": ["사진 한 장으로 분리배출 방법을 알려 주고, 올바르게 버리면 캐릭터 친구를 만날 수 있어요.",
      "Show a photo, learn how to sort it, and earn a character friend for doing it right."],
    "signin.failed": ["로그인하지 못했어요. 다시 시도해 주세요.", "Sign-in failed. Please try again."],
    "signin.button": ["로그인", "Sign in"],
    "signin.note": ["개발 환경에서는 닉네임만 입력하는 개발용 로그인이 열려요.",
      "In development a nickname-only dev sign-in opens."],
    "scan.title": ["무엇을 버리려고 하나요?", "What are you throwing away?"],
    "scan.samples": ["예시 물건을 골라 보세요", "Pick a sample item"],
    "scan.upload": ["사진 올리기", "Upload a photo"],
    "scan.hint": ["무엇인지 적어 주세요 (선택)", "What is it? (optional)"],
    "scan.go": ["스캔하기", "Scan"],
    "scan.nofile": ["사진을 먼저 골라 주세요.", "Choose a photo first."],
    "scan.reconnecting": ["연결이 끊겨 다시 연결하는 중…", "Connection lost, reconnecting…"],
    "scan.failed": ["분석하지 못했어요: {message}", "The scan failed: {message}"],
    "stage.queued": ["접수", "Queued"], "stage.vision": ["이미지 분석", "Vision"],
    "stage.rule": ["배출 규칙 찾기", "Disposal rule"], "stage.answer": ["답변 작성", "Answer"],
    "stage.reward": ["캐릭터 보상", "Reward"], "stage.done": ["완료", "Done"],
    "status.waiting": ["대기", "waiting"], "status.started": ["진행 중", "running"],
    "status.completed": ["완료", "done"], "status.failed": ["실패", "failed"],
    "result.category": ["분류", "Category"], "result.steps": ["이렇게 버려요", "How to dispose"],
    "result.not_accepted": ["이건 안 돼요", "Not accepted"],
    "result.insufficiencies": ["확인이 필요해요", "Needs attention"],
    "result.answer": ["자세한 설명", "Full answer"],
    "reward.new": ["새 친구를 얻었어요!", "You earned a new friend!"],
    "reward.again": ["이미 함께하는 친구예요", "Already in your collection"],
    "reward.none": ["이번엔 캐릭터 보상이 없어요. 올바르게 버리면 친구를 만날 수 있어요.",
      "No character this time: sort it right to earn one."],
    "chat.title": ["무엇이든 물어보세요", "Ask anything"],
    "chat.placeholder": ["예: 페트병은 어떻게 버려?", "e.g. How do I throw away a PET bottle?"],
    "chat.send": ["보내기", "Send"],
    "chat.subagents": ["참고한 도우미", "Subagents used"],
    "chat.needs_location": ["위치가 필요해요.", "Your location is needed."],
    "chat.send_location": ["{place} 위치 보내기", "Send location: {place}"],
    "chat.failed": ["답변하지 못했어요: {message}", "No answer: {message}"],
    "chat.s1": ["페트병은 어떻게 버려?", "페트병은 어떻게 버려?"],
    "chat.s2": ["깨진 유리는 어디에 버려?", "깨진 유리는 어디에 버려?"],
    "chat.s3": ["내 캐릭터 알려줘", "내 캐릭터 알려줘"],
    "collection.title": ["내 캐릭터 컬렉션", "My characters"],
    "collection.locked": ["아직 못 만났어요", "Not met yet"],
    "nearby.title": ["주변 수거함과 재활용 센터", "Collection points nearby"],
    "nearby.locate": ["내 위치 사용", "Use my location"],
    "nearby.here": ["내 위치", "My location"],
    "nearby.where": ["{place} 기준 {radius} 이내", "Within {radius} of {place}"],
    "nearby.empty": ["이 근처에는 등록된 수거함이 없어요. 반경을 넓혀 보세요.",
      "No collection points here yet. Try a wider radius."],
    "nearby.denied": ["위치를 가져오지 못했어요. 구를 골라 주세요.", "Could not get your location; pick a district."],
    "error.generic": ["문제가 생겼어요: {message}", "Something went wrong: {message}"],
  });

  const SAMPLES = [
    { file: "pet_bottle", ko: "페트병", en: "PET bottle" },
    { file: "can", ko: "음료 캔", en: "Drink can" },
    { file: "cardboard_box", ko: "택배박스", en: "Cardboard box" },
    { file: "milk_carton", ko: "우유팩", en: "Milk carton" },
    { file: "glass_bottle", ko: "유리병", en: "Glass bottle" },
    { file: "battery", ko: "건전지", en: "Battery" },
  ];
  const SCAN_STAGES = ["queued", "vision", "rule", "answer", "reward", "done"];
  // Chat progress events are named after graph nodes; these are the subagents among them.
  const SUBAGENTS = {
    waste_rag: ["분리배출 지식", "Disposal knowledge"], character: ["캐릭터", "Characters"],
    location: ["위치", "Location"], bulk_waste: ["대형폐기물", "Bulk waste"],
    weather: ["날씨", "Weather"], collection_point: ["수거함 찾기", "Collection points"],
    recyclable_price: ["재활용 시세", "Recyclable prices"], web_search: ["웹 검색", "Web search"],
    image_generation: ["이미지 생성", "Image generation"], general: ["일반 대화", "General"],
    vision: ["이미지 분석", "Vision"],
  };
  const CHAT_EVENTS = ["queued", "intent", "aggregator", "answer", ...Object.keys(SUBAGENTS)];
  // Seoul district offices (approximate), for the nearby list without browser geolocation.
  const DISTRICTS = [
    ["서울시청", 37.5665, 126.9780], ["종로구", 37.5735, 126.9790], ["중구", 37.5641, 126.9979],
    ["용산구", 37.5324, 126.9900], ["성동구", 37.5633, 127.0371], ["광진구", 37.5385, 127.0823],
    ["동대문구", 37.5744, 127.0396], ["중랑구", 37.6063, 127.0927], ["성북구", 37.5894, 127.0167],
    ["강북구", 37.6396, 127.0257], ["도봉구", 37.6688, 127.0471], ["노원구", 37.6542, 127.0568],
    ["은평구", 37.6027, 126.9291], ["서대문구", 37.5791, 126.9368], ["마포구", 37.5663, 126.9019],
    ["양천구", 37.5170, 126.8665], ["강서구", 37.5509, 126.8495], ["구로구", 37.4954, 126.8874],
    ["금천구", 37.4569, 126.8955], ["영등포구", 37.5264, 126.8962], ["동작구", 37.5124, 126.9393],
    ["관악구", 37.4784, 126.9516], ["서초구", 37.4837, 127.0324], ["강남구", 37.5172, 127.0473],
    ["송파구", 37.5145, 127.1059], ["강동구", 37.5301, 127.1238],
  ];

  const $ = (id) => document.getElementById(id);
  const label = (pair) => (Eco2.lang === "ko" ? pair[0] : pair[1]);
  const state = { me: null, chatId: null, place: { name: DISTRICTS[0][0], lat: DISTRICTS[0][1], lon: DISTRICTS[0][2] } };

  // ---- sign-in and navigation ----------------------------------------------------------

  function showSignin(failed) {
    $("signin").hidden = false;
    $("signin-error").hidden = !failed;
    $("tabs").hidden = $("who").hidden = true;
    document.querySelectorAll(".view").forEach((v) => { v.hidden = true; });
  }

  async function signIn() {
    // The dev provider (or real Kakao when configured) sends the browser back to
    // <our origin>/#/home with the session cookies set.
    const started = await api("/api/v1/auth/kakao", { headers: { "X-Frontend-Origin": location.origin }, noRefresh: true });
    location.href = started.data.authorization_url;
  }

  async function signOut() {
    try { await api("/api/v1/auth/logout", { method: "POST", noRefresh: true }); } catch (_) { /* gone already */ }
    state.me = null;
    history.replaceState(null, "", "/");
    showSignin(false);
  }

  function route() {
    if (!state.me) return;
    const name = (location.hash.match(/^#\/(\w+)/) || [])[1] || "scan";
    const tab = ["scan", "chat", "collection", "nearby"].includes(name) ? name : "scan";
    document.querySelectorAll(".view").forEach((v) => { v.hidden = v.id !== `view-${tab}`; });
    document.querySelectorAll("#tabs a").forEach((a) => a.classList.toggle("active", a.dataset.tab === tab));
    if (tab === "collection") loadCollection().catch(showError);
    if (tab === "nearby") loadNearby().catch(showError);
  }

  function showError(error) {
    const box = $("scan-error");
    box.textContent = t("error.generic", { message: error.message || error });
    box.hidden = false;
  }

  // ---- scan ----------------------------------------------------------------------------

  function renderSamples() {
    $("samples").replaceChildren(...SAMPLES.map((s) => el("button", {
      type: "button", class: "sample", dataset: { sample: s.file }, onclick: () => scanSample(s),
    }, el("img", { src: `/static/samples/${s.file}.png`, alt: "" }), el("span", { text: Eco2.lang === "ko" ? s.ko : s.en }))));
  }

  async function scanSample(sample) {
    const blob = await (await fetch(`/static/samples/${sample.file}.png`)).blob();
    // The Korean name is the hint a person would type; the local vision model reads it.
    await startScan(blob, `${sample.file}.png`, sample.ko, Eco2.lang === "ko" ? sample.ko : sample.en);
  }

  async function scanUpload(event) {
    event.preventDefault();
    const file = $("upload-file").files[0];
    if (!file) { showError(t("scan.nofile")); return; }
    const hint = $("upload-hint").value.trim() || file.name.replace(/\.[^.]+$/, "");
    await startScan(file, file.name, hint, hint);
  }

  async function startScan(blob, filename, hint, title) {
    $("scan-error").hidden = true;
    $("scan-result").hidden = true;
    $("scan-progress").hidden = false;
    $("scan-item").textContent = title;
    $("scan-preview").src = URL.createObjectURL(blob);
    $("scan-connection").textContent = "";
    $("scan-bar").style.width = "0%";
    $("stages").replaceChildren(...SCAN_STAGES.map((s) => el("li", { dataset: { stage: s, status: "waiting" } },
      el("span", { class: "name", text: t(`stage.${s}`) }), el("span", { class: "status", text: t("status.waiting") }))));
    try {
      const type = blob.type || "image/png";
      const upload = await api("/api/v1/images/scan", { method: "POST", json: { filename, content_type: type } });
      const put = await fetch(upload.upload_url, { method: "PUT", body: blob, headers: upload.required_headers });
      if (!put.ok) throw new Error(`upload: HTTP ${put.status}`);
      const job = await api("/api/v1/scan", { method: "POST", json: { image_url: upload.cdn_url, user_input: hint } });
      followScan(job);
    } catch (error) {
      showError(error);
    }
  }

  function followScan(job) {
    const stream = new EventSource(job.stream_url);
    const live = { reward: null, answer: null };
    const onStage = (stage) => (event) => {
      const data = JSON.parse(event.data);
      record("scan", stage, event.lastEventId, data);
      $("scan-connection").textContent = "";
      const item = document.querySelector(`#stages li[data-stage="${stage}"]`);
      if (item) {
        item.dataset.status = data.status;
        item.querySelector(".status").textContent = t(`status.${data.status}`);
      }
      if (typeof data.progress === "number") $("scan-bar").style.width = `${data.progress}%`;
      if (stage === "reward" && data.result && data.result.reward) live.reward = data.result.reward;
      if (stage === "answer" && data.result && data.result.final_answer) live.answer = data.result.final_answer;
      if (stage === "done") {
        stream.close();
        if (data.status === "failed") showError(t("scan.failed", { message: data.message || "" }));
        else api(job.result_url).then((result) => renderResult(result, live)).catch(showError);
      }
    };
    SCAN_STAGES.forEach((stage) => stream.addEventListener(stage, onStage(stage)));
    stream.addEventListener("keepalive", () => {});
    stream.onerror = () => {
      // The browser reconnects by itself (with Last-Event-ID) unless the stream is closed.
      if (stream.readyState !== EventSource.CLOSED) $("scan-connection").textContent = t("scan.reconnecting");
    };
  }

  function renderResult(result, live) {
    const pipeline = result.pipeline_result || {};
    const cls = (pipeline.classification_result || {}).classification || {};
    const rules = pipeline.disposal_rules || {};
    const answer = pipeline.final_answer || {};
    // Steps are ordered: the live `answer` event keeps the rule's order (a result read back
    // from a JSONB column may not), so it wins when this page saw it.
    const ordered = live.answer && live.answer.disposal_steps;
    const steps = Object.entries(ordered || answer.disposal_steps || {});
    const notAccepted = rules.not_accepted || [];
    const issues = answer.insufficiencies || [];
    const box = $("scan-result");
    box.replaceChildren(...[
      el("p", { class: "category", dataset: { testid: "category" } },
        el("span", { class: "label", text: t("result.category") }),
        [cls.major_category, cls.middle_category, cls.minor_category].filter(Boolean).join(" › ")),
      steps.length ? el("h3", { text: t("result.steps") }) : null,
      steps.length ? el("ol", { class: "steps", dataset: { testid: "steps" } },
        steps.map(([name, text]) => el("li", {}, el("b", { text: name }), ` ${text}`))) : null,
      notAccepted.length ? el("h3", { text: t("result.not_accepted") }) : null,
      notAccepted.length ? el("ul", { class: "not-accepted", dataset: { testid: "not-accepted" } },
        notAccepted.map((x) => el("li", { text: x }))) : null,
      issues.length ? el("h3", { text: t("result.insufficiencies") }) : null,
      issues.length ? el("ul", { class: "issues" }, issues.map((x) => el("li", { text: typeof x === "string" ? x : JSON.stringify(x) }))) : null,
      answer.user_answer ? el("details", {}, el("summary", { text: t("result.answer") }), el("p", { class: "answer", text: answer.user_answer })) : null,
      rewardCard(result.reward, live.reward),
    ].filter(Boolean));
    box.hidden = false;
  }

  function rewardCard(reward, live) {
    if (!reward) return el("p", { class: "reward none", dataset: { testid: "reward" } }, t("reward.none"));
    const fresh = live ? live.newly_acquired !== false : true;
    return el("div", { class: "reward", dataset: { testid: "reward" } },
      avatar(reward.name),
      el("div", {},
        el("p", { class: "badge", text: t(fresh ? "reward.new" : "reward.again") }),
        el("p", { class: "character-name", text: `${reward.name} · ${reward.type || ""}` }),
        el("p", { class: "dialog", text: `“${reward.dialog}”` }),
        el("p", { class: "note", text: reward.match_reason || "" })));
  }

  function avatar(name) {
    let hue = 0;
    for (const ch of name || "?") hue = (hue * 31 + ch.codePointAt(0)) % 360;
    const node = el("span", { class: "avatar", text: (name || "?").slice(0, 1) });
    node.style.background = `hsl(${hue} 55% 55%)`;
    return node;
  }

  // ---- chat ----------------------------------------------------------------------------

  function renderSuggestions() {
    $("chat-suggestions").replaceChildren(...["chat.s1", "chat.s2", "chat.s3"].map((key) =>
      el("button", { type: "button", class: "chip", onclick: () => sendChat(t(key)) }, t(key))));
  }

  async function sendChat(text) {
    const message = (text || "").trim();
    if (!message) return;
    $("chat-input").value = "";
    $("messages").append(el("li", { class: "message user" }, el("p", { text: message })));
    const bubble = chatBubble();
    $("messages").append(bubble.node);
    try {
      if (!state.chatId) state.chatId = (await api("/api/v1/chat", { method: "POST", json: { title: message.slice(0, 40) } })).id;
      const job = await api(`/api/v1/chat/${state.chatId}/messages`, { method: "POST", json: { message } });
      followChat(job, bubble);
    } catch (error) {
      bubble.fail(error.message);
    }
  }

  function chatBubble() {
    const text = el("p", { class: "text", dataset: { testid: "answer" } });
    const steps = el("p", { class: "note progress" });
    const used = el("p", { class: "subagents", dataset: { testid: "subagents" } });
    const node = el("li", { class: "message assistant", dataset: { testid: "assistant" } }, steps, text, used);
    const bubble = {
      node, streamed: "", agents: new Set(),
      show() { text.textContent = bubble.streamed; node.scrollIntoView({ block: "end" }); },
      step(name) { steps.textContent = name; },
      agent(name) {
        if (!SUBAGENTS[name] || bubble.agents.has(name)) return;
        bubble.agents.add(name);
        used.replaceChildren(el("span", { class: "label", text: t("chat.subagents") }),
          ...[...bubble.agents].map((a) => el("span", { class: "chip", dataset: { agent: a }, text: label(SUBAGENTS[a]) })));
      },
      fail(message) { node.classList.add("failed"); text.textContent = t("chat.failed", { message }); },
      ask(job) {
        const button = el("button", { type: "button", class: "chip" }, t("chat.send_location", { place: state.place.name }));
        button.addEventListener("click", async () => {
          button.disabled = true;
          await api(`/api/v1/chat/${job.job_id}/input`, { method: "POST", json: { type: "location", data: { latitude: state.place.lat, longitude: state.place.lon } } });
        });
        steps.replaceChildren(t("chat.needs_location"), " ", button);
      },
    };
    return bubble;
  }

  function followChat(job, bubble) {
    const stream = new EventSource(job.stream_url);
    const listen = (name, handler) => stream.addEventListener(name, (event) => {
      if (event.data === undefined) return; // a connection error, not the server's `error` event
      const data = JSON.parse(event.data);
      record("chat", name, event.lastEventId, data);
      handler(data);
    });
    CHAT_EVENTS.forEach((name) => listen(name, (data) => {
      bubble.step(label(SUBAGENTS[name] || [t(`stage.${name}`), name]));
      bubble.agent(name);
      for (const agent of (data.result && data.result.subagents) || []) bubble.agent(agent);
    }));
    // The text is built exactly as the PWA builds it: tokens appended, recovery replaces.
    listen("token", (data) => { bubble.streamed += data.content || ""; bubble.show(); });
    listen("token_recovery", (data) => { bubble.streamed = data.accumulated || ""; bubble.show(); });
    listen("needs_input", () => bubble.ask(job));
    listen("keepalive", () => {});
    listen("error", (data) => { stream.close(); bubble.fail(data.message || ""); });
    listen("done", (data) => {
      stream.close();
      bubble.step("");
      if (data.status === "failed") { bubble.fail(data.message || ""); return; }
      const answer = (data.result && data.result.answer) || "";
      for (const agent of (data.result && data.result.subagents) || []) bubble.agent(agent);
      // The committed message is done.result.answer; if the streamed text differs (it never
      // should) the page says so in data-stream-matches and shows the committed one.
      bubble.node.dataset.final = "1";
      bubble.node.dataset.streamMatches = String(bubble.streamed === answer);
      if (bubble.streamed !== answer) { bubble.streamed = answer; }
      bubble.show();
    });
  }

  // ---- collection ----------------------------------------------------------------------

  async function loadCollection() {
    const [mine, catalog] = await Promise.all([api("/api/v1/users/me/characters"), api("/api/v1/character/catalog")]);
    const owned = new Map(mine.map((c) => [c.name, c]));
    $("collection-count").textContent = `${owned.size} / ${catalog.length}`;
    $("characters").replaceChildren(...catalog.map((c) => {
      const have = owned.get(c.name);
      return el("div", { class: `character${have ? "" : " locked"}`, dataset: { name: c.name, owned: String(Boolean(have)) } },
        avatar(have ? c.name : "?"),
        el("p", { class: "character-name", text: c.name }),
        el("p", { class: "note", text: have ? c.type : t("collection.locked") }),
        have ? el("p", { class: "dialog", text: c.dialog }) : null);
    }));
  }

  // ---- nearby --------------------------------------------------------------------------

  function renderDistricts() {
    $("district").replaceChildren(...DISTRICTS.map(([name], i) => el("option", { value: String(i), text: name })));
    $("district").addEventListener("change", () => {
      const [name, lat, lon] = DISTRICTS[Number($("district").value)];
      state.place = { name, lat, lon };
      loadNearby().catch(showError);
    });
    $("radius").addEventListener("change", () => loadNearby().catch(showError));
    $("locate").addEventListener("click", () => {
      if (!navigator.geolocation) { $("nearby-where").textContent = t("nearby.denied"); return; }
      navigator.geolocation.getCurrentPosition((pos) => {
        state.place = { name: t("nearby.here"), lat: pos.coords.latitude, lon: pos.coords.longitude };
        loadNearby().catch(showError);
      }, () => { $("nearby-where").textContent = t("nearby.denied"); }, { timeout: 10000 });
    });
  }

  async function loadNearby() {
    const radius = Number($("radius").value);
    const { lat, lon, name } = state.place;
    const places = await api(`/api/v1/locations/centers?lat=${lat}&lon=${lon}&radius=${radius}`);
    $("nearby-where").textContent = t("nearby.where", { place: name, radius: `${radius / 1000} km` });
    if (!places.length) { $("places").replaceChildren(el("li", { class: "note", text: t("nearby.empty") })); return; }
    $("places").replaceChildren(...places.slice(0, 50).map((p) => el("li", { class: "place" },
      el("span", { class: "distance", text: p.distance_text }),
      el("div", {},
        el("p", { class: "place-name", text: p.name }),
        el("p", { class: "note", text: p.road_address || p.lot_address || "" }),
        el("p", { class: "tags" }, (p.pickup_labels || p.pickup_categories || []).map((c) => el("span", { class: "chip", text: c })))))));
  }

  // ---- start ---------------------------------------------------------------------------

  async function start() {
    Eco2.translate();
    Eco2.setSignedOutHandler(() => { state.me = null; showSignin(false); });
    renderSamples();
    renderSuggestions();
    renderDistricts();
    $("signin-button").addEventListener("click", () => signIn().catch((e) => { $("signin-error").hidden = false; console.error(e); }));
    $("logout").addEventListener("click", signOut);
    $("upload-form").addEventListener("submit", (e) => scanUpload(e).catch(showError));
    $("chat-form").addEventListener("submit", (e) => { e.preventDefault(); sendChat($("chat-input").value); });
    window.addEventListener("hashchange", route);
    if (location.hash === "#/login") { showSignin(true); return; }
    try {
      state.me = await api("/api/v1/users/me");
    } catch (_) {
      state.me = null;
    }
    if (!state.me || !state.me.username) { showSignin(false); return; }
    $("signin").hidden = true;
    $("tabs").hidden = $("who").hidden = false;
    $("who-name").textContent = state.me.nickname || state.me.username;
    route();
    api("/api/v1/admin/me").then((who) => { $("ops-link").hidden = !who.admin; }).catch(() => {});
  }

  start();
})();
