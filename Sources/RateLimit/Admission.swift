// Admission: whether a tenant's request may go on, checked in an order that charges
// nothing for a refusal: the daily compute quota, then the cap on requests in flight,
// then every rate policy at once (in memory or in Redis). An admitted request holds a
// `Grant` until its response is sent; releasing it frees its place under the cap.
import Log
import Metrics
import Synchronization

public struct AdmissionSettings: Sendable {
    /// What to do when the Redis backend cannot decide in time.
    public enum OnBackendError: String, Sendable { case deny, allow }
    public var onBackendError: OnBackendError
    /// With `allow`, the fallback admits each policy's rate divided by this.
    public var hosts: UInt32

    public init(onBackendError: OnBackendError = .deny, hosts: UInt32 = 1) {
        self.onBackendError = onBackendError
        self.hosts = max(1, hosts)
    }
}

/// Why a request was refused, with what the client needs to come back at the right time.
public struct Refusal: Sendable, Equatable {
    public enum Reason: String, Sendable, Equatable {
        case rateLimited = "rate_limited"
        case concurrencyLimited = "concurrency_limited"
        case quotaExceeded = "quota_exceeded"
        /// The shared backend did not answer and `on_backend_error = deny`.
        case backendUnavailable = "rate_limit_unavailable"
    }
    public var reason: Reason
    /// Whole seconds, rounded up: never earlier than the next admission.
    public var retryAfterSeconds: Int
    public var message: String
}

/// The enforced policies and their state after a decision, for the RateLimit headers.
public struct RateStatus: Sendable, Equatable {
    public var policies: [RatePolicy]
    /// Parallel to `policies`; nil when no backend decided (it was unavailable).
    public var states: [RateDecision.PolicyState]?
}

public enum AdmissionVerdict: Sendable {
    case admitted(Grant)
    case refused(Refusal, RateStatus?)
}

/// An admitted request's place under the concurrency cap; `release` once it is answered.
public final class Grant: Sendable {
    public let status: RateStatus
    private let releaser: (@Sendable () -> Void)?
    private let released = Atomic<Bool>(false)

    init(status: RateStatus, releaser: (@Sendable () -> Void)?) {
        self.status = status
        self.releaser = releaser
    }

    public func release() {
        guard !released.exchange(true, ordering: .acquiringAndReleasing) else { return }
        releaser?()
    }
}

/// Counters for `/metrics` and `bulkheadctl status`.
public struct AdmissionCounters: Sendable, Equatable {
    public var admitted = 0
    public var rateLimited = 0
    public var concurrencyLimited = 0
    public var quotaExceeded = 0
    public var backendUnavailable = 0
    /// Decisions the in-process fallback made because Redis could not.
    public var fallbacks = 0
    /// Requests a shadow policy would have refused.
    public var shadowRefusals = 0
}

public final class Admission: Sendable {
    private let table: LimitTable
    private let backend: RateBackend
    /// With `on_backend_error = allow`: decides at the host's share while Redis cannot.
    private let fallback: MemoryBackend
    private let settings: AdmissionSettings
    private let log: Logger
    private let wallClock: @Sendable () -> Int64
    private let monotonic: @Sendable () -> Int64
    private let usage: [UsageStripe]
    /// One atomic per counter: every request bumps one, from every loop.
    private let tally = (0..<7).map { _ in Counter() }

    /// What this host knows of one tenant: requests in flight and today's compute.
    struct Usage {
        var inFlight = 0
        var day: Int64 = -1
        var computeNanoseconds: UInt64 = 0
        var shadowRefusals = 0
        var shadowLoggedAt: Int64?
    }
    final class UsageStripe: Sendable {
        let state = Mutex<[String: Usage]>([:])
    }

    /// - `wallClock`: seconds since the epoch (compute days are UTC days).
    /// - `monotonic`: nanoseconds, for the fallback limiter and log throttling.
    public init(table: LimitTable, backend: RateBackend, settings: AdmissionSettings = AdmissionSettings(), log: Logger,
                wallClock: @escaping @Sendable () -> Int64, monotonic: @escaping @Sendable () -> Int64) {
        self.table = table
        self.backend = backend
        self.settings = settings
        self.log = log
        self.wallClock = wallClock
        self.monotonic = monotonic
        fallback = MemoryBackend(clock: monotonic)
        usage = (0..<32).map { _ in UsageStripe() }
    }

    public var limitTable: LimitTable { table }
    public var snapshot: AdmissionCounters {
        let v = tally.map(\.value)
        return AdmissionCounters(admitted: v[0], rateLimited: v[1], concurrencyLimited: v[2], quotaExceeded: v[3],
                                 backendUnavailable: v[4], fallbacks: v[5], shadowRefusals: v[6])
    }

    /// Decides for one request of `tenant`; `done` is called once, on any thread.
    public func admit(_ tenant: String, _ done: @escaping @Sendable (AdmissionVerdict) -> Void) {
        let limits = table.limits(for: tenant)
        let now = wallClock()
        let today = now / 86_400
        let stripe = usageStripe(tenant)
        let local: Refusal? = stripe.state.withLock { table in
            var u = table[tenant, default: Usage()]
            defer { table[tenant] = u }
            if u.day != today {
                u.day = today
                u.computeNanoseconds = 0
            }
            let (quota, overflow) = limits.computeMinutesPerDay.multipliedReportingOverflow(by: 60_000_000_000)
            if !overflow, u.computeNanoseconds >= quota {
                return Refusal(reason: .quotaExceeded, retryAfterSeconds: Int(max(1, (today + 1) * 86_400 - now)),
                               message: "the tenant has used its \(limits.computeMinutesPerDay) compute minutes for today (UTC)")
            }
            if limits.concurrency > 0, u.inFlight >= limits.concurrency {
                return Refusal(reason: .concurrencyLimited, retryAfterSeconds: 1,
                               message: "the tenant already has \(limits.concurrency) requests in flight")
            }
            u.inFlight += 1
            return nil
        }
        if let local {
            count(local.reason)
            return done(.refused(local, Self.undecided(limits)))
        }
        let release: @Sendable () -> Void = { [stripe] in
            stripe.state.withLock { table in
                if var u = table[tenant] {
                    u.inFlight -= 1
                    table[tenant] = u
                }
            }
        }
        guard !limits.policies.isEmpty else {
            count(nil)
            return done(.admitted(Grant(status: Self.undecided(limits), releaser: release)))
        }
        backend.decide(tenant, limits.policies) { [self] result in
            switch result {
            case .decided(let decision):
                finish(tenant, limits.policies, decision, release: release, done)
            case .unavailable:
                switch settings.onBackendError {
                case .deny:
                    release()
                    count(.backendUnavailable)
                    // The reason (Redis's state) is the operator's business, and is logged
                    // when the connection changes; the client learns only when to retry.
                    done(.refused(Refusal(reason: .backendUnavailable, retryAfterSeconds: 1,
                                          message: "the rate limiter cannot decide now; retry later"), Self.undecided(limits)))
                case .allow:
                    tally[5].add()
                    let share = limits.policies.map { p -> RatePolicy in
                        var q = p
                        q.count = max(1, p.count / UInt64(settings.hosts))
                        q.burst = max(1, p.burst / UInt64(settings.hosts))
                        return q
                    }
                    let decision = fallback.decide(tenant, share)
                    finish(tenant, share, decision, release: release, done)
                }
            }
        }
    }

    /// The enforced policies, with no state: nothing was decided.
    private static func undecided(_ limits: TenantLimits) -> RateStatus {
        RateStatus(policies: limits.policies.filter { $0.mode == .enforce }, states: nil)
    }

    private func finish(_ tenant: String, _ policies: [RatePolicy], _ decision: RateDecision,
                        release: @escaping @Sendable () -> Void, _ done: @escaping @Sendable (AdmissionVerdict) -> Void) {
        var enforced = RateStatus(policies: policies, states: decision.states)
        if policies.contains(where: { $0.mode == .shadow }) {  // rare: only then build new arrays
            enforced = RateStatus(policies: [], states: [])
            var refused: [String] = []
            for (p, s) in zip(policies, decision.states) {
                if p.mode == .enforce {
                    enforced.policies.append(p)
                    enforced.states?.append(s)
                } else if !s.admits {
                    refused.append(p.name)
                }
            }
            if !refused.isEmpty { noteShadow(tenant, refused) }
        }
        if decision.admitted {
            count(nil)
            done(.admitted(Grant(status: enforced, releaser: release)))
        } else {
            release()
            count(.rateLimited)
            let seconds = Int((decision.retryAfterNanoseconds + 999_999_999) / 1_000_000_000)
            done(.refused(Refusal(reason: .rateLimited, retryAfterSeconds: max(1, seconds),
                                  message: "the tenant's rate limit is used up; retry after \(max(1, seconds))s"), enforced))
        }
    }

    /// Shadow refusals are counted, and logged at most once a second per tenant.
    private func noteShadow(_ tenant: String, _ names: [String]) {
        tally[6].add()
        let now = monotonic()
        let line: Int? = usageStripe(tenant).state.withLock { table in
            var u = table[tenant, default: Usage()]
            defer { table[tenant] = u }
            u.shadowRefusals += 1
            if let last = u.shadowLoggedAt, now - last < 1_000_000_000 { return nil }
            u.shadowLoggedAt = now
            defer { u.shadowRefusals = 0 }
            return u.shadowRefusals
        }
        if let line {
            log.info("ratelimit_shadow_refusal", [("tenant", .string(tenant)), ("policies", .string(names.joined(separator: ","))),
                                                  ("requests", .of(line))])
        }
    }

    /// Adds worker time to the tenant's compute today (from the supervisor).
    public func recordCompute(_ tenant: String, nanoseconds: UInt64) {
        let today = wallClock() / 86_400
        usageStripe(tenant).state.withLock { table in
            var u = table[tenant, default: Usage()]
            if u.day != today {
                u.day = today
                u.computeNanoseconds = 0
            }
            u.computeNanoseconds &+= nanoseconds
            table[tenant] = u
        }
    }

    /// The tenant's compute today and requests in flight on this host.
    public func usage(_ tenant: String) -> (computeNanoseconds: UInt64, inFlight: Int) {
        let today = wallClock() / 86_400
        return usageStripe(tenant).state.withLock { table in
            guard let u = table[tenant] else { return (0, 0) }
            return (u.day == today ? u.computeNanoseconds : 0, u.inFlight)
        }
    }

    private func count(_ refusal: Refusal.Reason?) {
        switch refusal {
        case nil: tally[0].add()
        case .rateLimited: tally[1].add()
        case .concurrencyLimited: tally[2].add()
        case .quotaExceeded: tally[3].add()
        case .backendUnavailable: tally[4].add()
        }
    }

    private func usageStripe(_ tenant: String) -> UsageStripe { usage[stripeIndex(tenant, count: usage.count)] }
}

/// FNV-1a of the tenant id: cheap, stable, spreads tenants over lock stripes.
func stripeIndex(_ tenant: String, count: Int) -> Int {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in tenant.utf8 { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
    return Int(h % UInt64(count))
}
