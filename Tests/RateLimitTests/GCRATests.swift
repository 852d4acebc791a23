// Exact admission counts of the in-process limiter, on an injected clock (no sleeps).
import Synchronization
import Testing
@testable import RateLimit

/// Time that moves only when the test says so.
final class ManualClock: Sendable {
    private let ns = Atomic<Int64>(1_000_000_000)
    private let wall = Atomic<Int64>(1_796_342_400)  // 2026-12-04T00:00:00Z

    var now: Int64 { ns.load(ordering: .relaxed) }
    var seconds: Int64 { wall.load(ordering: .relaxed) }
    func advance(nanoseconds: Int64) {
        ns.add(nanoseconds, ordering: .relaxed)
        wall.add(nanoseconds / 1_000_000_000, ordering: .relaxed)
    }
    func advance(seconds s: Double) { advance(nanoseconds: Int64(s * 1e9)) }
    func setWall(_ s: Int64) { wall.store(s, ordering: .relaxed) }
}

func policy(_ name: String, _ count: UInt64, per period: UInt64, burst: UInt64,
            _ mode: RatePolicy.Mode = .enforce) -> RatePolicy {
    RatePolicy(name: name, count: count, periodSeconds: period, burst: burst, mode: mode)
}

func policy(_ count: UInt64, per period: UInt64, burst: UInt64) -> RatePolicy {
    policy(RatePolicy.defaultName, count, per: period, burst: burst)
}

/// `n` requests at the current instant; how many were admitted.
func admitted(_ backend: MemoryBackend, _ tenant: String, _ policies: [RatePolicy], _ n: Int) -> Int {
    (0..<n).count { _ in backend.decide(tenant, policies).admitted }
}

func admitted(_ backend: MemoryBackend, _ policies: [RatePolicy], _ n: Int) -> Int { admitted(backend, "acme", policies, n) }

@Suite struct GCRAAdmission {
    @Test func aBurstAdmitsExactlyBurstThenTellsWhenToComeBack() {
        let clock = ManualClock()
        let limiter = MemoryBackend(clock: { clock.now })
        let hourly = [policy(1000, per: 3600, burst: 100)]
        #expect(admitted(limiter, hourly, 100) == 100)
        let refused = limiter.decide("acme", hourly)
        #expect(!refused.admitted)
        // One request every 3.6 s: the next admission is 3.6 s away.
        #expect(refused.retryAfterNanoseconds == 3_600_000_000)
        #expect(refused.states == [.init(remaining: 0, resetNanoseconds: 360_000_000_000, admits: false)])
        clock.advance(nanoseconds: 3_599_999_999)
        #expect(!limiter.decide("acme", hourly).admitted)
        clock.advance(nanoseconds: 1)
        #expect(limiter.decide("acme", hourly).admitted)
        #expect(!limiter.decide("acme", hourly).admitted)
        // Another tenant has its own bucket.
        #expect(admitted(limiter, "other", hourly, 101) == 100)
    }

    @Test func aSustainedRateOverASimulatedHour() {
        let clock = ManualClock()
        let limiter = MemoryBackend(clock: { clock.now })
        let hourly = [policy(1000, per: 3600, burst: 100)]
        // Ten requests a second for an hour: the burst, then one per 3.6 s.
        var count = 0
        for _ in 0..<36_000 {
            if limiter.decide("acme", hourly).admitted { count += 1 }
            clock.advance(nanoseconds: 100_000_000)
        }
        // Demand always exceeds the rate, so admission k needs t ≥ (k − 100) × 3.6 s: the
        // first 100 as they arrive, then one per 3.6 s up to t = 3596.4 s (k = 1099).
        #expect(count == 100 + 999)
    }

    @Test func aWindowBoundaryGivesNoSecondBurst() {
        let clock = ManualClock()
        let limiter = MemoryBackend(clock: { clock.now })
        let perMinute = [policy(10, per: 60, burst: 10)]
        clock.advance(seconds: 59)
        #expect(admitted(limiter, perMinute, 20) == 10)
        // A fixed window would reset at the minute and admit ten more; GCRA admits only
        // what the rate earned since: one per 6 s.
        clock.advance(seconds: 1.5)
        #expect(admitted(limiter, perMinute, 20) == 0)
        clock.advance(seconds: 4.5)
        #expect(admitted(limiter, perMinute, 20) == 1)
        clock.advance(seconds: 60)
        #expect(admitted(limiter, perMinute, 20) == 10)
    }

    @Test func twoPoliciesAtOnceChargeNothingForARefusal() {
        let clock = ManualClock()
        let limiter = MemoryBackend(clock: { clock.now })
        let both = [policy("default", 5, per: 3600, burst: 5), policy("burst", 2, per: 1, burst: 2)]
        #expect(admitted(limiter, both, 2) == 2)
        // The per-second policy refuses the third: the hourly one is not charged for it.
        let third = limiter.decide("acme", both)
        #expect(!third.admitted)
        #expect(third.states.map(\.remaining) == [3, 0])
        #expect(third.states.map(\.admits) == [true, false])
        clock.advance(seconds: 1)
        #expect(admitted(limiter, both, 2) == 2)
        clock.advance(seconds: 1)
        // Now the hourly one refuses after one more: the per-second one keeps its token.
        #expect(admitted(limiter, both, 1) == 1)
        let last = limiter.decide("acme", both)
        #expect(!last.admitted)
        #expect(last.states.map(\.remaining) == [0, 1])
        #expect(last.retryAfterNanoseconds == 718_000_000_000)
        clock.advance(seconds: 717)
        #expect(admitted(limiter, both, 5) == 0)
        clock.advance(seconds: 1)
        #expect(admitted(limiter, both, 5) == 1)
    }

    @Test func aChangedLimitKeepsWhatWasUsed() {
        let clock = ManualClock()
        let limiter = MemoryBackend(clock: { clock.now })
        #expect(admitted(limiter, [policy(10, per: 3600, burst: 10)], 20) == 10)
        // A larger burst admits the difference at once, no more.
        #expect(admitted(limiter, [policy(10, per: 3600, burst: 15)], 20) == 5)
        // A faster rate keeps the 15 requests used and refills at the new rate.
        let faster = [policy(20, per: 3600, burst: 15)]
        #expect(admitted(limiter, faster, 1) == 0)
        clock.advance(seconds: 180)
        #expect(admitted(limiter, faster, 5) == 1)
        // A smaller burst caps what is left.
        clock.advance(seconds: 3600)
        #expect(admitted(limiter, [policy(20, per: 3600, burst: 3)], 10) == 3)
    }

    @Test func shadowPoliciesDecideButNeverRefuse() {
        let clock = ManualClock()
        let limiter = MemoryBackend(clock: { clock.now })
        let trial = [policy("default", 100, per: 60, burst: 100), policy("trial", 1, per: 60, burst: 2, .shadow)]
        let results = (0..<4).map { _ in limiter.decide("acme", trial) }
        #expect(results.allSatisfy { $0.admitted })
        #expect(results.map { $0.states[1].admits } == [true, true, false, false])
        #expect(results.map { $0.states[0].remaining } == [99, 98, 97, 96])
        // An enforced refusal charges the shadow policy nothing either.
        let tight = [policy("default", 1, per: 60, burst: 1), policy("trial", 100, per: 60, burst: 100, .shadow)]
        _ = limiter.decide("beta", tight)
        let refused = limiter.decide("beta", tight)
        #expect(!refused.admitted)
        #expect(refused.states[1].remaining == 99)
    }

    /// GCRA against an independently written token bucket (tokens counted in nanoseconds
    /// of refill): the same admissions for the same random arrivals.
    @Test(arguments: [1, 2, 3]) func matchesAnExactTokenBucket(seed: UInt64) {
        let clock = ManualClock()
        let limiter = MemoryBackend(clock: { clock.now })
        let p = policy(7, per: 10, burst: 4)
        let interval = p.intervalNanoseconds
        var level = 4 * interval  // full
        var last = clock.now
        var rng = seed &* 0x9E37_79B9_7F4A_7C15
        for _ in 0..<5_000 {
            rng = rng &* 6364136223846793005 &+ 1442695040888963407
            clock.advance(nanoseconds: Int64((rng >> 33) % 3_000_000_000))
            level = min(4 * interval, level + (clock.now - last))
            last = clock.now
            let bucket = level >= interval
            if bucket { level -= interval }
            #expect(limiter.decide("acme", [p]).admitted == bucket)
        }
    }

    @Test func intervalsAndTolerancesSaturate() {
        #expect(policy(1000, per: 3600, burst: 100).intervalNanoseconds == 3_600_000_000)
        #expect(policy(3, per: 1, burst: 1).intervalNanoseconds == 333_333_333)
        #expect(policy(10_000_000_000, per: 1, burst: 1).intervalNanoseconds == 1)
        #expect(policy(1, per: UInt64.max, burst: UInt64.max).toleranceNanoseconds == Int64.max / 4)
        #expect(policy(1, per: 86_400, burst: 1_000_000).toleranceNanoseconds == Int64.max / 4)
        let clock = ManualClock()
        let limiter = MemoryBackend(clock: { clock.now })
        // Absurd values neither trap nor admit nothing.
        #expect(admitted(limiter, [policy(1, per: UInt64.max, burst: UInt64.max)], 1000) >= 1)
    }
}

@Suite struct LimitResolution {
    let defaults = TenantLimits(policies: [policy(1000, per: 3600, burst: 100)], concurrency: 0,
                                computeMinutesPerDay: 1000, storageGB: 50)

    @Test func overridesReplaceByNameAndAddPolicies() {
        let o = TenantLimits.Overrides(
            policies: [.init(name: "default", burst: 5), .init(name: "burst", count: 10, periodSeconds: 1, burst: 20, mode: .shadow),
                       .init(name: "aa", count: 1, periodSeconds: 60, burst: 1)],
            concurrency: 4, storageGB: 2)
        let r = defaults.applying(o)
        #expect(r.policies == [policy(1000, per: 3600, burst: 5), policy("aa", 1, per: 60, burst: 1),
                               policy("burst", 10, per: 1, burst: 20, .shadow)])
        #expect(r.concurrency == 4)
        #expect(r.computeMinutesPerDay == 1000)
        #expect(r.storageGB == 2)
    }

    @Test func theTableAppliesChangesAtOnce() {
        let table = LimitTable(defaults: defaults, overrides: ["beta": .init(concurrency: 2)])
        #expect(table.limits(for: "acme") == defaults)
        #expect(table.limits(for: "beta").concurrency == 2)
        table.set("acme", .init(policies: [.init(name: "default", count: 5, periodSeconds: 60)]))
        #expect(table.limits(for: "acme").policies == [policy(5, per: 60, burst: 100)])
        #expect(table.overrides(for: "acme")?.policies.first?.count == 5)
        table.set("acme", nil)
        #expect(table.limits(for: "acme") == defaults)
        #expect(table.overrides(for: "acme") == nil)
    }

    @Test func policyNamesAndValuesAreChecked() {
        #expect(RatePolicy.isValid(name: "default"))
        #expect(RatePolicy.isValid(name: "per-second_2"))
        for bad in ["", "Default", "a b", "x\"y", String(repeating: "a", count: 33), "é"] { #expect(!RatePolicy.isValid(name: bad)) }
        #expect(policy(1000, per: 3600, burst: 1).rateText == "1000/hour")
        #expect(policy(5, per: 7200, burst: 1).rateText == "5/7200s")
    }
}
