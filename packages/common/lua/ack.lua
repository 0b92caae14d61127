-- Acknowledges leased messages: they are done and leave Redis, and so do their tasks' ids
-- from the present set.
--
-- KEYS[1] inflight hash   KEYS[2] leases zset   KEYS[3] present set
-- ARGV    n, then n tokens, then the task ids of their messages (any number, may be none)
-- Returns how many were still leased; the others had lost their lease (reap.lua returned them).
local n = tonumber(ARGV[1])
local held = 0
-- One command per 1,000 values (unpack has a limit of a few thousand values).
for i = 2, n + 1, 1000 do
  local last = math.min(i + 999, n + 1)
  held = held + redis.call('HDEL', KEYS[1], unpack(ARGV, i, last))
  redis.call('ZREM', KEYS[2], unpack(ARGV, i, last))
end
for i = n + 2, #ARGV, 1000 do
  redis.call('SREM', KEYS[3], unpack(ARGV, i, math.min(i + 999, #ARGV)))
end
return held
