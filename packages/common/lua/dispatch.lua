-- Pushes task messages onto the ready list and records their tasks as present in Redis.
--
-- KEYS[1] ready list   KEYS[2] present set (ids of the tasks with a message in Redis)
-- ARGV    n, then n messages (the first is taken first), then their n task ids
-- Returns n.
local n = tonumber(ARGV[1])
-- One LPUSH and one SADD per 1,000 (unpack has a limit of a few thousand values).
for i = 2, n + 1, 1000 do
  local last = math.min(i + 999, n + 1)
  redis.call('LPUSH', KEYS[1], unpack(ARGV, i, last))
  redis.call('SADD', KEYS[2], unpack(ARGV, i + n, last + n))
end
return n
