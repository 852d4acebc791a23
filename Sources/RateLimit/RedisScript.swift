// The GCRA of GCRA.swift as a Redis script, so that every bulkheadd sharing a Redis
// decides against one state per tenant, atomically, by Redis's own clock. It is loaded
// once per connection (SCRIPT LOAD) and called by its SHA1 (EVALSHA); a NOSCRIPT answer
// (Redis restarted, SCRIPT FLUSH) loads it again.
//
// Times are microseconds (Lua numbers are doubles: exact up to 2^53 µs, far past 2200).
// A key holds "TAT INTERVAL" so a changed policy keeps the requests already used, as the
// memory backend does; it expires when its bucket is full again.
// One call decides several requests of one tenant, in order (the requests of one loop
// turn): one TIME, one GET and at most one SET per policy however many there are.
//   KEYS: one per policy.   ARGV: requests, then per policy interval_us, tolerance_us,
//   shadow (0|1).   Reply: per request {admitted, retry_us, then per policy remaining,
//   reset_us, admits}.
import COpenSSL

enum RedisScript {
    static let source = """
        local t = redis.call('TIME')
        local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
        local n = #KEYS
        local requests = tonumber(ARGV[1])
        local intervals, tolerances, shadow, tats, changed = {}, {}, {}, {}, {}
        for i = 1, n do
          intervals[i] = tonumber(ARGV[3 * i - 1])
          tolerances[i] = tonumber(ARGV[3 * i])
          shadow[i] = ARGV[3 * i + 1] == '1'
          local tat = now
          local v = redis.call('GET', KEYS[i])
          if v then
            local stored, old = string.match(v, '^(%d+) (%d+)$')
            stored, old = tonumber(stored), tonumber(old)
            if stored and old and old > 0 and stored > now then
              tat = stored
              if old ~= intervals[i] then tat = now + math.floor((stored - now) / old * intervals[i] + 0.5) end
            end
          end
          tats[i] = tat
        end
        local out, nexts, admits = {}, {}, {}
        for r = 1, requests do
          local admitted, retry = 1, 0
          for i = 1, n do
            nexts[i] = math.max(tats[i], now) + intervals[i]
            local allow_at = nexts[i] - tolerances[i]
            admits[i] = allow_at <= now
            if not admits[i] and not shadow[i] then
              admitted = 0
              if allow_at - now > retry then retry = allow_at - now end
            end
          end
          out[#out + 1] = admitted
          out[#out + 1] = retry
          for i = 1, n do
            if admitted == 1 and admits[i] then
              tats[i] = nexts[i]
              changed[i] = true
            end
            local tat = math.max(tats[i], now)
            local room = now + tolerances[i] - tat
            local remaining = 0
            if room > 0 then remaining = math.floor(room / intervals[i]) end
            out[#out + 1] = remaining
            out[#out + 1] = tat - now
            out[#out + 1] = admits[i] and 1 or 0
          end
        end
        for i = 1, n do
          if changed[i] then
            redis.call('SET', KEYS[i], string.format('%.0f %.0f', tats[i], intervals[i]), 'PX', math.floor((tats[i] - now) / 1000) + 1)
          end
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

    /// What identifies one tenant's decisions under one set of policies (requests with
    /// equal arguments are decided in one call): the key count, the keys and, per policy,
    /// interval_us, tolerance_us and shadow.
    static func arguments(tenant: String, policies: [RatePolicy]) -> [String] {
        var args = [String(policies.count)]
        args.reserveCapacity(1 + 4 * policies.count)
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

    static func policyCount(_ arguments: [String]) -> Int { Int(arguments[0]) ?? 0 }

    /// The EVALSHA command deciding `requests` requests with `arguments`.
    static func call(_ arguments: [String], requests: Int) -> [String] {
        let keys = policyCount(arguments)
        return ["EVALSHA", sha1] + arguments[...keys] + [String(requests)] + arguments[(keys + 1)...]
    }

    /// The script's reply as one decision per request (times back in nanoseconds), or
    /// nil if malformed.
    static func decisions(_ values: [Int64], policies: Int, requests: Int) -> [RateDecision]? {
        let stride = 2 + 3 * policies
        guard requests > 0, values.count == stride * requests else { return nil }
        var out: [RateDecision] = []
        out.reserveCapacity(requests)
        for r in 0..<requests {
            let base = r * stride
            guard values[base] == 0 || values[base] == 1 else { return nil }
            var states: [RateDecision.PolicyState] = []
            for i in 0..<policies {
                let v = base + 2 + 3 * i
                states.append(.init(remaining: UInt64(max(0, values[v])), resetNanoseconds: max(0, values[v + 1]) &* 1000,
                                    admits: values[v + 2] == 1))
            }
            out.append(RateDecision(admitted: values[base] == 1, retryAfterNanoseconds: max(0, values[base + 1]) &* 1000,
                                    states: states))
        }
        return out
    }
}
