-- Pushes leases' deadlines out to now + ARGV[1] (Redis's clock); leases already lost (reaped,
-- settled) are not recreated.
--
-- KEYS[1] leases zset
-- ARGV[1] lease length (ms), then the tokens
-- Returns how many of the tokens were still leased.
--@include clock
local deadline = redis_now_ms() + tonumber(ARGV[1])
local held = 0
local pairs_ = {}
for i = 2, #ARGV do
  pairs_[#pairs_ + 1] = deadline
  pairs_[#pairs_ + 1] = ARGV[i]
  if #pairs_ == 1000 or i == #ARGV then
    held = held + redis.call('ZADD', KEYS[1], 'XX', 'CH', unpack(pairs_))
    pairs_ = {}
  end
end
return held
