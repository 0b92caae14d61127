-- Redis's clock: the one clock every lease deadline, renewal, reap and retry due time is read
-- from, so hosts whose clocks disagree still agree on all of them.

-- Milliseconds since the epoch on Redis's clock: the one clock every deadline is read from.
local function redis_now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
