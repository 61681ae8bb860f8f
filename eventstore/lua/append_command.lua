-- Append one command to a shard's command stream, at most once per idempotency key.
--
-- KEYS[1] {tag}:commands
-- KEYS[2] {tag}:idem:<key> or "" when the client gave no key
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
if KEYS[2] ~= "" then
  local seen = redis.call("HMGET", KEYS[2], "entry", "id", "agg")
  if seen[1] then return {seen[1], seen[2], "dup", seen[3]} end
end
local entry = redis.call("XADD", KEYS[1], "*", unpack(fields))
if KEYS[2] ~= "" then
  redis.call("HSET", KEYS[2], "entry", entry, "id", cid, "agg", agg)
  redis.call("EXPIRE", KEYS[2], tonumber(ARGV[1]))
end
return {entry, cid, "new", agg}
