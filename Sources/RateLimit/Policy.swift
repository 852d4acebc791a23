// What a tenant is allowed: named rate policies, a cap on requests in flight and a daily
// compute quota. Plain values; `LimitTable` resolves them per tenant from the
// configuration's defaults and the tenant's stored overrides.
import Synchronization

/// One GCRA policy: `count` requests per `periodSeconds` sustained, `burst` at once.
public struct RatePolicy: Sendable, Equatable, Hashable {
    public enum Mode: String, Sendable, Equatable, Hashable, CaseIterable {
        /// Refuse what the policy does not admit.
        case enforce
        /// Decide and count, but admit: for trying a new limit safely.
        case shadow
    }

    /// The name clients see in `RateLimit-Policy`: 1–32 of a-z 0-9 _ -.
    public var name: String
    public var count: UInt64
    public var periodSeconds: UInt64
    public var burst: UInt64
    public var mode: Mode

    public init(name: String, count: UInt64, periodSeconds: UInt64, burst: UInt64, mode: Mode = .enforce) {
        self.name = name
        self.count = count
        self.periodSeconds = periodSeconds
        self.burst = burst
        self.mode = mode
    }

    /// The policy every tenant has unless an override replaces its values.
    public static let defaultName = "default"

    public static func isValid(name: String) -> Bool {
        let b = name.utf8
        return (1...32).contains(b.count)
            && b.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F || $0 == 0x2D }
    }

    /// Nanoseconds between two requests at the sustained rate (the GCRA emission interval).
    public var intervalNanoseconds: Int64 {
        let period = UInt64(periodSeconds).multipliedReportingOverflow(by: 1_000_000_000)
        let ns = period.overflow ? UInt64(Int64.max) : period.partialValue
        // At most a quarter of Int64: TAT + interval never overflows.
        return min(Int64(clamping: max(1, ns / max(count, 1))), Int64.max / 4)
    }

    /// How far ahead of now the theoretical arrival time may run: `burst` intervals.
    public var toleranceNanoseconds: Int64 {
        let (t, overflow) = intervalNanoseconds.multipliedReportingOverflow(by: Int64(clamping: burst))
        return overflow ? Int64.max / 4 : min(t, Int64.max / 4)
    }

    /// "1000/hour" when the period is a unit, else "1000/7200s".
    public var rateText: String {
        switch periodSeconds {
        case 1: "\(count)/second"
        case 60: "\(count)/minute"
        case 3600: "\(count)/hour"
        case 86_400: "\(count)/day"
        default: "\(count)/\(periodSeconds)s"
        }
    }
}

/// Everything `Admission` enforces for one tenant.
public struct TenantLimits: Sendable, Equatable {
    /// All of them must admit a request; none is charged for a refused one.
    public var policies: [RatePolicy]
    /// Requests of this tenant in flight on this host at once; 0 = no cap.
    public var concurrency: Int
    /// Worker compute per UTC day, in minutes (0 refuses every request).
    public var computeMinutesPerDay: UInt64
    /// Volume size in GiB (enforced by the files service).
    public var storageGB: Double

    public init(policies: [RatePolicy], concurrency: Int = 0, computeMinutesPerDay: UInt64 = .max, storageGB: Double = 50) {
        self.policies = policies
        self.concurrency = concurrency
        self.computeMinutesPerDay = computeMinutesPerDay
        self.storageGB = storageGB
    }

    /// A tenant's stored changes to the defaults; nil fields keep the default. `policies`
    /// replace or add by name; a policy named `default` with nil values keeps those of
    /// the configuration.
    public struct Overrides: Sendable, Equatable {
        public struct Policy: Sendable, Equatable {
            public var name: String
            public var count: UInt64?
            public var periodSeconds: UInt64?
            public var burst: UInt64?
            public var mode: RatePolicy.Mode?

            public init(name: String, count: UInt64? = nil, periodSeconds: UInt64? = nil, burst: UInt64? = nil,
                        mode: RatePolicy.Mode? = nil) {
                self.name = name
                self.count = count
                self.periodSeconds = periodSeconds
                self.burst = burst
                self.mode = mode
            }
        }

        public var policies: [Policy]
        public var concurrency: Int?
        public var computeMinutesPerDay: UInt64?
        public var storageGB: Double?

        public init(policies: [Policy] = [], concurrency: Int? = nil, computeMinutesPerDay: UInt64? = nil,
                    storageGB: Double? = nil) {
            self.policies = policies
            self.concurrency = concurrency
            self.computeMinutesPerDay = computeMinutesPerDay
            self.storageGB = storageGB
        }
    }

    /// The defaults with `overrides` applied. The default policy comes first, the others
    /// in name order, so headers are stable.
    public func applying(_ overrides: Overrides) -> TenantLimits {
        var result = self
        for o in overrides.policies {
            if let i = result.policies.firstIndex(where: { $0.name == o.name }) {
                var p = result.policies[i]
                p.count = o.count ?? p.count
                p.periodSeconds = o.periodSeconds ?? p.periodSeconds
                p.burst = o.burst ?? p.burst
                p.mode = o.mode ?? p.mode
                result.policies[i] = p
            } else if let count = o.count, let period = o.periodSeconds, let burst = o.burst {
                result.policies.append(RatePolicy(name: o.name, count: count, periodSeconds: period, burst: burst,
                                                  mode: o.mode ?? .enforce))
            }
        }
        result.policies.sort { a, b in
            if (a.name == RatePolicy.defaultName) != (b.name == RatePolicy.defaultName) { return a.name == RatePolicy.defaultName }
            return a.name < b.name
        }
        result.concurrency = overrides.concurrency ?? concurrency
        result.computeMinutesPerDay = overrides.computeMinutesPerDay ?? computeMinutesPerDay
        result.storageGB = overrides.storageGB ?? storageGB
        return result
    }
}

/// Each tenant's effective limits, read on every request from every loop and changed by
/// the control plane without a restart.
public final class LimitTable: Sendable {
    private struct State {
        var defaults: TenantLimits
        var overrides: [String: TenantLimits.Overrides]
        var resolved: [String: TenantLimits]
    }
    private let state: Mutex<State>

    public init(defaults: TenantLimits, overrides: [String: TenantLimits.Overrides] = [:]) {
        state = Mutex(State(defaults: defaults, overrides: overrides,
                            resolved: overrides.mapValues { defaults.applying($0) }))
    }

    public func limits(for tenant: String) -> TenantLimits {
        state.withLock { $0.resolved[tenant] ?? $0.defaults }
    }

    public func overrides(for tenant: String) -> TenantLimits.Overrides? {
        state.withLock { $0.overrides[tenant] }
    }

    /// New defaults (a reload): every tenant's limits are worked out again from them.
    public func setDefaults(_ defaults: TenantLimits) {
        state.withLock { s in
            s.defaults = defaults
            s.resolved = s.overrides.mapValues { defaults.applying($0) }
        }
    }

    /// Replaces the tenant's overrides (nil: back to the defaults).
    public func set(_ tenant: String, _ overrides: TenantLimits.Overrides?) {
        state.withLock { s in
            s.overrides[tenant] = overrides
            s.resolved[tenant] = overrides.map { s.defaults.applying($0) }
        }
    }
}
