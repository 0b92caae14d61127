-- Services that stopped reporting: each entry of the alive zset whose deadline has passed goes,
-- with its report and its last-seen time, a bounded number per call.

-- Removes up to 100 services whose deadline is at or before now_ms; returns how many.
local function forget_gone(alive, reports, seen, now_ms)
  local gone = redis.call('ZRANGEBYSCORE', alive, '-inf', now_ms, 'LIMIT', 0, 100)
  if #gone > 0 then
    redis.call('ZREM', alive, unpack(gone))
    redis.call('HDEL', reports, unpack(gone))
    redis.call('HDEL', seen, unpack(gone))
  end
  return #gone
end
