// The generic cell rate algorithm (GCRA, ITU-T I.371), the arithmetic behind both
// backends. Per policy the state is one number, the theoretical arrival time (TAT): the
// time at which the bucket would be empty again at the sustained rate. A request is
// admitted by a policy when TAT + interval − tolerance ≤ now, i.e. it fits in the burst.
// The Redis backend runs the same steps in Lua (RedisScript.swift), in microseconds.

/// The outcome of one request against all of a tenant's policies.
public struct RateDecision: Sendable, Equatable {
    public struct PolicyState: Sendable, Equatable {
        /// Requests this policy would still admit right now.
        public var remaining: UInt64
        /// Until the bucket is full again.
        public var resetNanoseconds: Int64
        /// Whether this policy, alone, admitted the request (shadow policies included).
        public var admits: Bool

        public init(remaining: UInt64, resetNanoseconds: Int64, admits: Bool) {
            self.remaining = remaining
            self.resetNanoseconds = resetNanoseconds
            self.admits = admits
        }
    }

    /// Every enforced policy admits.
    public var admitted: Bool
    /// When refused: until the enforced policies would all admit it.
    public var retryAfterNanoseconds: Int64
    /// One per policy, in the order given.
    public var states: [PolicyState]

    public init(admitted: Bool, retryAfterNanoseconds: Int64, states: [PolicyState]) {
        self.admitted = admitted
        self.retryAfterNanoseconds = retryAfterNanoseconds
        self.states = states
    }
}

public enum GCRA {
    /// Decides one request at `now` and charges `tats` (one per policy) only when it is
    /// admitted: a refused request consumes from no policy. A shadow policy is charged
    /// when it admits on its own, and never refuses. Allocates only the result.
    public static func decide(_ tats: inout [Int64], _ policies: [RatePolicy], now: Int64) -> RateDecision {
        var admitted = true
        var retry: Int64 = 0
        for i in policies.indices {
            let p = policies[i]
            let allowAt = max(tats[i], now) &+ p.intervalNanoseconds &- p.toleranceNanoseconds
            if allowAt > now && p.mode == .enforce {
                admitted = false
                retry = max(retry, allowAt - now)
            }
        }
        var states: [RateDecision.PolicyState] = []
        states.reserveCapacity(policies.count)
        for i in policies.indices {
            let p = policies[i]
            let interval = p.intervalNanoseconds, tolerance = p.toleranceNanoseconds
            let next = max(tats[i], now) &+ interval
            let admits = next &- tolerance <= now
            if admitted && admits { tats[i] = next }
            let tat = max(tats[i], now)
            let room = now &+ tolerance &- tat
            states.append(.init(remaining: room <= 0 ? 0 : UInt64(room / interval), resetNanoseconds: tat - now, admits: admits))
        }
        return RateDecision(admitted: admitted, retryAfterNanoseconds: retry, states: states)
    }

    /// A TAT carried across a change of a policy's interval keeps the number of requests
    /// already used: the debt (TAT − now) is rescaled from the old interval to the new.
    public static func rescale(tat: Int64, from old: Int64, to new: Int64, now: Int64) -> Int64 {
        guard tat > now, old != new, old > 0 else { return tat }
        let used = Double(tat - now) / Double(old)
        let debt = used * Double(new)
        return debt >= Double(Int64.max / 4) ? now + Int64.max / 4 : now + Int64(debt.rounded())
    }
}
