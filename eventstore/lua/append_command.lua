-- Append one command to a shard's command stream, at most once per idempotency key.
--
-- KEYS[1] {tag}:commands
-- then, each only when ARGV[2] names it (same hash tag as KEYS[1]):
--   {tag}:idem:<key>       "i": the client's idempotency key
--   {tag}:<role>:<agg>     "d": a document kept beside the command's aggregate (a package's
--                          own record, e.g. who submitted a job), set to ARGV[3] before the
--                          command is added, with the idempotency record's ttl
-- ARGV[1] ttl seconds of the idempotency record (and of the document)
-- ARGV[2] which optional keys follow KEYS[1]: "", "i", "d" or "id"
-- ARGV[3] the document's value ("" without one)
-- ARGV[4..] field/value pairs of the command envelope (see schemas.envelope)
--
-- Returns {entry_id, command_id, "new"|"dup", target aggregate id}.

local ttl = tonumber(ARGV[1])
local optional = ARGV[2]
local idem, document = nil, nil
local k = 2
if string.find(optional, "i", 1, true) then idem, k = KEYS[k], k + 1 end
if string.find(optional, "d", 1, true) then document = KEYS[k] end

local fields = {}
local cid, agg = "", ""
for i = 4, #ARGV, 2 do
  fields[#fields + 1] = ARGV[i]
  fields[#fields + 1] = ARGV[i + 1]
  if ARGV[i] == "id" then cid = ARGV[i + 1] end
  if ARGV[i] == "agg" then agg = ARGV[i + 1] end
end
if document then
  redis.call("SET", document, ARGV[3], "EX", ttl)
end
if idem then
  local seen = redis.call("HMGET", idem, "entry", "id", "agg")
  if seen[1] then return {seen[1], seen[2], "dup", seen[3]} end
end
local entry = redis.call("XADD", KEYS[1], "*", unpack(fields))
if idem then
  redis.call("HSET", idem, "entry", entry, "id", cid, "agg", agg)
  redis.call("EXPIRE", idem, ttl)
end
return {entry, cid, "new", agg}
