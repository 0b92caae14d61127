-- Leases up to ARGV[2] messages from the ready list, after moving due delayed retries onto it.
-- A leased message stays in Redis (inflight hash + leases zset) until it is acknowledged,
-- retried, dead-lettered or released; if its lease runs out, reap.lua returns it. Time is
-- Redis's own (TIME), so hosts whose clocks disagree agree on every deadline.
--
-- KEYS[1] ready list      KEYS[2] inflight hash (token -> message)
-- KEYS[3] leases zset (token -> deadline ms)   KEYS[4] delayed zset (message -> due ms)
-- ARGV[1] lease length (ms)   ARGV[2] max messages   ARGV[3] max delayed to promote
-- ARGV[4] a random nonce, unique to this call: the tokens are nonce:1, nonce:2, … so they never
--         repeat, not even after Redis lost its data while executors still hold older tokens
-- Returns {wait, token1, message1, token2, message2, ...}: when nothing was leased, wait is
-- how long (ms) until the earliest delayed retry is due, or -1 when none waits; otherwise -1.
--@include clock
local now = redis_now_ms()

local due = redis.call('ZRANGEBYSCORE', KEYS[4], '-inf', now, 'LIMIT', 0, tonumber(ARGV[3]))
if #due > 0 then
  redis.call('ZREM', KEYS[4], unpack(due))
  redis.call('LPUSH', KEYS[1], unpack(due))
end

local messages = redis.call('RPOP', KEYS[1], tonumber(ARGV[2]))
if not messages then
  local nxt = redis.call('ZRANGE', KEYS[4], 0, 0, 'WITHSCORES')
  if #nxt > 0 then return {math.max(0, tonumber(nxt[2]) - now)} end
  return {-1}
end

local deadline = now + tonumber(ARGV[1])
local out = {-1}
-- One HSET and one ZADD per 500 messages (unpack has a limit of a few thousand values).
local fields, leases = {}, {}
for i, message in ipairs(messages) do
  local token = ARGV[4] .. ':' .. i
  fields[#fields + 1] = token
  fields[#fields + 1] = message
  leases[#leases + 1] = deadline
  leases[#leases + 1] = token
  out[#out + 1] = token
  out[#out + 1] = message
  if #fields == 1000 or i == #messages then
    redis.call('HSET', KEYS[2], unpack(fields))
    redis.call('ZADD', KEYS[3], unpack(leases))
    fields, leases = {}, {}
  end
end
return out
