// The Redis backend against a real redis-server: one budget shared exactly by several
// limiters (as by several hosts), the same answers as the memory backend, NOSCRIPT,
// a stalled or restarted Redis, and AUTH without the password ever reaching a log.
import Config
import Dispatch
import Foundation
import Log
@testable import RateLimit
import Synchronization
import Testing

/// Waits for `decide`'s answer (the backend answers from its own thread).
func decide(_ backend: RedisBackend, _ tenant: String, _ policies: [RatePolicy], seconds: Double = 10) throws -> BackendResult {
    let box = Mutex<BackendResult?>(nil)
    backend.decide(tenant, policies) { r in box.withLock { $0 = r } }
    var result: BackendResult?
    try eventually(seconds, "a decision from the Redis backend") {
        result = box.withLock { $0 }
        return result != nil
    }
    return result!
}

func decision(_ r: BackendResult) -> RateDecision? { if case .decided(let d) = r { d } else { nil } }

func redisBackend(_ server: RedisServer, timeout: Duration = .seconds(2), password: String? = nil,
                  log: Logger = .discard) throws -> RedisBackend {
    let b = try RedisBackend(settings: .init(target: RedisEndpoint(transport: .unix(path: server.socket), password: password),
                                             timeout: timeout), log: log)
    b.start()
    return b
}

/// A decision, asking again while one times out (a loaded machine may miss a short timeout).
func decidedEventually(_ backend: RedisBackend, _ tenant: String, _ policies: [RatePolicy]) throws -> RateDecision {
    var result: RateDecision?
    try eventually(10, "a decision answered in time") {
        result = decision(try decide(backend, tenant, policies))
        return result != nil
    }
    return result!
}

func up(_ backend: RedisBackend, _ seconds: Double = 10) throws {
    try eventually(seconds, "the Redis backend is connected") { backend.isUp }
}

func rp(_ name: String, _ count: UInt64, per period: UInt64, burst: UInt64, _ mode: RatePolicy.Mode = .enforce) -> RatePolicy {
    RatePolicy(name: name, count: count, periodSeconds: period, burst: burst, mode: mode)
}

@Suite(.serialized) struct RedisBackendTests {
    @Test func severalLimitersShareOneBudgetExactly() throws {
        let server = try RedisServer()
        defer { server.cleanUp() }
        try server.start()
        let hosts = [try redisBackend(server), try redisBackend(server)]
        defer { hosts.forEach { $0.stop() } }
        for h in hosts { try up(h) }
        let policies = [rp("default", 1, per: 3600, burst: 60)]
        let admitted = Atomic<Int>(0), answered = Atomic<Int>(0), failed = Atomic<Int>(0)
        // 8 threads × 25 decisions, alternating between the two "hosts".
        DispatchQueue.concurrentPerform(iterations: 8) { t in
            for i in 0..<25 {
                hosts[(t + i) % 2].decide("shared", policies) { r in
                    switch r {
                    case .decided(let d): if d.admitted { admitted.add(1, ordering: .relaxed) }
                    case .unavailable: failed.add(1, ordering: .relaxed)
                    }
                    answered.add(1, ordering: .relaxed)
                }
            }
        }
        try eventually(20, "200 answers") { answered.load(ordering: .relaxed) == 200 }
        #expect(failed.load(ordering: .relaxed) == 0)
        #expect(admitted.load(ordering: .relaxed) == 60)
        // The key lives until its bucket would be full again (60 × 3600 s), not forever.
        let ttl = Int(server.cli("PTTL", "bulkhead:rl:{shared}:default")) ?? -1
        #expect(ttl > 215_000_000 && ttl <= 216_000_000)
        #expect(hosts[0].decided + hosts[1].decided == 200)
    }

    @Test func redisAndMemoryDecideAlike() throws {
        let server = try RedisServer()
        defer { server.cleanUp() }
        try server.start()
        let redis = try redisBackend(server)
        defer { redis.stop() }
        try up(redis)
        let memory = MemoryBackend(clock: { Int64(Date().timeIntervalSince1970 * 1e9) })
        // Long intervals, so the microseconds between calls change nothing.
        let policies = [rp("default", 5, per: 3600, burst: 5), rp("burst", 2, per: 60, burst: 2), rp("trial", 1, per: 3600, burst: 1, .shadow)]
        for _ in 0..<7 {
            let r = try #require(decision(try decide(redis, "acme", policies)))
            let m = memory.decide("acme", policies)
            #expect(r.admitted == m.admitted)
            #expect(r.states.map(\.remaining) == m.states.map(\.remaining))
            #expect(r.states.map(\.admits) == m.states.map(\.admits))
            #expect(abs(r.retryAfterNanoseconds - m.retryAfterNanoseconds) < 1_000_000_000)
        }
        // A changed policy keeps what was used, as in memory: 2 used of a burst now of 4.
        let wider = [rp("default", 5, per: 3600, burst: 5), rp("burst", 4, per: 60, burst: 4)]
        let r = try #require(decision(try decide(redis, "acme", wider)))
        #expect(r.admitted && r.states[1].remaining == 1)
    }

    @Test func aFlushedScriptIsLoadedAgainAndGarbageStateIsIgnored() throws {
        let server = try RedisServer()
        defer { server.cleanUp() }
        try server.start()
        let redis = try redisBackend(server)
        defer { redis.stop() }
        try up(redis)
        let policies = [rp("default", 10, per: 60, burst: 3)]
        #expect(decision(try decide(redis, "acme", policies))?.admitted == true)
        #expect(server.cli("SCRIPT", "FLUSH") == "OK")
        // NOSCRIPT → SCRIPT LOAD → the same decision again, answered.
        let again = try #require(decision(try decide(redis, "acme", policies)))
        #expect(again.admitted && again.states[0].remaining == 1)
        // Someone else's value under our key counts as a full bucket, not a crash.
        server.cli("SET", "bulkhead:rl:{acme}:default", "not a number")
        #expect(decision(try decide(redis, "acme", policies))?.states[0].remaining == 2)
    }

    @Test func aStalledRedisTimesOutAndARestartedOneIsUsedAgain() throws {
        let server = try RedisServer()
        defer { server.cleanUp() }
        try server.start()
        let lines = LogStore()
        let redis = try redisBackend(server, timeout: .milliseconds(50), log: .collecting(into: lines))
        defer { redis.stop() }
        try up(redis)
        let policies = [rp("default", 10, per: 60, burst: 10)]
        _ = try decidedEventually(redis, "acme", policies)
        server.pause()
        guard case .unavailable(let reason) = try decide(redis, "acme", policies) else {
            Issue.record("a stalled Redis still decided")
            return
        }
        #expect(reason == "redis did not answer within 50 ms")
        // One late answer is not a dead connection; nothing at all for a second is.
        try eventually(10, "the silent connection is given up") { !redis.isUp }
        #expect(lines.all.contains { $0.contains("redis answered nothing for 1000 ms") })
        // While it is down, decisions fail at once rather than wait.
        guard case .unavailable = try decide(redis, "acme", policies, seconds: 1) else { Issue.record("decided while down"); return }
        server.resume()
        try up(redis)
        _ = try decidedEventually(redis, "acme", policies)

        // Stopped and started again: back within the reconnect backoff (at most 500 ms).
        server.stop()
        try eventually(5, "the backend notices") { !redis.isUp }
        try server.start()
        let back = Date()
        try up(redis)
        let seconds = Date().timeIntervalSince(back)
        print("redis backend reconnected \(Int(seconds * 1000)) ms after redis-server answered")
        #expect(try decidedEventually(redis, "acme", policies).admitted)
        #expect(lines.all.filter { $0.contains("ratelimit_redis_unavailable") }.count >= 2)
        #expect(lines.all.filter { $0.contains("ratelimit_redis_connected") }.count >= 3)
    }

    @Test func authWithAPasswordThatIsNeverLogged() throws {
        let secret = "s3cret-\(UInt32.random(in: 0...UInt32.max))"
        let server = try RedisServer(password: secret)
        defer { server.cleanUp() }
        try server.start()
        let good = try redisBackend(server, password: secret)
        defer { good.stop() }
        try up(good)
        #expect(decision(try decide(good, "acme", [rp("default", 1, per: 60, burst: 1)]))?.admitted == true)
        let lines = LogStore()
        let bad = try redisBackend(server, password: "wrong-\(secret)", log: .collecting(into: lines))
        defer { bad.stop() }
        try eventually(10, "the refused login is logged") { lines.all.contains { $0.contains("ratelimit_redis_unavailable") } }
        #expect(!bad.isUp)
        #expect(lines.all.contains { $0.contains("AUTH") })
        #expect(!lines.all.contains { $0.contains(secret) })
    }

    /// A host name is resolved off the loop, then connected to; one that does not
    /// resolve is retried and reported, and never decides.
    @Test func aHostNameIsResolvedOffTheLoop() throws {
        let server = try RedisServer(tcp: true)
        defer { server.cleanUp() }
        try server.start()
        let named = try RedisBackend(settings: .init(target: RedisEndpoint(transport: .tcp(host: "localhost", port: server.port)),
                                                     timeout: .seconds(2)), log: .discard)
        named.start()
        defer { named.stop() }
        try up(named)
        #expect(decision(try decide(named, "acme", [rp("default", 1, per: 60, burst: 1)]))?.admitted == true)
        let lines = LogStore()
        let nowhere = try RedisBackend(settings: .init(target: RedisEndpoint(transport: .tcp(host: "nowhere.invalid", port: 6379)),
                                                       timeout: .seconds(2)), log: .collecting(into: lines))
        nowhere.start()
        defer { nowhere.stop() }
        try eventually(20, "the failed lookup is reported") { lines.all.contains { $0.contains("cannot resolve nowhere.invalid") } }
        #expect(!nowhere.isUp)
        guard case .unavailable = try decide(nowhere, "acme", [rp("default", 1, per: 60, burst: 1)]) else {
            Issue.record("decided without Redis")
            return
        }
    }
}
