-- Hands leased messages back unchanged, at the head of the line (the next RPOP takes them):
-- used when a process stops before it could finish them. No attempt is counted.
--
-- KEYS[1] inflight hash   KEYS[2] leases zset   KEYS[3] ready list
-- ARGV    the tokens
-- Returns how many were handed back (lost leases are skipped). They go back in the order given:
-- the first token's message is taken first.
local n = 0
for i = #ARGV, 1, -1 do
  local token = ARGV[i]
  local message = redis.call('HGET', KEYS[1], token)
  if message then
    redis.call('HDEL', KEYS[1], token)
    redis.call('ZREM', KEYS[2], token)
    redis.call('RPUSH', KEYS[3], message)
    n = n + 1
  end
end
return n
