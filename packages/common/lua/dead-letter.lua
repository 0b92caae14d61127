-- Moves a leased message to the dead letters: onto the inspectable dead-letter list (capped
-- at the retention) and onto the inbox the DLQ processor works from. Nothing happens if the
-- lease was lost meanwhile.
--
-- KEYS[1] inflight hash   KEYS[2] leases zset   KEYS[3] dead-letter list   KEYS[4] dead-letter inbox list
-- ARGV[1] token (empty: the entry was never leased)   ARGV[2] dead-letter entry   ARGV[3] retention (entries)
-- Returns 1 when dead-lettered, 0 when the lease was lost.
if ARGV[1] ~= '' then
  if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
  redis.call('ZREM', KEYS[2], ARGV[1])
end
redis.call('LPUSH', KEYS[3], ARGV[2])
redis.call('LTRIM', KEYS[3], 0, tonumber(ARGV[3]) - 1)
redis.call('LPUSH', KEYS[4], ARGV[2])
return 1
