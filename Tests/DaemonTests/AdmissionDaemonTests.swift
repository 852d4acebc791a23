// Rate limits, concurrency caps and quotas through a real bulkheadd: the headers and
// refusals clients see, `bulkheadctl limits` taking effect without a restart, and the
// Redis backend shared by two daemons, with Redis stopped and started under them.
import Dispatch
import Foundation
import Synchronization
import Testing

func jsonObject(_ text: String) -> [String: Any] {
    (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
}

func redisConfig(_ server: RedisServer, _ lines: String...) -> String {
    (["[ratelimit]", "backend = redis", "redis_url = unix:\(server.socket)", "timeout = 2s"] + lines).joined(separator: "\n")
}

@Suite(.serialized) struct AdmissionDaemonTests {
    @Test func headersOnAllowedAndRefusedResponses() throws {
        let d = try Daemon(extra: "[ratelimit]\nrate = 1/minute\nburst = 3")
        defer { d.cleanUp() }
        try d.start()
        let key = try d.tenant("acme")
        // A refused authentication costs no token.
        #expect(try d.call(key: key + "x", body: echo("1")).status == 401)
        let ok = try (0..<3).map { _ in try d.call(key: key, body: echo("1")) }
        #expect(ok.map(\.status) == [200, 200, 200])
        #expect(ok.allSatisfy { $0.header("RateLimit-Policy") == #""default";q=1;w=60"# })
        #expect(ok.map { $0.header("RateLimit")?.components(separatedBy: ";t=").first } ==
                [#""default";r=2"#, #""default";r=1"#, #""default";r=0"#])
        #expect(ok[0].header("Retry-After") == nil)
        // The alias shares the bucket.
        let refused = try d.call("POST", "/process", key: key, body: echo("1"))
        #expect(refused.status == 429)
        #expect(refused.errorCode == "rate_limited")
        #expect(refused.header("Cache-Control") == "no-store")
        #expect(refused.header("RateLimit-Policy") == #""default";q=1;w=60"#)
        let retry = try #require(Int(refused.header("Retry-After") ?? ""))
        #expect((50...60).contains(retry))  // 60 s less the time the test took
        let reset = try #require(refused.header("RateLimit")?.components(separatedBy: ";t=").last.flatMap { Int($0) })
        #expect(refused.header("RateLimit")?.hasPrefix(#""default";r=0;t="#) == true)
        #expect((170...180).contains(reset))
        let status = jsonObject(d.ctl("--json", "status").stdout)
        #expect(status["rate_limited"] as? Int == 1 && status["admitted"] as? Int == 3)
        // Only tenant responses are limited and carry the fields.
        let health = try d.call("GET", "/healthz", key: nil)
        #expect(health.status == 200 && health.header("RateLimit") == nil && health.header("RateLimit-Policy") == nil)
        let other = try d.tenant("other")
        #expect(try d.call(key: other, body: echo("1")).status == 200)
    }

    @Test func limitsSetShowAndResetApplyWithoutARestart() throws {
        let d = try Daemon(extra: "[ratelimit]\nrate = 1/minute\nburst = 2")
        defer { d.cleanUp() }
        try d.start()
        let key = try d.tenant("acme")
        func statuses(_ n: Int) throws -> [Int] { try (0..<n).map { _ in try d.call(key: key, body: echo("1")).status } }
        #expect(try statuses(3) == [200, 200, 429])

        // A larger burst admits the difference at once.
        let set = d.ctl("limits", "set", "acme", "--burst", "5")
        #expect(set.status == 0, "\(set.stderr)")
        #expect(set.stdout.contains("default  1/minute  5      enforce  tenant"))
        #expect(try statuses(4) == [200, 200, 200, 429])

        // A second, named policy: both are advertised, and both must admit.
        #expect(d.ctl("limits", "set", "acme", "--policy", "hourly", "--rate", "100/hour", "--burst", "50").status == 0)
        let both = try d.call(key: key, body: echo("1"))
        #expect(both.status == 429)
        #expect(both.header("RateLimit-Policy") == #""default";q=1;w=60, "hourly";q=100;w=3600"#)
        #expect(both.header("RateLimit")?.contains(#""hourly";r=50;"#) == true)  // the refusal charged it nothing

        // Shadow mode on the default policy: decided, counted and logged, but admitted.
        #expect(d.ctl("limits", "set", "acme", "--shadow").status == 0)
        let shadowed = try d.call(key: key, body: echo("1"))
        #expect(shadowed.status == 200)
        #expect(shadowed.header("RateLimit-Policy") == #""hourly";q=100;w=3600"#)
        try eventually(10, "the shadow refusal is logged") { d.logText().contains(#""event":"ratelimit_shadow_refusal","tenant":"acme","policies":"default""#) }

        // Concurrency and quotas; what show reports, and where it comes from.
        #expect(d.ctl("limits", "set", "acme", "--concurrency", "4", "--compute-minutes-per-day", "90", "--storage-gb", "0.5").status == 0)
        let shown = jsonObject(d.ctl("--json", "limits", "show", "acme").stdout)
        #expect(shown["concurrency"] as? Int == 4 && shown["concurrency_source"] as? String == "tenant")
        #expect(shown["compute_minutes_per_day"] as? Int == 90 && shown["storage_gb"] as? Double == 0.5)
        let policies = shown["policies"] as? [[String: Any]] ?? []
        #expect(policies.map { $0["name"] as? String } == ["default", "hourly"])
        #expect(policies.map { $0["mode"] as? String } == ["shadow", "enforce"])

        // Every change is audited, with what changed.
        let audit = d.ctl("audit", "--tenant", "acme").stdout
        #expect(audit.contains("limits.set") && audit.contains("policy hourly rate=100/3600s burst=50"))

        // Refusals: usage errors exit 2, refused requests 1, each with one clear line.
        let cases: [([String], Int32, String)] = [
            (["limits", "set", "acme", "--rate", "10/week"], 2, #"invalid rate "10/week" for --rate"#),
            (["limits", "set", "acme", "--burst", "many"], 2, "--burst must be a whole number"),
            (["limits", "set", "ghost", "--burst", "1"], 1, "no tenant ghost"),
            (["limits", "set", "acme"], 1, "nothing to change"),
            (["limits", "set", "acme", "--policy", "x", "--rate", "1/second"], 1, "a new policy needs --rate and --burst"),
            (["limits", "set", "acme", "--policy", "Bad Name", "--burst", "1"], 1, "invalid policy name"),
            (["limits", "set", "acme", "--shadow", "--enforce"], 1, "contradict"),
            (["limits", "set", "acme", "--policy", "nothere", "--remove"], 1, "has no policy nothere"),
            (["limits", "set", "acme", "--concurrency", "-1"], 2, "--concurrency must be a whole number"),
            (["limits", "set", "acme", "--storage-gb", "0"], 2, "invalid size"),
        ]
        for (args, status, message) in cases {
            let r = d.ctl(args)
            #expect(r.status == status, "\(args)")
            #expect(r.stderr.contains(message), "\(args): \(r.stderr)")
        }

        // Kept across a restart.
        d.stop()
        try d.start()
        let again = jsonObject(d.ctl("--json", "limits", "show", "acme").stdout)
        #expect((again["policies"] as? [[String: Any]])?.count == 2)
        #expect(try d.call(key: key, body: echo("1")).status == 200)
        // Removing a policy, then resetting to the configuration.
        #expect(d.ctl("limits", "set", "acme", "--policy", "hourly", "--remove").status == 0)
        let reset = d.ctl("limits", "reset", "acme")
        #expect(reset.status == 0)
        #expect(reset.stdout.contains("default  1/minute  2      enforce  config"))
        // In-process buckets start full after a restart; one request was made since.
        #expect(try statuses(2) == [200, 429])
    }

    @Test func theConcurrencyCapAndTheComputeQuota() throws {
        let d = try Daemon(hostile: true)
        defer { d.cleanUp() }
        try d.start()
        let key = try d.tenant("acme")
        #expect(d.ctl("limits", "set", "acme", "--concurrency", "1").status == 0)
        let slow = try d.connect()
        slow.send(request(key: key, body: #"{"task":"sleep_ms","data":1000}"#))
        try eventually(10, "one request in flight") {
            jsonObject(d.ctl("--json", "limits", "show", "acme").stdout)["in_flight"] as? Int == 1
        }
        let capped = try d.call(key: key, body: echo("1"))
        #expect(capped.status == 429)
        #expect(capped.errorCode == "concurrency_limited")
        #expect(capped.header("Retry-After") == "1")
        #expect(slow.response()?.status == 200)
        #expect(try d.call(key: key, body: echo("1")).status == 200)
        // Sleeping is not compute: the quota counts CPU time, from the kernel.
        let slept = jsonObject(d.ctl("--json", "limits", "show", "acme").stdout)["compute_seconds_today"] as? Double ?? 9
        #expect(slept < 0.5)

        #expect(d.ctl("limits", "set", "acme", "--compute-minutes-per-day", "0").status == 0)
        let over = try d.call(key: key, body: echo("1"))
        #expect(over.status == 429)
        #expect(over.errorCode == "quota_exceeded")
        #expect((1...86_400).contains(Int(over.header("Retry-After") ?? "") ?? 0))
        #expect(d.ctl("limits", "reset", "acme").status == 0)
        #expect(try d.call(key: key, body: echo("1")).status == 200)
    }

    /// A CPU-burning task's metered compute is the kernel's account of its worker's CPU
    /// time (utime + stime in /proc/PID/stat, a counter of its own), within 10%.
    @Test func computeIsTheKernelsCPUTime() throws {
        let d = try Daemon(hostile: true)
        defer { d.cleanUp() }
        try d.start()
        let key = try d.tenant("acme")
        let pid = try #require(try d.call(key: key, body: #"{"task":"pid"}"#).json["result"] as? Int)
        #expect(try d.call(key: key, body: #"{"task":"burn_ms","data":600}"#).status == 200)
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        let fields = stat[stat.index(after: stat.lastIndex(of: ")")!)...].split(separator: " ")
        let ticks = Double(fields[11])! + Double(fields[12])!  // utime, stime (fields 14 and 15)
        let kernel = ticks / Double(sysconf(Int32(_SC_CLK_TCK)))
        let metered = jsonObject(d.ctl("--json", "limits", "show", "acme").stdout)["compute_seconds_today"] as? Double ?? 0
        print("burn_ms 600: kernel \(kernel) s, metered \(metered) s")
        #expect(kernel >= 0.5)  // ticks are sampled: about the 600 ms burnt
        #expect(abs(metered - kernel) <= kernel * 0.1)
    }

    /// Two daemons (two "hosts") and one Redis: hammered together from several threads,
    /// they admit exactly the tenant's budget. The documented tolerance is the decisions
    /// that time out (503), which must not happen here with a 2 s timeout.
    @Test func twoDaemonsShareOneBudgetThroughRedis() throws {
        let server = try RedisServer()
        defer { server.cleanUp() }
        try server.start()
        let config = redisConfig(server, "rate = 1/hour", "burst = 40")
        let hosts = [try Daemon(extra: config), try Daemon(extra: config)]
        defer { hosts.forEach { $0.cleanUp() } }
        for h in hosts { try h.start() }
        let keys = try hosts.map { try $0.tenant("shared") }
        let counts = Mutex<[Int: Int]>([:])
        DispatchQueue.concurrentPerform(iterations: 8) { t in
            for i in 0..<15 {
                let h = (t + i) % 2
                let status = (try? hosts[h].call(key: keys[h], body: echo("1")).status) ?? -1
                counts.withLock { $0[status, default: 0] += 1 }
            }
        }
        let c = counts.withLock { $0 }
        print("two daemons, one Redis budget of 40: \(c)")
        #expect(c[200] == 40)
        #expect(c[429] == 80)
        #expect(c[503] == nil)
    }

    @Test func redisStoppedUnderDenyAndAllowThenBack() throws {
        let server = try RedisServer()
        defer { server.cleanUp() }
        try server.start()
        let deny = try Daemon(extra: redisConfig(server, "rate = 1/hour", "burst = 100", "on_backend_error = deny"))
        let allow = try Daemon(extra: redisConfig(server, "rate = 1/hour", "burst = 10", "on_backend_error = allow", "hosts = 2"))
        defer { deny.cleanUp(); allow.cleanUp() }
        try deny.start()
        try allow.start()
        let dk = try deny.tenant("acme"), ak = try allow.tenant("beta")
        #expect(try deny.call(key: dk, body: echo("1")).status == 200)
        #expect(try allow.call(key: ak, body: echo("1")).status == 200)
        let ready = try deny.call("GET", "/readyz", key: nil)
        #expect(ready.status == 200 && ready.text.contains(#""redis":true"#))

        server.stop()
        try eventually(10, "deny is not ready without Redis") { try deny.call("GET", "/readyz", key: nil).status == 503 }
        let refused = try deny.call(key: dk, body: echo("1"))
        #expect(refused.status == 503)
        #expect(refused.errorCode == "rate_limit_unavailable")
        #expect(refused.header("Retry-After") == "1")
        // allow: still ready, and limited to this host's share (10 / 2) by the fallback.
        let allowReady = try allow.call("GET", "/readyz", key: nil)
        #expect(allowReady.status == 200 && allowReady.text.contains(#""redis":false"#))
        let fallback = try (0..<8).map { _ in try allow.call(key: ak, body: echo("1")).status }
        #expect(fallback == [200, 200, 200, 200, 200, 429, 429, 429])
        let metrics = try parsePrometheus(try allow.call("GET", "/metrics", key: nil).text)
        #expect(metrics["bulkhead_ratelimit_fallbacks_total"] == 8)
        #expect(metrics["bulkhead_ratelimit_redis_up"] == 0)

        try server.start()
        let back = Date()
        try eventually(10, "deny is ready again") { try deny.call("GET", "/readyz", key: nil).status == 200 }
        print("bulkheadd used Redis again \(Int(Date().timeIntervalSince(back) * 1000)) ms after redis-server answered")
        #expect(try deny.call(key: dk, body: echo("1")).status == 200)
        #expect(server.cli("EXISTS", "bulkhead:rl:{acme}:default") == "1")
        // The restarted Redis is empty: beta's budget is Redis's again, not the fallback's.
        #expect(try allow.call(key: ak, body: echo("1")).status == 200)
        #expect(server.cli("EXISTS", "bulkhead:rl:{beta}:default") == "1")
    }
}

/// A strict reader of the Prometheus text format: every sample belongs to a family whose
/// TYPE came first, names and labels are well formed, values are numbers. Returns the
/// samples by their full text before the value.
func parsePrometheus(_ text: String) throws -> [String: Double] {
    var types: [String: String] = [:]
    var samples: [String: Double] = [:]
    func isName(_ s: Substring) -> Bool {
        guard let f = s.first, f.isLetter || f == "_" || f == ":" else { return false }
        return s.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_" || $0 == ":") }
    }
    for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
        if line.isEmpty { continue }
        if line.hasPrefix("# HELP ") { continue }
        if line.hasPrefix("# TYPE ") {
            let parts = line.split(separator: " ")
            guard parts.count == 4, isName(parts[2]), ["counter", "gauge", "histogram", "summary", "untyped"].contains(parts[3]),
                  types[String(parts[2])] == nil else { throw TestFailure("bad TYPE line: \(line)") }
            types[String(parts[2])] = String(parts[3])
            continue
        }
        guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
            throw TestFailure("no value: \(line)")
        }
        let key = line[..<space]
        var name = key
        if let brace = key.firstIndex(of: "{") {
            guard key.hasSuffix("}") else { throw TestFailure("unclosed labels: \(line)") }
            name = key[..<brace]
            var labels = key[key.index(after: brace)..<key.index(before: key.endIndex)]
            while !labels.isEmpty {
                guard let eq = labels.firstIndex(of: "="), isName(labels[..<eq]) else { throw TestFailure("bad label: \(line)") }
                var rest = labels[labels.index(after: eq)...]
                guard rest.first == "\"" else { throw TestFailure("unquoted label: \(line)") }
                rest = rest.dropFirst()
                var escaped = false
                var end: Substring.Index?
                for i in rest.indices {
                    if escaped { escaped = false; continue }
                    if rest[i] == "\\" { escaped = true } else if rest[i] == "\"" { end = i; break }
                }
                guard let end else { throw TestFailure("unterminated label value: \(line)") }
                labels = rest[rest.index(after: end)...]
                if labels.first == "," { labels = labels.dropFirst() } else if !labels.isEmpty { throw TestFailure("bad label list: \(line)") }
            }
        }
        guard isName(name) else { throw TestFailure("bad metric name: \(line)") }
        var family = String(name)
        for suffix in ["_bucket", "_sum", "_count"] where types[family] == nil && family.hasSuffix(suffix) {
            family = String(family.dropLast(suffix.count))
        }
        guard types[family] != nil else { throw TestFailure("sample before its TYPE: \(line)") }
        samples[String(key)] = value
    }
    return samples
}

@Suite(.serialized) struct MetricsEndpointTests {
    @Test func metricsParseAndCount() throws {
        let d = try Daemon(extra: "[ratelimit]\nrate = 1/hour\nburst = 2")
        defer { d.cleanUp() }
        try d.start()
        let key = try d.tenant("acme")
        #expect(try (0..<3).map { _ in try d.call(key: key, body: echo("1")).status } == [200, 200, 429])
        #expect(try d.call(key: nil, body: echo("1")).status == 401)
        let r = try d.call("GET", "/metrics", key: nil)
        #expect(r.status == 200)
        #expect(r.header("Content-Type") == "text/plain; version=0.0.4; charset=utf-8")
        let m = try parsePrometheus(r.text)
        #expect(m[#"bulkhead_http_requests_total{class="2xx"}"#] == 2)
        #expect(m[#"bulkhead_http_requests_total{class="4xx"}"#] == 2)
        #expect(m["bulkhead_admitted_total"] == 2)
        #expect(m[#"bulkhead_refused_total{reason="rate_limited"}"#] == 1)
        #expect(m["bulkhead_worker_spawns_total"] == 1)
        #expect(m["bulkhead_workers"] == 1)
        #expect(m["bulkhead_http_request_duration_seconds_count"] == 4)
        #expect(m[#"bulkhead_http_request_duration_seconds_bucket{le="+Inf"}"#] == 4)
        // No tenant label anywhere.
        #expect(!r.text.contains("acme"))
        #expect(m["bulkhead_ratelimit_redis_up"] == nil)
    }

    @Test func perTenantSeriesWhenAskedFor() throws {
        let d = try Daemon(extra: "[metrics]\nper_tenant = on")
        defer { d.cleanUp() }
        try d.start()
        let key = try d.tenant("acme")
        #expect(try d.call(key: key, body: echo("1")).status == 200)
        let m = try parsePrometheus(try d.call("GET", "/metrics", key: nil).text)
        #expect(m[#"bulkhead_tenant_requests_today{tenant="acme"}"#] == 1)
        #expect(m[#"bulkhead_tenant_workers{tenant="acme"}"#] == 1)
        #expect(m[#"bulkhead_tenant_rate_limited_today{tenant="acme"}"#] == 0)
        // Refusals are the tenant's too; the series come from memory, which a restart
        // fills from the day's rows in SQLite.
        #expect(try d.call("GET", "/v1/nope", key: key).status == 404)
        let again = try parsePrometheus(try d.call("GET", "/metrics", key: nil).text)
        #expect(again[#"bulkhead_tenant_requests_today{tenant="acme"}"#] == 2)
        #expect(again[#"bulkhead_tenant_errors_today{tenant="acme"}"#] == 1)
        d.stop()
        try d.start()
        let restarted = try parsePrometheus(try d.call("GET", "/metrics", key: nil).text)
        #expect(restarted[#"bulkhead_tenant_requests_today{tenant="acme"}"#] == 2)
        #expect(restarted[#"bulkhead_tenant_errors_today{tenant="acme"}"#] == 1)
        #expect((restarted[#"bulkhead_tenant_cpu_milliseconds_today{tenant="acme"}"#] ?? -1) >= 0)
    }
}
