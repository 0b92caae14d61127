-- Moves entries to the dead letters: each onto the inspectable dead-letter list (capped at
-- the retention) and, when it names a task, onto the inbox the DLQ processor records from (the
-- task stays present: its message moved). A leased entry moves only if its lease is still held.
--
-- KEYS[1] inflight hash   KEYS[2] leases zset   KEYS[3] dead-letter list
-- KEYS[4] dead-letter inbox list   KEYS[5] present set
-- ARGV[1] retention (entries), then triples: token (empty: an entry that was never leased),
--         the dead-letter entry, its task id (empty: it names none; the entry was invalid)
-- Returns one integer per triple: 1 when dead-lettered, 0 when the lease was lost.
local out = {}
for i = 2, #ARGV, 3 do
  local token, entry, id = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  if token ~= '' and redis.call('HDEL', KEYS[1], token) == 0 then
    out[#out + 1] = 0
  else
    if token ~= '' then redis.call('ZREM', KEYS[2], token) end
    redis.call('LPUSH', KEYS[3], entry)
    if id ~= '' then
      redis.call('LPUSH', KEYS[4], entry)
      redis.call('SADD', KEYS[5], id)
    end
    out[#out + 1] = 1
  end
end
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[1]) - 1)
return out
