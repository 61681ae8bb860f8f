-- One batch of a shard log for the archiver, already in COPY text format (ARCHITECTURE §7).
--
-- KEYS[1] {tag}:events
-- ARGV[1] after: the archive checkpoint; the batch starts at position after + 1
-- ARGV[2] count: at most this many entries
-- ARGV[3] shard number (the first column)
--
-- Returns {rows, last position, event id at the last position}; rows is "" when the log has
-- nothing after ARGV[1]. One line per entry: shard, position, id, agg, atype, ver, type, sv,
-- data, meta, ts (the columns of eventstore.archive.COLUMNS), tab-separated, text fields
-- escaped for COPY. Building the text here spares the client a per-entry decode: the archiver
-- passes the reply to COPY as it is.
-- Errors: "GAP <expected> <found>" (positions must be contiguous from ARGV[1] + 1),
--         "MALFORMED <entry id>" (an entry without id, agg or type).
local after = tonumber(ARGV[1])
local entries = redis.call("XRANGE", KEYS[1], (after + 1) .. "-0", "+", "COUNT", tonumber(ARGV[2]))
if #entries == 0 then return {"", after, ""} end

local specials = {["\\"] = "\\\\", ["\t"] = "\\t", ["\n"] = "\\n", ["\r"] = "\\r"}
local function esc(s) return (string.gsub(s, "[\\\t\n\r]", specials)) end

local lines = {}
local expected = after + 1
local last_id = ""
local last_digits = ""
for i, entry in ipairs(entries) do
  local digits = string.match(entry[1], "^(%d+)-")
  if tonumber(digits) ~= expected then
    return redis.error_reply("GAP " .. expected .. " " .. entry[1])
  end
  local f = {}
  local kv = entry[2]
  for j = 1, #kv, 2 do f[kv[j]] = kv[j + 1] end
  if not f.id or not f.agg or not f.type then
    return redis.error_reply("MALFORMED " .. entry[1])
  end
  lines[i] = table.concat({
    ARGV[3], digits, esc(f.id), esc(f.agg), esc(f.atype or ""), f.ver or "0", esc(f.type),
    esc(f.sv or "1"), esc(f.data or "{}"), esc(f.meta or "{}"), f.ts or "0",
  }, "\t")
  expected = expected + 1
  last_id = f.id
  last_digits = digits
end
return {table.concat(lines, "\n") .. "\n", last_digits, last_id}
