-- Append events of one or more aggregates of ONE shard.
--
-- KEYS[1] {tag}:events   shard log, entry id <position>-0
-- KEYS[2] {tag}:head     last position assigned (integer)
-- KEYS[3] {tag}:eids     hash event id -> "<position>:<version>" (idempotency)
-- KEYS[4..3+A] {tag}:agg:<aggregate_id>, one per aggregate, in ARGV order
-- KEYS[4+A] {tag}:cold: set once the trimmer removed an aggregate stream whole
-- KEYS[5+A] {tag}:tracking:<name>, only when ARGV[3] is given (process recorders)
-- Every key is declared and carries the shard's hash tag: one slot on a Redis Cluster.
--
-- ARGV[1] A: number of aggregates
-- ARGV[2] mode:
--   "1" atomic, deduplicating: all aggregates are written or none; event ids already recorded
--       make the call an idempotent retry
--   "0" atomic, no deduplication (the eventsourcing recorders)
--   "g" a group of independent appends (group commit): each aggregate's run is checked and
--       written on its own, in ARGV order, exactly as if each were a separate "1" call
-- ARGV[3] tracking notification id or "" (atomic modes only)
-- ARGV[4] everything else as ONE msgpack value, [plan, events]:
--   plan: per aggregate (in KEYS order) expected, count
--     expected: an integer = the aggregate's current version must equal it (0 = new)
--               "*" = append after whatever is there
--               "=" = events carry explicit versions; each must exceed the current version
--     each optionally followed (as text) by "@<archived version or empty>:<archive
--     checkpoint>", the aggregate as the archive knew it; needed only when its stream is
--     missing and {tag}:cold is set (the stream may have been trimmed away): without it, or
--     with a checkpoint below {tag}:cold, that append fails with "COLD <agg>" and the client
--     asks the archive
--   events: every event of the call (in aggregate order) as arrays of 9 strings
--     [id, agg, atype, ver, type, sv, data, meta, ts]  (ver is used only in "=" mode;
--     otherwise versions are assigned here)
--   One packed argument per call keeps the client's work to one serialisation (redis-py
--   encodes each argument in Python; a group of 16 appends was 58 of them) and cmsgpack
--   unpacks it inside Redis. Values must be text: Redis 7.0's cmsgpack knows no bin type.
--
-- Several shards' groups in one call (ONE Redis node only: their keys are in different slots):
--   ARGV = "s", then per shard: its key count, and the 4 ARGV of its group-mode call;
--   KEYS = each shard's keys in the same order. Returns one reply per shard (its results, or
--   its error), as if each had been a call of its own, run one after the other: one script
--   run per round trip instead of one per shard (each run costs Redis ~15-25 µs before its
--   first append).
--
-- Returns, atomic modes: {"ok"|"dup", pos1, ver1, pos2, ver2, ...}
--          group mode:   one reply per aggregate: {"run", pos1, ver1, count} for a run written
--                        at consecutive positions with consecutive versions, {"err", "<error
--                        text>"}, or a list as above (a retry's "dup", explicit versions)
-- Errors: "CONFLICT <agg> <current> <expected>", "DUPLICATE_PARTIAL <id>", "COLD <agg>",
--         "TRACKING <current> <given>", "BADARGS <why>".
-- Everything is checked before the first write of an append: Lua does not roll back.

-- One call of the forms above (KEYS and ARGV shadow the globals: "s" runs it per shard).
local function run(KEYS, ARGV)
  local A = tonumber(ARGV[1])
  local mode = ARGV[2]
  local group = mode == "g"
  local dedupe = mode == "1" or group
  local tracking = ARGV[3]
  if not A or A < 1 then return redis.error_reply("BADARGS no aggregates") end
  if group and tracking ~= "" then return redis.error_reply("BADARGS tracking in a group") end
  if #KEYS ~= 4 + A + (tracking ~= "" and 1 or 0) then
    return redis.error_reply("BADARGS expected " .. A .. " aggregate keys and the cold key")
  end
  local cold_key, tracking_key = KEYS[4 + A], KEYS[5 + A]

  -- Parse the plan.
  if #ARGV ~= 4 then
    return redis.error_reply("BADARGS expected the plan and events as one packed argument")
  end
  local ok, call = pcall(cmsgpack.unpack, ARGV[4])
  if not ok or type(call) ~= "table" or type(call[1]) ~= "table" or type(call[2]) ~= "table" then
    return redis.error_reply("BADARGS expected a msgpack array [plan, events]")
  end
  local spec, events = call[1], call[2]
  if #spec ~= 2 * A then return redis.error_reply("BADARGS expected " .. A .. " plan entries") end
  local plan = {}
  local total = 0
  for i = 1, A do
    local expected, n, hint = spec[2 * i - 1], spec[2 * i], ""
    if type(expected) == "string" then expected, hint = string.match(expected, "^([^@]*)@?(.*)$") end
    if type(n) ~= "number" or n < 1 then return redis.error_reply("BADARGS empty aggregate batch") end
    plan[i] = {key = KEYS[3 + i], expected = expected, n = n, first = total + 1, hint = hint}
    total = total + n
  end
  if #events ~= total then
    return redis.error_reply("BADARGS expected a msgpack array of " .. total .. " events")
  end
  for e = 1, total do
    local ev = events[e]
    if type(ev) ~= "table" or #ev ~= 9 then
      return redis.error_reply("BADARGS event " .. e .. " is not an array of 9 strings")
    end
  end

  -- Aggregates an append expects to be new (expected 0) are looked up together: one EXISTS of
  -- all their streams. When none exists (the usual case: creations rarely conflict) each has no
  -- version yet, unless this call wrote it (the same aggregate twice in a group), so each skips
  -- its own XREVRANGE and, on a shard that never trimmed a stream away, its event ids' lookup
  -- (below); when any exists, each reads its version as the others do.
  local absent = {}     -- stream key -> true: known to have had no entry when the call began
  local touched = {}    -- stream key -> true: written by this call
  do
    local fresh = {}
    for i = 1, A do
      if tonumber(plan[i].expected) == 0 then fresh[#fresh + 1] = plan[i].key end
    end
    if #fresh > 0 and #fresh <= 1000 and redis.call("EXISTS", unpack(fresh)) == 0 then
      for _, key in ipairs(fresh) do absent[key] = true end
    end
  end

  local function current_version(key)
    if absent[key] and not touched[key] then return nil end
    local last = redis.call("XREVRANGE", key, "+", "-", "COUNT", 1)
    if #last == 0 then return nil end
    return tonumber(string.match(last[1][1], "^(%d+)-"))
  end

  -- Redis calls with one argument per event go in chunks: unpack() is bounded by Lua's stack.
  local CHUNK = 1000

  local cold = tonumber(redis.call("GET", cold_key) or "0")

  -- Idempotency records: one HMGET of the call's event ids (modes "1" and "g"), and the records
  -- this call writes, kept here as it goes (so a later append of a group sees an earlier one's
  -- events, as if each were a call of its own) and stored by one HSET at the end. The ids of an
  -- aggregate whose stream did not exist when the call began, on a shard whose {tag}:cold is
  -- unset (no stream was ever trimmed away whole), are not looked up: no earlier call can have
  -- written them to it, so this is no retry (a retry of a successful append finds its stream).
  local stored = {}  -- event index -> "<position>:<version>" or false, as read before any write
  if dedupe then
    local ids, at = {}, {}
    for i = 1, A do
      local p = plan[i]
      if not (absent[p.key] and cold == 0) then
        for e = p.first, p.first + p.n - 1 do
          ids[#ids + 1] = events[e][1]
          at[#at + 1] = e
        end
      end
    end
    for from = 1, #ids, CHUNK do
      local got = redis.call("HMGET", KEYS[3], unpack(ids, from, math.min(from + CHUNK - 1, #ids)))
      for i = 1, #got do stored[at[from + i - 1]] = got[i] end
    end
  end
  local written = {}   -- event id -> "<position>:<version>" written by this call
  local recorded = {}  -- event id, "<position>:<version>", ...: the HSET of the end

  -- Idempotency of events first..first+n-1: nil (none known), a "dup" result (all known), or an
  -- error text (some known).
  local function known_events(first, n)
    local result, first_known = nil, nil
    for e = first, first + n - 1 do
      local rec = written[events[e][1]] or stored[e]
      if rec then
        if first_known == nil then first_known, result = events[e][1], {"dup"} end
        local pos, ver = string.match(rec, "^(%d+):(%-?%d+)$")
        result[#result + 1] = tonumber(pos)
        result[#result + 1] = tonumber(ver)
      end
    end
    if first_known == nil then return nil, nil end
    if #result == 2 * n + 1 then return result, nil end
    return nil, "DUPLICATE_PARTIAL " .. first_known
  end

  -- Optimistic concurrency of one aggregate's run: its versions, or an error text.
  local function assign_versions(p)
    local current = current_version(p.key)
    local agg = events[p.first][2]
    if current == nil and cold > 0 then
      local hv, hc = string.match(p.hint, "^(%d*):(%d+)$")
      if not hc or tonumber(hc) < cold then return nil, "COLD " .. agg end
      current = tonumber(hv)
    end
    local versions = {}
    if p.expected == "=" then
      local floor = current
      for j = 0, p.n - 1 do
        local v = tonumber(events[p.first + j][4])
        if not v or v < 0 then return nil, "BADARGS version" end
        if floor ~= nil and v <= floor then
          return nil, "CONFLICT " .. agg .. " " .. tostring(current) .. " " .. (v - 1)
        end
        floor = v
        versions[j] = v
      end
    else
      local base = current or 0
      if p.expected ~= "*" then
        local want = tonumber(p.expected)
        if want == nil then return nil, "BADARGS expected version" end
        if base ~= want then return nil, "CONFLICT " .. agg .. " " .. base .. " " .. want end
      end
      for j = 0, p.n - 1 do versions[j] = base + j + 1 end
    end
    return versions, nil
  end

  local head = tonumber(redis.call("GET", KEYS[2]) or "0")

  -- Write one aggregate's run, appending "pos, ver" pairs to result when given. Numbers become
  -- text once each (every number argument of redis.call and every concatenation is a sprintf),
  -- and the fields go straight into the two XADDs (no table per event).
  local function write(p, versions, result)
    local log, key = KEYS[1], p.key
    touched[key] = true
    for j = 0, p.n - 1 do
      local ev = events[p.first + j]
      local ver = versions[j]
      head = head + 1
      local h, v = tostring(head), tostring(ver)
      redis.call("XADD", log, h .. "-0", "id", ev[1], "agg", ev[2], "atype", ev[3], "ver", v,
        "type", ev[5], "sv", ev[6], "data", ev[7], "meta", ev[8], "ts", ev[9])
      redis.call("XADD", key, v .. "-1", "id", ev[1], "agg", ev[2], "atype", ev[3], "ver", v,
        "type", ev[5], "sv", ev[6], "data", ev[7], "meta", ev[8], "ts", ev[9], "pos", h)
      if dedupe then
        local rec = h .. ":" .. v
        written[ev[1]] = rec
        recorded[#recorded + 1] = ev[1]
        recorded[#recorded + 1] = rec
      end
      if result then
        result[#result + 1] = head
        result[#result + 1] = ver
      end
    end
  end

  -- The idempotency records of everything written (one HSET per CHUNK events) and the head.
  local function finish()
    for from = 1, #recorded, 2 * CHUNK do
      redis.call("HSET", KEYS[3], unpack(recorded, from, math.min(from + 2 * CHUNK - 1, #recorded)))
    end
    redis.call("SET", KEYS[2], head)
  end

  if group then
    local results = {}
    for i = 1, A do
      local p = plan[i]
      local dup, err = known_events(p.first, p.n)
      local versions
      if not dup and not err then versions, err = assign_versions(p) end
      if err then
        results[i] = {"err", err}
      elseif dup then
        results[i] = dup
      elseif p.expected == "=" then
        results[i] = {"ok"}
        write(p, versions, results[i])
      else  -- versions[j] = versions[0] + j: one "run" reply, not a pair per event
        results[i] = {"run", head + 1, versions[0], p.n}
        write(p, versions, nil)
      end
    end
    finish()
    return results
  end

  -- Atomic: all known -> return the original positions; some known -> refuse.
  if dedupe then
    local dup, err = known_events(1, total)
    if err then return redis.error_reply(err) end
    if dup then return dup end
  end
  local versions = {}
  for i = 1, A do
    local err
    versions[i], err = assign_versions(plan[i])
    if err then return redis.error_reply(err) end
  end
  if tracking ~= "" then
    local given = tonumber(tracking)
    local current = tonumber(redis.call("GET", tracking_key) or "0")
    if not given or given <= current then
      return redis.error_reply("TRACKING " .. current .. " " .. tracking)
    end
  end
  local result = {"ok"}
  for i = 1, A do write(plan[i], versions[i], result) end
  finish()
  if tracking ~= "" then redis.call("SET", tracking_key, tracking) end
  return result
end

if ARGV[1] == "s" then
  local replies, k, a = {}, 0, 2
  while a <= #ARGV do
    local n = tonumber(ARGV[a])
    if not n or a + 4 > #ARGV or k + n > #KEYS then
      return redis.error_reply("BADARGS expected a key count and 4 arguments per shard")
    end
    -- A failing redis.call (a write refused half-way) ends this shard's run, not the others'.
    local ok, reply = pcall(run, {unpack(KEYS, k + 1, k + n)},
                            {ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4]})
    if not ok and type(reply) ~= "table" then reply = redis.error_reply(tostring(reply)) end
    replies[#replies + 1] = reply
    k, a = k + n, a + 5
  end
  if k ~= #KEYS then return redis.error_reply("BADARGS keys left over") end
  return replies
end
return run(KEYS, ARGV)
