// Records.swift owns the values the store hands in and out: tenants, API keys, audit
// entries and per-tenant limit overrides. Plain values, no database concepts, so another
// backend can return the same types. Times are Unix seconds.

/// A tenant: its identity and the uid/gid its workers run as.
public struct TenantRecord: Sendable, Equatable {
    public var id: String
    public var name: String
    public var status: TenantStatus
    public var uid: UInt32
    /// Always equal to `uid` for tenants the store created.
    public var gid: UInt32
    public var createdAt: Int64

    public init(id: String, name: String, status: TenantStatus, uid: UInt32, gid: UInt32, createdAt: Int64) {
        self.id = id
        self.name = name
        self.status = status
        self.uid = uid
        self.gid = gid
        self.createdAt = createdAt
    }
}

public enum TenantStatus: String, Sendable, CaseIterable {
    case active, suspended
}

public enum KeyKind: String, Sendable, CaseIterable {
    /// Belongs to one tenant (`tenantID` is set).
    case tenant
    /// An operator's key (`tenantID` is nil).
    case admin
}

/// An issued API key, by its JWT `jti`. The token itself is never stored.
public struct KeyRecord: Sendable, Equatable {
    public var jti: String
    /// The tenant of a `.tenant` key; nil for an `.admin` key.
    public var tenantID: String?
    public var kind: KeyKind
    /// The token's `scope` claim, one word each: a scope is non-empty and has no whitespace
    /// (RFC 8693 §4.2 separates scopes by spaces).
    public var scopes: [String]
    public var issuedAt: Int64
    public var expiresAt: Int64?
    public var revokedAt: Int64?
    /// Set by `rotateKey`: the jti of the key that replaces this one.
    public var replacedBy: String?
    /// Set by `rotateKey`: this key stays valid until then, even though it is replaced.
    public var graceUntil: Int64?

    public init(
        jti: String, tenantID: String?, kind: KeyKind, scopes: [String], issuedAt: Int64, expiresAt: Int64? = nil,
        revokedAt: Int64? = nil, replacedBy: String? = nil, graceUntil: Int64? = nil
    ) {
        self.jti = jti
        self.tenantID = tenantID
        self.kind = kind
        self.scopes = scopes
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
        self.replacedBy = replacedBy
        self.graceUntil = graceUntil
    }
}

/// One line of the audit log: who did what to what, when, and how it ended.
public struct AuditRecord: Sendable, Equatable {
    /// Assigned by the store on append, increasing; 0 in a record not yet appended.
    public var id: Int64
    public var time: Int64
    /// Who: for the control socket, the peer (for example `uid=0 pid=4242`).
    public var actor: String
    /// What, for example `tenant.create`.
    public var action: String
    /// The tenant (or key) acted on, if any; `audit(target:limit:)` filters on it.
    public var target: String?
    /// How it ended, for example `ok` or the error code.
    public var result: String
    public var detail: String?

    public init(
        id: Int64 = 0, time: Int64, actor: String, action: String, target: String? = nil, result: String,
        detail: String? = nil
    ) {
        self.id = id
        self.time = time
        self.actor = actor
        self.action = action
        self.target = target
        self.result = result
        self.detail = detail
    }
}

/// A tenant's overrides of the configured limits (SPEC §3); nil means "use the
/// configuration". Counts above `Int64.max` and negative or non-finite values are refused.
public struct LimitOverrides: Sendable, Equatable {
    /// Requests in flight at once.
    public var concurrency: Int?
    public var computeMinutesPerDay: UInt64?
    public var storageGB: Double?
    public var maxWorkers: Int?
    /// Named rate policies, by name.
    public var policies: [PolicyOverride]

    public init(concurrency: Int? = nil, computeMinutesPerDay: UInt64? = nil, storageGB: Double? = nil, maxWorkers: Int? = nil,
                policies: [PolicyOverride] = []) {
        self.concurrency = concurrency
        self.computeMinutesPerDay = computeMinutesPerDay
        self.storageGB = storageGB
        self.maxWorkers = maxWorkers
        self.policies = policies
    }
}

/// One named rate policy of a tenant: `rateCount` requests per `ratePeriodSeconds`,
/// `burst` at once. Only the policy named `default` may leave values nil (they keep the
/// configuration's); any other needs all three.
public struct PolicyOverride: Sendable, Equatable {
    public enum Mode: String, Sendable, Equatable {
        case enforce, shadow
    }
    public static let defaultName = "default"

    public var name: String
    public var rateCount: UInt64?
    public var ratePeriodSeconds: UInt64?
    public var burst: UInt64?
    /// nil: the configuration's mode for `default`, enforce for others.
    public var mode: Mode?

    public init(name: String, rateCount: UInt64? = nil, ratePeriodSeconds: UInt64? = nil, burst: UInt64? = nil, mode: Mode? = nil) {
        self.name = name
        self.rateCount = rateCount
        self.ratePeriodSeconds = ratePeriodSeconds
        self.burst = burst
        self.mode = mode
    }
}

/// One tenant's usage on one UTC day (`day` is YYYY-MM-DD). Added up, never replaced,
/// except `storageBytes`, which is the last measurement of the day.
public struct UsageRow: Sendable, Equatable {
    public var tenantID: String
    public var day: String
    public var requests: Int64
    public var errors: Int64
    public var rateLimited: Int64
    public var bytesIn: Int64
    public var bytesOut: Int64
    public var cpuMicros: Int64
    /// nil in a delta: no new measurement.
    public var storageBytes: Int64?

    public init(tenantID: String, day: String, requests: Int64 = 0, errors: Int64 = 0, rateLimited: Int64 = 0,
                bytesIn: Int64 = 0, bytesOut: Int64 = 0, cpuMicros: Int64 = 0, storageBytes: Int64? = nil) {
        self.tenantID = tenantID
        self.day = day
        self.requests = requests
        self.errors = errors
        self.rateLimited = rateLimited
        self.bytesIn = bytesIn
        self.bytesOut = bytesOut
        self.cpuMicros = cpuMicros
        self.storageBytes = storageBytes
    }

    /// `other` added to this row (same tenant and day); its storage replaces ours if it has one.
    public mutating func add(_ other: UsageRow) {
        requests += other.requests
        errors += other.errors
        rateLimited += other.rateLimited
        bytesIn += other.bytesIn
        bytesOut += other.bytesOut
        cpuMicros += other.cpuMicros
        if let s = other.storageBytes { storageBytes = s }
    }
}
