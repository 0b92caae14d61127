-- A service reports itself alive: it counts as alive until now + ARGV[2] (Redis's clock), and its
-- report replaces the one before. Services whose deadline has passed are forgotten.
--
-- KEYS[1] alive zset   KEYS[2] reports hash   KEYS[3] seen hash
-- ARGV[1] the process's id   ARGV[2] how long it counts as alive without reporting again (ms)
-- ARGV[3] its report (JSON)
-- Returns the time of the report (ms since the epoch, Redis's clock).
--@include clock
--@include forget-gone
local now = redis_now_ms()
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('HSET', KEYS[3], ARGV[1], now)
forget_gone(KEYS[1], KEYS[2], KEYS[3], now)
return now
