-- Returns messages whose lease ran out (their process died or hung) for another try. When
-- ARGV[2] > 0 the lost run counts as a failed attempt: `tries` goes up by one, and a message
-- that reaches ARGV[2] tries is dead-lettered with ARGV[5] as its error. A message that is
-- not a valid task message is dead-lettered as it is.
--
-- KEYS[1] inflight hash   KEYS[2] leases zset   KEYS[3] ready list
-- KEYS[4] dead-letter list   KEYS[5] dead-letter inbox list
-- ARGV[1] now (ms)   ARGV[2] max attempts (0: requeue unchanged)   ARGV[3] max messages
-- ARGV[4] dead-letter retention   ARGV[5] error   ARGV[6] failed_at (ISO 8601)
-- Returns {requeued, dead_lettered}.
local max_attempts = tonumber(ARGV[2])
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
local requeued, dead = 0, 0

local function dead_letter(entry)
  redis.call('LPUSH', KEYS[4], entry)
  redis.call('LTRIM', KEYS[4], 0, tonumber(ARGV[4]) - 1)
  redis.call('LPUSH', KEYS[5], entry)
  dead = dead + 1
end

for _, token in ipairs(expired) do
  local message = redis.call('HGET', KEYS[1], token)
  redis.call('HDEL', KEYS[1], token)
  redis.call('ZREM', KEYS[2], token)
  if message and max_attempts == 0 then
    redis.call('RPUSH', KEYS[3], message)
    requeued = requeued + 1
  elseif message then
    local ok, m = pcall(cjson.decode, message)
    if ok and type(m) == 'table' and type(m.id) == 'number' and type(m.message) == 'string'
        and type(m.time) == 'number' and type(m.tries) == 'number' then
      local tries = math.floor(m.tries) + 1
      local body = '{"id":' .. string.format('%d', m.id) .. ',"message":' .. cjson.encode(m.message)
        .. ',"time":' .. cjson.encode(m.time) .. ',"tries":' .. tries
      if tries >= max_attempts then
        dead_letter(body .. ',"error":' .. cjson.encode(ARGV[5]) .. ',"failed_at":"' .. ARGV[6] .. '"}')
      else
        redis.call('RPUSH', KEYS[3], body .. '}')
        requeued = requeued + 1
      end
    else
      dead_letter('{"error":' .. cjson.encode('invalid message: not a task message') .. ',"raw":'
        .. cjson.encode(message) .. ',"failed_at":"' .. ARGV[6] .. '"}')
    end
  end
end
return {requeued, dead}
