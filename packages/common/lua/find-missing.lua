-- Of the given task ids, returns those that no Redis structure holds a message for: not
-- ready, not leased, not waiting for a retry, not on their way to the DLQ processor. MySQL
-- says they are `processing`, so their message was lost (a crash between commit and push,
-- or Redis lost its data) and the sweeper must push them again. Atomic, so a message moving
-- between structures is never missed.
--
-- KEYS[1] ready list   KEYS[2] inflight hash   KEYS[3] delayed zset
-- KEYS[4] dead-letter inbox list   KEYS[5] dead-letter inbox inflight hash
-- ARGV    task ids
-- Returns the ids not found.
local known = {}
local function mark(messages)
  for _, message in ipairs(messages) do
    local id = string.match(message, '"id"%s*:%s*(%d+)')
    if id then known[id] = true end
  end
end
mark(redis.call('LRANGE', KEYS[1], 0, -1))
mark(redis.call('HVALS', KEYS[2]))
mark(redis.call('ZRANGE', KEYS[3], 0, -1))
mark(redis.call('LRANGE', KEYS[4], 0, -1))
mark(redis.call('HVALS', KEYS[5]))

local missing = {}
for _, id in ipairs(ARGV) do
  if not known[id] then missing[#missing + 1] = id end
end
return missing
