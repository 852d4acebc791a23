// The in-process backend: GCRA state per tenant and policy in memory, shared by every
// event loop. The table is split into stripes, each behind its own lock, so two loops
// deciding for different tenants rarely meet; a decision is a hash, a lock and a few
// additions.
import Synchronization

/// Where rate decisions are made. `decide` answers through `done` exactly once, on any
/// thread: at once for the memory backend, later for Redis.
public protocol RateBackend: Sendable {
    func decide(_ tenant: String, _ policies: [RatePolicy], _ done: @escaping @Sendable (BackendResult) -> Void)
}

public enum BackendResult: Sendable {
    case decided(RateDecision)
    /// The backend could not decide in time; `on_backend_error` applies.
    case unavailable(String)
}

public final class MemoryBackend: RateBackend {
    /// One tenant's TATs, parallel to the names of the policies they were last charged for.
    struct TenantBuckets {
        var names: [String] = []
        var tats: [Int64] = []
        var intervals: [Int64] = []
    }
    struct Stripe {
        var buckets: [String: TenantBuckets] = [:]
        var decisions = 0
    }

    private let stripes: [StripeBox]
    private let clock: @Sendable () -> Int64

    final class StripeBox: Sendable {
        let state = Mutex(Stripe())
    }

    /// `clock`: monotonic nanoseconds (injected by tests).
    public init(stripes count: Int = 64, clock: @escaping @Sendable () -> Int64) {
        stripes = (0..<max(1, count)).map { _ in StripeBox() }
        self.clock = clock
    }

    public func decide(_ tenant: String, _ policies: [RatePolicy], _ done: @escaping @Sendable (BackendResult) -> Void) {
        done(.decided(decide(tenant, policies)))
    }

    /// The synchronous form, for callers that need no callback.
    public func decide(_ tenant: String, _ policies: [RatePolicy]) -> RateDecision {
        let intervals = policies.map(\.intervalNanoseconds)
        let tolerances = policies.map(\.toleranceNanoseconds)
        let shadow = policies.map { $0.mode == .shadow }
        let now = clock()
        return stripe(tenant).state.withLock { s in
            s.decisions &+= 1
            if s.decisions & 0xFFF == 0 { Self.prune(&s, now: now) }
            // Mutated in place through the subscript: no copy of the tenant's arrays.
            return Self.decide(&s.buckets[tenant, default: TenantBuckets()], policies, intervals, tolerances, shadow, now)
        }
    }

    private static func decide(_ b: inout TenantBuckets, _ policies: [RatePolicy], _ intervals: [Int64],
                               _ tolerances: [Int64], _ shadow: [Bool], _ now: Int64) -> RateDecision {
        var tats = policies.indices.map { i -> Int64 in
            guard let j = b.names.firstIndex(of: policies[i].name) else { return now }
            return GCRA.rescale(tat: b.tats[j], from: b.intervals[j], to: intervals[i], now: now)
        }
        let decision = GCRA.decide(&tats, intervals: intervals, tolerances: tolerances, shadow: shadow, now: now)
        if b.names.count != policies.count || !zip(b.names, policies).allSatisfy({ $0 == $1.name }) {
            b.names = policies.map(\.name)
        }
        b.tats = tats
        b.intervals = intervals
        return decision
    }

    /// Drops the tenant's state (deleted tenant).
    public func forget(_ tenant: String) {
        _ = stripe(tenant).state.withLock { $0.buckets.removeValue(forKey: tenant) }
    }

    /// Buckets whose TAT has passed are full again, the same as no bucket: drop them so
    /// memory follows the active tenants, not every tenant ever seen.
    private static func prune(_ s: inout Stripe, now: Int64) {
        s.buckets = s.buckets.filter { $0.value.tats.contains { $0 > now } }
    }

    private func stripe(_ tenant: String) -> StripeBox { stripes[stripeIndex(tenant, count: stripes.count)] }
}
