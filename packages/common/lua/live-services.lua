-- The services alive now (their deadline is after now, Redis's clock), after forgetting those
-- whose deadline has passed.
--
-- KEYS[1] alive zset   KEYS[2] reports hash   KEYS[3] seen hash
-- ARGV    none
-- Returns { now (ms), then per service: id, deadline (ms), last seen (ms), report (JSON) },
-- soonest deadline first.
--@include clock
--@include forget-gone
local now = redis_now_ms()
forget_gone(KEYS[1], KEYS[2], KEYS[3], now)
local alive = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. now, '+inf', 'WITHSCORES')
local result = { now }
for i = 1, #alive, 2 do
  local id = alive[i]
  result[#result + 1] = id
  result[#result + 1] = tonumber(alive[i + 1])
  result[#result + 1] = tonumber(redis.call('HGET', KEYS[3], id)) or 0
  result[#result + 1] = redis.call('HGET', KEYS[2], id) or ''
end
return result
