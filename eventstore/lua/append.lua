-- Append events of one or more aggregates of ONE shard, atomically.
--
-- KEYS[1] {tag}:events   shard log, entry id <position>-0
-- KEYS[2] {tag}:head     last position assigned (integer)
-- KEYS[3] {tag}:eids     hash event id -> "<position>:<version>" (idempotency)
-- KEYS[4..3+A] {tag}:agg:<aggregate_id>, one per aggregate, in ARGV order
-- KEYS[4+A] {tag}:tracking:<name>, only when ARGV[3] is given (process recorders)
-- Every key is declared and carries the shard's hash tag: one slot on a Redis Cluster.
--
-- ARGV[1] A: number of aggregates
-- ARGV[2] dedupe: "1" = an event id already recorded makes the call an idempotent retry
-- ARGV[3] tracking notification id or ""
-- then, per aggregate: expected, count
--   expected: an integer = the aggregate's current version must equal it (0 = new)
--             "*" = append after whatever is there
--             "=" = events carry explicit versions; each must exceed the current version
-- then, per event (in aggregate order), ONE value: a JSON array of 9 strings
--   [id, agg, atype, ver, type, sv, data, meta, ts]  (ver is used only in "=" mode;
--   otherwise versions are assigned here). One packed argument per event keeps the client's
--   command packing cheap; cjson unpacks it inside Redis.
--
-- Returns {"ok"|"dup", pos1, ver1, pos2, ver2, ...}
-- Errors: "CONFLICT <agg> <current> <expected>", "DUPLICATE_PARTIAL <id>",
--         "TRACKING <current> <given>", "BADARGS <why>".
-- Everything is checked before the first write: Lua does not roll back.

local A = tonumber(ARGV[1])
local dedupe = ARGV[2] == "1"
local tracking = ARGV[3]
if not A or A < 1 then return redis.error_reply("BADARGS no aggregates") end
if #KEYS ~= 3 + A + (tracking ~= "" and 1 or 0) then
  return redis.error_reply("BADARGS expected " .. A .. " aggregate keys")
end
local tracking_key = KEYS[4 + A]

local function current_version(key)
  local last = redis.call("XREVRANGE", key, "+", "-", "COUNT", 1)
  if #last == 0 then return nil end
  return tonumber(string.match(last[1][1], "^(%d+)-"))
end

-- Parse the plan.
local plan = {}
local arg = 4
local total = 0
for i = 1, A do
  local expected = ARGV[arg]
  local n = tonumber(ARGV[arg + 1])
  arg = arg + 2
  if not n or n < 1 then return redis.error_reply("BADARGS empty aggregate batch") end
  plan[i] = {key = KEYS[3 + i], expected = expected, n = n}
  total = total + n
end
local first_event = arg
if #ARGV ~= first_event - 1 + total then
  return redis.error_reply("BADARGS expected " .. total .. " packed events")
end
local events = {}
for e = 0, total - 1 do
  local ok, ev = pcall(cjson.decode, ARGV[first_event + e])
  if not ok or type(ev) ~= "table" or #ev ~= 9 then
    return redis.error_reply("BADARGS event " .. e .. " is not a JSON array of 9 strings")
  end
  events[e] = ev
end

-- Idempotency: all known -> return the original positions; some known -> refuse.
if dedupe then
  local known, result = 0, {"dup"}
  for e = 0, total - 1 do
    local rec = redis.call("HGET", KEYS[3], events[e][1])
    if rec then
      known = known + 1
      local pos, ver = string.match(rec, "^(%d+):(%-?%d+)$")
      result[#result + 1] = tonumber(pos)
      result[#result + 1] = tonumber(ver)
    end
  end
  if known == total then return result end
  if known > 0 then
    for e = 0, total - 1 do
      local id = events[e][1]
      if redis.call("HEXISTS", KEYS[3], id) == 1 then
        return redis.error_reply("DUPLICATE_PARTIAL " .. id)
      end
    end
  end
end

-- Optimistic concurrency, per aggregate; assign versions.
local versions = {}
local e = 0
for i = 1, A do
  local p = plan[i]
  local current = current_version(p.key)
  local agg = events[e][2]
  if p.expected == "=" then
    local floor = current
    for j = 0, p.n - 1 do
      local v = tonumber(events[e + j][4])
      if not v or v < 0 then return redis.error_reply("BADARGS version") end
      if floor ~= nil and v <= floor then
        return redis.error_reply("CONFLICT " .. agg .. " " .. tostring(current) .. " " .. (v - 1))
      end
      floor = v
      versions[e + j] = v
    end
  else
    local base = current or 0
    if p.expected ~= "*" then
      local want = tonumber(p.expected)
      if want == nil then return redis.error_reply("BADARGS expected version") end
      if base ~= want then
        return redis.error_reply("CONFLICT " .. agg .. " " .. base .. " " .. want)
      end
    end
    for j = 0, p.n - 1 do versions[e + j] = base + j + 1 end
  end
  e = e + p.n
end

if tracking ~= "" then
  local given = tonumber(tracking)
  local current = tonumber(redis.call("GET", tracking_key) or "0")
  if not given or given <= current then
    return redis.error_reply("TRACKING " .. current .. " " .. tracking)
  end
end

-- Write.
local result = {"ok"}
local head = tonumber(redis.call("GET", KEYS[2]) or "0")
e = 0
for i = 1, A do
  local p = plan[i]
  for j = 0, p.n - 1 do
    local ev = events[e + j]
    local ver = versions[e + j]
    head = head + 1
    local fields = {
      "id", ev[1], "agg", ev[2], "atype", ev[3], "ver", ver,
      "type", ev[5], "sv", ev[6], "data", ev[7], "meta", ev[8], "ts", ev[9],
    }
    redis.call("XADD", KEYS[1], head .. "-0", unpack(fields))
    fields[#fields + 1] = "pos"
    fields[#fields + 1] = head
    redis.call("XADD", p.key, ver .. "-1", unpack(fields))
    if dedupe then redis.call("HSET", KEYS[3], ev[1], head .. ":" .. ver) end
    result[#result + 1] = head
    result[#result + 1] = ver
  end
  e = e + p.n
end
redis.call("SET", KEYS[2], head)
if tracking ~= "" then redis.call("SET", tracking_key, tracking) end
return result
