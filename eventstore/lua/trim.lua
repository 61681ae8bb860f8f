-- Trim one shard's hot tier after archiving (ARCHITECTURE §7). Every key is of ONE shard.
--
-- KEYS[1] {tag}:events  KEYS[2] {tag}:floor  KEYS[3] {tag}:cold  KEYS[4] {tag}:eids
-- KEYS[5..] {tag}:agg:<id> of aggregates that had events at positions <= ARGV[1]
-- ARGV[1] P: the new trim point; the caller guarantees every position <= P is archived and
--         that no consumer group, projector or dead letter still needs it
-- ARGV[2..] event ids whose idempotency records are dropped (their window has passed)
--
-- The shard log keeps positions > P. An aggregate stream loses its entries at positions <= P;
-- a stream left empty is deleted and {tag}:cold records P, so appends to it consult the archive
-- for its version. The floor only moves forward. Returns {trimmed log entries, streams deleted}.
local P = tonumber(ARGV[1])
if not P or P < 0 then return redis.error_reply("BADARGS trim point") end
local floor = tonumber(redis.call("GET", KEYS[2]) or "0")
local trimmed = 0
if P > floor then
  redis.call("SET", KEYS[2], P)
  trimmed = redis.call("XTRIM", KEYS[1], "MINID", (P + 1) .. "-0")
end

local function pos_of(fields)
  for i = 1, #fields, 2 do
    if fields[i] == "pos" then return tonumber(fields[i + 1]) end
  end
  return nil
end

local deleted = 0
for k = 5, #KEYS do
  local key = KEYS[k]
  local keep = nil
  local cursor = "-"
  while keep == nil do
    local page = redis.call("XRANGE", key, cursor, "+", "COUNT", 100)
    if #page == 0 then break end
    for _, entry in ipairs(page) do
      local pos = pos_of(entry[2])
      if pos == nil or pos > P then keep = entry[1]; break end
    end
    if keep == nil then cursor = "(" .. page[#page][1] end
  end
  if keep == nil then
    if redis.call("DEL", key) == 1 then deleted = deleted + 1 end
  else
    redis.call("XTRIM", key, "MINID", keep)
  end
end
if deleted > 0 then
  local cold = tonumber(redis.call("GET", KEYS[3]) or "0")
  if P > cold then redis.call("SET", KEYS[3], P) end
end

for i = 2, #ARGV, 500 do
  local last = math.min(i + 499, #ARGV)
  redis.call("HDEL", KEYS[4], unpack(ARGV, i, last))
end
return {trimmed, deleted}
