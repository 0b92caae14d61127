-- Replaces leased messages by their next try: onto the delayed zset when due later, otherwise
-- straight onto the ready list. A message whose lease was lost meanwhile (reap.lua already
-- returned it) is left alone. Due times are on Redis's clock.
--
-- KEYS[1] inflight hash   KEYS[2] leases zset   KEYS[3] ready list   KEYS[4] delayed zset
-- ARGV    triples: token, the message for the next try, delay (ms; 0 for now)
-- Returns one integer per triple: 1 when retried, 0 when the lease was lost.
--@include clock
local now = redis_now_ms()
local out = {}
for i = 1, #ARGV, 3 do
  local token, message, delay = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  if redis.call('HDEL', KEYS[1], token) == 0 then
    out[#out + 1] = 0
  else
    redis.call('ZREM', KEYS[2], token)
    if delay > 0 then
      redis.call('ZADD', KEYS[4], now + delay, message)
    else
      redis.call('LPUSH', KEYS[3], message)
    end
    out[#out + 1] = 1
  end
end
return out
