-- Acknowledges leased messages: they are done and leave Redis.
--
-- KEYS[1] inflight hash   KEYS[2] leases zset
-- ARGV    the tokens
-- Returns how many were still leased; the others had lost their lease (reap.lua returned them).
local held = 0
-- One HDEL and one ZREM per 1,000 tokens (unpack has a limit of a few thousand values).
for i = 1, #ARGV, 1000 do
  local last = math.min(i + 999, #ARGV)
  held = held + redis.call('HDEL', KEYS[1], unpack(ARGV, i, last))
  redis.call('ZREM', KEYS[2], unpack(ARGV, i, last))
end
return held
