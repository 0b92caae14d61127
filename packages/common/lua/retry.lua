-- Replaces a leased message by its next try: onto the delayed zset when it is due later,
-- otherwise straight onto the ready list. Nothing happens if the lease was lost meanwhile
-- (the message was already returned by reap.lua).
--
-- KEYS[1] inflight hash   KEYS[2] leases zset   KEYS[3] ready list   KEYS[4] delayed zset
-- ARGV[1] token   ARGV[2] the message for the next try   ARGV[3] due time (ms), 0 for now
-- Returns 1 when retried, 0 when the lease was lost.
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('ZREM', KEYS[2], ARGV[1])
if tonumber(ARGV[3]) > 0 then
  redis.call('ZADD', KEYS[4], tonumber(ARGV[3]), ARGV[2])
else
  redis.call('LPUSH', KEYS[3], ARGV[2])
end
return 1
