// The GCRA of GCRA.swift as a Redis script, so that every bulkheadd sharing a Redis
// decides against one state per tenant, atomically, by Redis's own clock. It is loaded
// once per connection (SCRIPT LOAD) and called by its SHA1 (EVALSHA); a NOSCRIPT answer
// (Redis restarted, SCRIPT FLUSH) loads it again.
//
// Times are microseconds (Lua numbers are doubles: exact up to 2^53 µs, far past 2200).
// A key holds "TAT INTERVAL" so a changed policy keeps the requests already used, as the
// memory backend does; it expires when its bucket is full again.
//   KEYS: one per policy.   ARGV: per policy interval_us, tolerance_us, shadow (0|1).
//   Reply: {admitted, retry_us, then per policy remaining, reset_us, admits}.
import COpenSSL

enum RedisScript {
    static let source = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
        local n = #KEYS
        local tats, nexts, admits = {}, {}, {}
        local admitted, retry = 1, 0
        for i = 1, n do
          local interval = tonumber(ARGV[3 * i - 2])
          local tolerance = tonumber(ARGV[3 * i - 1])
          local tat = now
          local v = redis.call('GET', KEYS[i])
          if v then
            local stored, old = string.match(v, '^(%d+) (%d+)$')
            stored, old = tonumber(stored), tonumber(old)
            if stored and old and old > 0 and stored > now then
              tat = stored
              if old ~= interval then tat = now + math.floor((stored - now) / old * interval + 0.5) end
            end
          end
          tats[i] = tat
          nexts[i] = tat + interval
          local allow_at = nexts[i] - tolerance
          admits[i] = allow_at <= now
          if not admits[i] and ARGV[3 * i] == '0' then
            admitted = 0
            if allow_at - now > retry then retry = allow_at - now end
          end
        end
        local out = {admitted, retry}
        for i = 1, n do
          local interval = tonumber(ARGV[3 * i - 2])
          local tolerance = tonumber(ARGV[3 * i - 1])
          local tat = tats[i]
          if admitted == 1 and admits[i] then
            tat = nexts[i]
            redis.call('SET', KEYS[i], string.format('%.0f %.0f', tat, interval), 'PX', math.floor((tat - now) / 1000) + 1)
          end
          local room = now + tolerance - tat
          local remaining = 0
          if room > 0 then remaining = math.floor(room / interval) end
          out[#out + 1] = remaining
          out[#out + 1] = tat - now
          out[#out + 1] = admits[i] and 1 or 0
        end
        return out
        """

    /// What EVALSHA names the script by.
    static let sha1: String = {
        let bytes = Array(source.utf8)
        var digest = [UInt8](repeating: 0, count: 20)
        _ = bytes.withUnsafeBufferPointer { SHA1($0.baseAddress, $0.count, &digest) }
        let hex = Array("0123456789abcdef".utf8)
        return String(decoding: digest.flatMap { [hex[Int($0 >> 4)], hex[Int($0 & 15)]] }, as: UTF8.self)
    }()

    /// The Redis key of one tenant's policy. The braces are a hash tag: all of a tenant's
    /// keys land in one cluster slot, as a multi-key script needs.
    static func key(tenant: String, policy: String) -> String { "bulkhead:rl:{\(tenant)}:\(policy)" }

    /// EVALSHA's arguments for one decision.
    static func arguments(tenant: String, policies: [RatePolicy]) -> [String] {
        var args = ["EVALSHA", sha1, String(policies.count)]
        args.reserveCapacity(3 + 4 * policies.count)
        for p in policies { args.append(key(tenant: tenant, policy: p.name)) }
        for p in policies {
            let interval = max(1, p.intervalNanoseconds / 1000)
            let (tolerance, overflow) = interval.multipliedReportingOverflow(by: Int64(clamping: p.burst))
            args.append(String(interval))
            args.append(String(overflow ? 1 << 52 : min(tolerance, 1 << 52)))
            args.append(p.mode == .shadow ? "1" : "0")
        }
        return args
    }

    /// The script's reply as a decision (times back in nanoseconds), or nil if malformed.
    static func decision(_ values: [Int64], policies: Int) -> RateDecision? {
        guard values.count == 2 + 3 * policies, values[0] == 0 || values[0] == 1 else { return nil }
        var states: [RateDecision.PolicyState] = []
        for i in 0..<policies {
            let r = values[2 + 3 * i], reset = values[3 + 3 * i], admits = values[4 + 3 * i]
            states.append(.init(remaining: UInt64(max(0, r)), resetNanoseconds: max(0, reset) &* 1000, admits: admits == 1))
        }
        return RateDecision(admitted: values[0] == 1, retryAfterNanoseconds: max(0, values[1]) &* 1000, states: states)
    }
}
