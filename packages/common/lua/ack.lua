-- Acknowledges leased messages: they are done and leave Redis.
--
-- KEYS[1] inflight hash   KEYS[2] leases zset
-- ARGV    the tokens
-- Returns one integer per token: 1 if it was still leased, 0 if its lease had been lost.
local out = {}
for i, token in ipairs(ARGV) do
  out[i] = redis.call('HDEL', KEYS[1], token)
  redis.call('ZREM', KEYS[2], token)
end
return out
