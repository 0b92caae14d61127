-- Returns messages whose lease ran out (their process died or hung) for another try, on
-- Redis's clock. When ARGV[1] > 0 the lost run counts as a failed try: `tries` goes up by one,
-- and a message that reaches ARGV[1] tries is dead-lettered with ARGV[4] as its error. A
-- message that is not a valid task message is dead-lettered as it is.
--
-- KEYS[1] inflight hash   KEYS[2] leases zset   KEYS[3] ready list
-- KEYS[4] dead-letter list   KEYS[5] dead-letter inbox list
-- ARGV[1] max attempts (0: requeue unchanged)   ARGV[2] max messages   ARGV[3] dead-letter retention
-- ARGV[4] error   ARGV[5] failed_at (ISO 8601)
-- Returns {requeued, dead_lettered}.
--@include clock
--@include message
local max_attempts = tonumber(ARGV[1])
local expired = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', redis_now_ms(), 'LIMIT', 0, tonumber(ARGV[2]))
local requeued, dead = 0, 0

for _, token in ipairs(expired) do
  local message = redis.call('HGET', KEYS[1], token)
  redis.call('HDEL', KEYS[1], token)
  redis.call('ZREM', KEYS[2], token)
  if message and max_attempts == 0 then
    redis.call('RPUSH', KEYS[3], message)
    requeued = requeued + 1
  elseif message then
    local m, why = decode_message(message)
    if m then
      m.tries = m.tries + 1
      -- The task's own attempts when it has them (isLastAttempt's rule: out of tries at the most).
      if m.tries >= (m.max_attempts or max_attempts) then
        local letter = encode_dead_letter(m, ARGV[4], ARGV[5])
        redis.call('LPUSH', KEYS[4], letter)
        redis.call('LPUSH', KEYS[5], letter)
        dead = dead + 1
      else
        redis.call('RPUSH', KEYS[3], encode_message(m))
        requeued = requeued + 1
      end
    else
      redis.call('LPUSH', KEYS[4], encode_invalid_entry('invalid message: ' .. why, message, ARGV[5]))
      dead = dead + 1
    end
  end
end
if dead > 0 then redis.call('LTRIM', KEYS[4], 0, tonumber(ARGV[3]) - 1) end
return {requeued, dead}
