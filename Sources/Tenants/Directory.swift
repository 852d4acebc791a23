// The in-memory view of tenants and keys that the request path reads on every request:
// loaded from the store at start, updated by every control command that changes them.
import Auth
import Store
import Synchronization

/// Tenants by id, and which of them are being restored. Thread-safe; lookups hold the
/// lock for a dictionary read.
public final class TenantDirectory: Sendable {
    private let tenants = Mutex<[String: TenantRecord]>([:])
    /// Tenants whose volume a `tenant restore` is replacing: their requests are refused
    /// until it ends, so no worker writes into the volume meanwhile or keeps the old one.
    private let restoring = Mutex<Set<String>>([])

    public init(_ records: [TenantRecord] = []) {
        tenants.withLock { t in for r in records { t[r.id] = r } }
    }

    public func tenant(_ id: String) -> TenantRecord? { tenants.withLock { $0[id] } }
    public func put(_ record: TenantRecord) { tenants.withLock { $0[record.id] = record } }
    public func remove(_ id: String) { tenants.withLock { $0[id] = nil } }
    public var count: Int { tenants.withLock { $0.count } }
    public var ids: [String] { tenants.withLock { Array($0.keys) } }

    /// Marks the tenant as being restored; false if it already is.
    public func beginRestore(_ id: String) -> Bool { restoring.withLock { $0.insert(id).inserted } }
    public func endRestore(_ id: String) { _ = restoring.withLock { $0.remove(id) } }
    public func isRestoring(_ id: String) -> Bool { restoring.withLock { $0.contains(id) } }
}

/// Whether a verified token's key may still be used: revocation and rotation take effect
/// on the very next request because every request asks here after signature checks
/// (which the token cache may have skipped).
public final class KeyRegistry: Sendable {
    public enum Verdict: Sendable, Equatable {
        case valid
        case unknown      // not issued by this server (or its tenant was deleted)
        case revoked
        case replaced     // rotated, and the grace period is over
    }

    private struct State: Sendable {
        var revokedAt: Int64?
        var graceUntil: Int64?
        var tenantID: String?
    }

    private let keys = Mutex<[String: State]>([:])

    public init(_ records: [KeyRecord] = []) {
        keys.withLock { k in for r in records { k[r.jti] = Self.state(r) } }
    }

    public func put(_ record: KeyRecord) { keys.withLock { $0[record.jti] = Self.state(record) } }
    public func remove(_ jtis: [String]) { keys.withLock { k in for j in jtis { k[j] = nil } } }

    public func verdict(jti: String, now: Int64) -> Verdict {
        keys.withLock { k in
            guard let s = k[jti] else { return .unknown }
            if let r = s.revokedAt, r <= now { return .revoked }
            if let g = s.graceUntil, now >= g { return .replaced }
            return .valid
        }
    }

    /// The tenant a key belongs to (nil for admin keys and unknown keys).
    public func tenant(of jti: String) -> String? { keys.withLock { $0[jti]?.tenantID } }

    private static func state(_ r: KeyRecord) -> State {
        State(revokedAt: r.revokedAt, graceUntil: r.graceUntil, tenantID: r.tenantID)
    }
}
