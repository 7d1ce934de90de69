-- Copyright 2026 The Clearance Authors.
--
-- Licensed under the Apache License, Version 2.0 (the "License");
-- you may not use this file except in compliance with the License.
-- You may obtain a copy of the License at
--
--     http://www.apache.org/licenses/LICENSE-2.0
--
-- Unless required by applicable law or agreed to in writing, software
-- distributed under the License is distributed on an "AS IS" BASIS,
-- WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
-- See the License for the specific language governing permissions and
-- limitations under the License.

-- Spends one request from a token bucket: KEYS[1] is the bucket, ARGV[1] its burst (the
-- limit), ARGV[2] its refill in tokens per second. Answers {allowed (1 or 0), tokens left}.
--
-- The bucket is the state of golang.org/x/time/rate's Limiter, in a hash: tokens, at (when
-- tokens was true, in microseconds of the server's clock), burst and rate. Every step below is
-- the Limiter's own, in the same floating-point operations, so the verifier's headers are the
-- same with the store as without it: advance (refill since at, capped at the burst), a changed
-- burst or rate applied at now (SetLimitAt, SetBurstAt: the tokens are kept, capped at the new
-- burst), then AllowN (allowed when a token is left, or less than a nanosecond's refill short
-- of one). An absent bucket is a full one: the hash expires when it would be full again.
--
-- The server's clock (TIME) is the only one: every verifier replica sees the same refill.
-- Redis 5 and later (and Valkey) replicate a script's effects, so TIME before a write is fine.

local burst = tonumber(ARGV[1])
local rate = tonumber(ARGV[2])
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])

local tokens = burst
local changed = false
local s = redis.call('HMGET', KEYS[1], 'tokens', 'at', 'burst', 'rate')
if s[1] and s[2] and s[3] and s[4] then
  local oldBurst, oldRate = tonumber(s[3]), tonumber(s[4])
  tokens = tonumber(s[1])
  local elapsed = now - tonumber(s[2])
  if elapsed > 0 then
    -- time.Duration.Seconds, then Limit.tokensFromDuration
    local sec = math.floor(elapsed / 1000000)
    tokens = tokens + (sec + ((elapsed - sec * 1000000) * 1000) / 1e9) * oldRate
  end
  if tokens > oldBurst then
    tokens = oldBurst
  end
  changed = oldBurst ~= burst or oldRate ~= rate
  if tokens > burst then
    tokens = burst
  end
end

local left = tokens - 1
local allowed = left >= 0 or ((-left) / rate) * 1e9 < 1
if allowed then
  tokens = left
end

if allowed or changed then
  local ttl = math.ceil((burst - tokens) / rate * 1000)
  if ttl > 0 then
    redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'at', string.format('%.17g', now),
      'burst', ARGV[1], 'rate', ARGV[2])
    redis.call('PEXPIRE', KEYS[1], string.format('%d', ttl))
  else
    redis.call('DEL', KEYS[1])
  end
end

if allowed then
  return {1, string.format('%.17g', tokens)}
end
return {0, string.format('%.17g', tokens)}
