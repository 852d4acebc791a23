// Rate-limit decisions per second: the in-process backend (one thread, both cores, many
// tenants, two policies) and, given a Redis, the Redis backend with many decisions in
// flight at once (pipelined on its one connection).
// Run: swift build -c release && Benchmarks/ratelimit.sh   (starts a private redis-server)
//  or: .build/release/bulkhead-bench-ratelimit [N] [--redis unix:/path/redis.sock]
import Config
import Dispatch
import Glibc
import Log
import RateLimit
import Synchronization

enum RateLimitBenchmark {
    static func main() {
        var n = 2_000_000
        var redisSocket: String?
        var args = CommandLine.arguments.dropFirst()
        while let a = args.popFirst() {
            if a == "--redis", let v = args.popFirst() { redisSocket = v.hasPrefix("unix:") ? String(v.dropFirst(5)) : v } else if let v = Int(a) { n = v }
        }
        let one = [RatePolicy(name: "default", count: 1_000_000_000, periodSeconds: 1, burst: 1_000_000_000)]
        let two = one + [RatePolicy(name: "hourly", count: 1_000_000_000, periodSeconds: 3600, burst: 1_000_000_000)]
        let tenants = (0..<1000).map { "tenant-\($0)" }
        let memory = MemoryBackend(clock: { Int64(monotonic()) })
        print("in-process backend, \(n) decisions each")
        report("1 thread, 1 tenant, 1 policy", n, threads: 1) { _, i in memory.decide("acme", one).admitted }
        report("1 thread, 1000 tenants, 2 policies", n, threads: 1) { _, i in memory.decide(tenants[i % 1000], two).admitted }
        report("2 threads, 1000 tenants, 1 policy", n, threads: 2) { t, i in memory.decide(tenants[(i &* 7 &+ t) % 1000], one).admitted }
        report("2 threads, 1 tenant, 1 policy", n, threads: 2) { _, i in memory.decide("acme", one).admitted }

        // The whole admission stage as a request sees it: limits lookup, quota and
        // concurrency, the decision, the RateLimit fields, the release.
        let admission = Admission(table: LimitTable(defaults: TenantLimits(policies: one)), backend: memory, log: .discard,
                                  wallClock: { Int64(time(nil)) }, monotonic: { Int64(monotonic()) })
        report("admission + fields + release, 1 thread", n / 4, threads: 1) { _, i in
            let ok = Atomic<Bool>(false)
            admission.admit(tenants[i % 1000]) { verdict in
                if case .admitted(let grant) = verdict {
                    ok.store(RateLimitHeaders.fields(grant.status).count == 2, ordering: .relaxed)
                    grant.release()
                }
            }
            return ok.load(ordering: .relaxed)
        }

        guard let redisSocket else { return print("(no --redis given: the Redis backend is not measured)") }
        let redis: RedisBackend
        do {
            redis = try RedisBackend(settings: .init(target: RedisEndpoint(transport: .unix(path: redisSocket)), timeout: .seconds(1)),
                                     log: .discard)
        } catch { return print("redis backend: \(error)") }
        redis.start()
        let deadline = monotonic() + 5_000_000_000
        while !redis.isUp && monotonic() < deadline { _ = poll(nil, 0, 10) }
        guard redis.isUp else { return print("redis at \(redisSocket) does not answer") }
        let m = max(n / 20, 10_000)
        print("Redis backend (one connection, pipelined), \(m) decisions each")
        for window in [1, 16, 256] {
            redisRun("\(window) in flight, 1000 tenants", m, window: window) { i, done in
                redis.decide(tenants[i % 1000], one) { r in
                    if case .decided = r { done(true) } else { done(false) }
                }
            }
        }
        redis.stop()
    }

    /// `threads` threads share `n` decisions.
    static func report(_ name: String, _ n: Int, threads: Int, _ body: @escaping @Sendable (Int, Int) -> Bool) {
        let failures = Atomic<Int>(0)
        for i in 0..<(n / 10) where !body(0, i) { failures.add(1, ordering: .relaxed) }  // warm-up
        let start = monotonic()
        DispatchQueue.concurrentPerform(iterations: threads) { t in
            var bad = 0
            for i in 0..<(n / threads) where !body(t, i) { bad += 1 }
            failures.add(bad, ordering: .relaxed)
        }
        print(line(name, n, monotonic() - start, failures.load(ordering: .relaxed)))
    }

    /// At most `window` decisions outstanding at once.
    static func redisRun(_ name: String, _ n: Int, window: Int,
                         _ body: (Int, @escaping @Sendable (Bool) -> Void) -> Void) {
        let outstanding = Atomic<Int>(0), failures = Atomic<Int>(0), finished = Atomic<Int>(0)
        let start = monotonic()
        for i in 0..<n {
            while outstanding.load(ordering: .acquiring) >= window { _ = sched_yield() }
            outstanding.add(1, ordering: .relaxed)
            body(i) { ok in
                if !ok { failures.add(1, ordering: .relaxed) }
                outstanding.subtract(1, ordering: .releasing)
                finished.add(1, ordering: .relaxed)
            }
        }
        while finished.load(ordering: .acquiring) < n { _ = sched_yield() }
        print(line(name, n, monotonic() - start, failures.load(ordering: .relaxed)))
    }

    static func line(_ name: String, _ n: Int, _ ns: UInt64, _ failures: Int) -> String {
        let seconds = Double(ns) / 1e9
        let perSecond = Int(Double(n) / seconds)
        let nanos = Int((seconds / Double(n) * 1e9).rounded())
        let pad = String(repeating: " ", count: max(1, 40 - name.count))
        return "  \(name)\(pad)\(perSecond) decisions/s   \(nanos) ns/decision" + (failures > 0 ? "   (\(failures) not decided)" : "")
    }

    static func monotonic() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }
}

RateLimitBenchmark.main()
