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

        func matches(_ policies: [RatePolicy]) -> Bool {
            guard names.count == policies.count else { return false }
            for i in policies.indices where names[i] != policies[i].name || intervals[i] != policies[i].intervalNanoseconds {
                return false
            }
            return true
        }

        /// The tenant's policies changed: keep each surviving policy's TAT (rescaled to
        /// its new interval), start new ones full.
        mutating func realign(_ policies: [RatePolicy], now: Int64) {
            tats = policies.map { p in
                guard let j = names.firstIndex(of: p.name) else { return now }
                return GCRA.rescale(tat: tats[j], from: intervals[j], to: p.intervalNanoseconds, now: now)
            }
            names = policies.map(\.name)
            intervals = policies.map(\.intervalNanoseconds)
        }
    }
    struct Stripe {
        var buckets: [String: TenantBuckets] = [:]
        var decisions = 0
    }

    private let stripes: [StripeBox]
    private let clock: @Sendable () -> Int64

    final class StripeBox: Sendable {
        let state = Mutex(Stripe())
        /// Keeps two stripes out of one cache line, so loops on different cores that
        /// decide for different tenants do not contend for it.
        let padding: (Int64, Int64, Int64, Int64, Int64, Int64, Int64, Int64) = (0, 0, 0, 0, 0, 0, 0, 0)
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
        let now = clock()
        return stripe(tenant).state.withLock { s in
            s.decisions &+= 1
            if s.decisions & 0xFFF == 0 { Self.prune(&s, now: now) }
            // Mutated in place through the subscript: no copy of the tenant's arrays.
            return Self.decide(&s.buckets[tenant, default: TenantBuckets()], policies, now)
        }
    }

    private static func decide(_ b: inout TenantBuckets, _ policies: [RatePolicy], _ now: Int64) -> RateDecision {
        if !b.matches(policies) { b.realign(policies, now: now) }
        return GCRA.decide(&b.tats, policies, now: now)
    }

    /// Buckets whose TAT has passed are full again, the same as no bucket: drop them so
    /// memory follows the active tenants, not every tenant ever seen.
    private static func prune(_ s: inout Stripe, now: Int64) {
        s.buckets = s.buckets.filter { $0.value.tats.contains { $0 > now } }
    }

    private func stripe(_ tenant: String) -> StripeBox { stripes[stripeIndex(tenant, count: stripes.count)] }
}
