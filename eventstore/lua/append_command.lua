-- Append one command to a shard's command stream, at most once per idempotency key.
--
-- KEYS[1] {tag}:commands
-- KEYS[2] {tag}:idem:<key>, only when the client gave a key (same hash tag as KEYS[1])
-- ARGV[1] ttl seconds of the idempotency record
-- ARGV[2..] field/value pairs of the command envelope (see schemas.envelope)
--
-- Returns {entry_id, command_id, "new"|"dup", target aggregate id}.

local fields = {}
local cid, agg = "", ""
for i = 2, #ARGV, 2 do
  fields[#fields + 1] = ARGV[i]
  fields[#fields + 1] = ARGV[i + 1]
  if ARGV[i] == "id" then cid = ARGV[i + 1] end
  if ARGV[i] == "agg" then agg = ARGV[i + 1] end
end
local idem = KEYS[2]
if idem then
  local seen = redis.call("HMGET", idem, "entry", "id", "agg")
  if seen[1] then return {seen[1], seen[2], "dup", seen[3]} end
end
local entry = redis.call("XADD", KEYS[1], "*", unpack(fields))
if idem then
  redis.call("HSET", idem, "entry", entry, "id", cid, "agg", agg)
  redis.call("EXPIRE", idem, tonumber(ARGV[1]))
end
return {entry, cid, "new", agg}
