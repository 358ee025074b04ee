//! The Lua scripts Redis runs atomically: the GCRA step and its refund, and the outbox
//! attempt guard.

/// The GCRA, run atomically inside Redis with Redis's own clock, so every instance shares one
/// clock and one theoretical arrival time (TAT) per subject.
///
/// KEYS[1]: the subject's TAT (microseconds, Redis time).
/// ARGV[1]: emission interval in µs (PERIOD / COUNT); ARGV[2]: burst (COUNT);
/// ARGV[3]: `1` takes one unit when allowed, `0` only looks.
/// Returns `{allowed, remaining, retry_after_us, reset_us}`.
pub const GCRA_LUA: &str = r#"
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local take = ARGV[3] == '1'
local period = interval * burst
local tat = now
local stored = redis.call('GET', KEYS[1])
if stored then
  local v = tonumber(stored)
  if v and v > now then tat = v end
end
local new_tat = tat + interval
local allow_at = new_tat - period
if now < allow_at then
  return {0, 0, math.ceil(allow_at - now), math.ceil(tat - now)}
end
local remaining = math.floor((now - allow_at) / interval + 0.000001)
if take then
  redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.max(1, math.ceil((new_tat - now) / 1000)))
  return {1, remaining, 0, math.ceil(new_tat - now)}
end
return {1, remaining, 0, math.ceil(tat - now)}
"#;

/// Gives back one unit taken by [`GCRA_LUA`]: the TAT moves back one interval (never before
/// now; a bucket that is full again is deleted). Used when an attempt taken before a password
/// check turns out to be a success, which must not count as a failure.
pub const GCRA_REFUND_LUA: &str = r#"
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local stored = redis.call('GET', KEYS[1])
if not stored then return 0 end
local v = tonumber(stored)
if not v then return 0 end
local tat = v - interval
if tat <= now then
  redis.call('DEL', KEYS[1])
else
  redis.call('SET', KEYS[1], string.format('%.3f', tat), 'PX', math.max(1, math.ceil((tat - now) / 1000)))
end
return 1
"#;

/// Takes an outbox attempt's guard: `SET key token NX PX ttl`; when the key exists, its value
/// (another worker's token, or the done mark: `sent`, `delivered`). One round trip, one key.
/// Returns `{1, ''}` when taken, else `{0, value}`.
pub(super) const ATTEMPT_LOCK_LUA: &str = r#"
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1, ''}
end
local v = redis.call('GET', KEYS[1])
if not v then v = '' end
return {0, v}
"#;

/// Deletes an outbox attempt's guard only if `ARGV[1]` (the holder's token) still holds it.
pub(super) const ATTEMPT_RELEASE_LUA: &str = r#"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"#;
