// AdminCommands: what each control command does — tenant lifecycle, keys, audit, status.
// Runs on the control loop's thread; every command is audited, none logs a token.
import Auth
import CBulkhead
import Control
import Dispatch
import EventLoop
import Glibc
import JSON
import Log
import Metering
import RateLimit
import Store
import Supervisor
import Wire

public struct TenantSettings: Sendable {
    public var uidBase: UInt32
    public var uidCount: UInt32
    public var volumesRoot: String
    public var volumePrefix: String
    public var autoCreateVolumes: Bool
    public var issuer: String
    public var audience: String

    public init(uidBase: UInt32, uidCount: UInt32, volumesRoot: String, volumePrefix: String, autoCreateVolumes: Bool,
                issuer: String, audience: String) {
        self.uidBase = uidBase
        self.uidCount = uidCount
        self.volumesRoot = volumesRoot
        self.volumePrefix = volumePrefix
        self.autoCreateVolumes = autoCreateVolumes
        self.issuer = issuer
        self.audience = audience
    }
}

struct CommandError: Error {
    let code: ErrorCode
    let message: String
    init(_ code: ErrorCode, _ message: String) {
        self.code = code
        self.message = message
    }
}

public final class AdminCommands: ControlHandler {
    /// Scopes a tenant key may carry; the default is all of them.
    public static let tenantScopes = ["process", "dict", "files", "usage"]
    public static let adminScope = "admin"

    let store: Store
    private let issuer: TokenIssuer
    let settings: TenantSettings
    let directory: TenantDirectory
    private let keys: KeyRegistry
    let supervisor: SupervisorLink
    let log: Logger
    let clock: @Sendable () -> Int64
    private let startedAt: Int64
    let admission: Admission
    let meter: UsageMeter
    /// Reload, drain and the daemon's figures; nil in tests that run the commands alone.
    let operations: (any DaemonOperations)?

    public init(store: Store, issuer: TokenIssuer, settings: TenantSettings, directory: TenantDirectory, keys: KeyRegistry,
                supervisor: SupervisorLink, admission: Admission, meter: UsageMeter, log: Logger,
                operations: (any DaemonOperations)? = nil, clock: @escaping @Sendable () -> Int64) {
        self.store = store
        self.issuer = issuer
        self.settings = settings
        self.directory = directory
        self.keys = keys
        self.supervisor = supervisor
        self.admission = admission
        self.meter = meter
        self.log = log
        self.operations = operations
        self.clock = clock
        self.startedAt = clock()
    }

    public func refused(_ peer: ControlPeer) {
        audit(peer, "control.connect", nil, "refused: forbidden", "neither root nor in the admin group")
    }

    public func handle(_ command: String, _ args: JSONObject, from peer: ControlPeer, descriptor: Int32?) -> ControlReply {
        let target = args["ID"]?.stringValue ?? args["TENANT"]?.stringValue ?? args["KEY_ID"]?.stringValue
            ?? args["tenant"]?.stringValue
        do {
            let (answer, detail) = try run(command, args, descriptor: descriptor)
            audit(peer, command, answer.target ?? target, "ok", detail)
            return .ok(answer.value)
        } catch {
            audit(peer, command, target, "refused: \(error.code.name)", error.message)
            return .refused(error.code, error.message)
        }
    }

    struct Answer {
        var value: JSONValue
        var target: String?
    }

    private func run(_ command: String, _ a: JSONObject, descriptor: Int32?) throws(CommandError) -> (Answer, String?) {
        switch command {
        case "status": return (Answer(value: status()), nil)
        case "reload":
            guard let operations else { throw CommandError(.internal, "reload is not available") }
            do {
                let outcome = try operations.reload(trigger: "bulkheadctl")
                let detail = outcome.restartNeeded.isEmpty ? "generation \(outcome.generation)"
                    : "generation \(outcome.generation); needs a restart: " + outcome.restartNeeded.joined(separator: ", ")
                return (Answer(value: .object(JSONObject([
                    ("generation", .number(JSONNumber(outcome.generation))),
                    ("restart_needed", .array(outcome.restartNeeded.map { .string($0) })),
                ]))), detail)
            } catch {
                throw CommandError(.badRequest, "configuration refused, the running one is kept: \(error.message)")
            }
        case "tenant.backup": return (try backupTenant(try string(a, "ID"), into: descriptor), nil)
        case "tenant.restore": return (try restoreTenant(try string(a, "ID"), from: descriptor), nil)
        case "backup-state": return (try backupState(into: descriptor), nil)
        case "workers.list":
            return (Answer(value: .object(JSONObject([("workers", .array(workerRows(a["tenant"]?.stringValue)))]))), nil)
        case "workers.kill":
            let target = try string(a, "TARGET")
            guard Int32(target) != nil || TenantIdentity.isValid(id: target) else {
                throw CommandError(.badRequest, "give a worker's pid or a tenant id")
            }
            let killed = supervisor.kill(target)
            guard killed > 0 else { throw CommandError(.notFound, "no live worker with pid \(target) or of tenant \(target)") }
            return (Answer(value: .object(JSONObject([("killed", .number(JSONNumber(killed)))]))), "\(killed) killed")
        case "drain":
            guard let operations else { throw CommandError(.internal, "drain is not available") }
            operations.drain()
            return (Answer(value: .object(JSONObject([("draining", .bool(true))]))), nil)
        case "tenant.create":
            let id = try string(a, "ID")
            let name = a["name"]?.stringValue ?? id
            return (try createTenant(id: id, name: name), "name=\(name)")
        case "tenant.list": return (Answer(value: .object(JSONObject([("tenants", .array(try listTenants()))]))), nil)
        case "tenant.show": return (Answer(value: try showTenant(try string(a, "ID"))), nil)
        case "tenant.suspend": return (try setStatus(try string(a, "ID"), .suspended), nil)
        case "tenant.resume": return (try setStatus(try string(a, "ID"), .active), nil)
        case "tenant.delete":
            let purge = a["purge"]?.boolValue ?? false
            return (try deleteTenant(try string(a, "ID"), purge: purge), purge ? "purge" : nil)
        case "key.issue":
            let tenant = try string(a, "TENANT")
            let scopes = try tenantScopes(a["scope"])
            return (try issueKey(tenant: tenant, ttl: try seconds(a, "ttl"), scopes: scopes), "scopes=\(scopes.joined(separator: " "))")
        case "key.list": return (Answer(value: try listKeys(try string(a, "TENANT"))), nil)
        case "key.revoke": return (try revokeKey(try string(a, "KEY_ID")), nil)
        case "key.rotate":
            let grace = try seconds(a, "grace") ?? 86_400
            return (try rotateKey(try string(a, "KEY_ID"), grace: grace, ttl: try seconds(a, "ttl")), "grace=\(grace)s")
        case "admin-key.issue":
            let name = a["name"]?.stringValue ?? "admin"
            return (try issueAdminKey(name: name, ttl: try seconds(a, "ttl")), "name=\(name)")
        case "limits.set":
            let (answer, detail) = try setLimits(a)
            return (answer, detail)
        case "limits.show": return (Answer(value: try showLimits(try string(a, "TENANT"))), nil)
        case "limits.reset": return (try resetLimits(try string(a, "TENANT")), nil)
        case "usage.show": return (Answer(value: try usageShow(a)), nil)
        case "usage.export": return (Answer(value: try usageExport(a)), nil)
        case "audit":
            let limit = a["limit"]?.intValue.map(Int.init) ?? 50
            return (Answer(value: try auditEntries(tenant: a["tenant"]?.stringValue, limit: limit)), nil)
        default:
            throw CommandError(.badRequest, "unknown command \(command)")
        }
    }

    // MARK: Tenants

    private func createTenant(id: String, name: String) throws(CommandError) -> Answer {
        try validate(tenantID: id)
        guard !name.isEmpty, name.utf8.count <= 200, !name.contains(where: { $0.isNewline }) else {
            throw CommandError(.badRequest, "the tenant name must be 1 to 200 characters on one line")
        }
        let now = clock()
        let key = newKey(tenant: id, kind: .tenant, scopes: Self.tenantScopes, now: now, ttl: nil)
        let record: TenantRecord
        do {
            record = try store.createTenant(id: id, name: name, uidBase: settings.uidBase, uidCount: settings.uidCount,
                                            now: now, firstKey: key.record)
        } catch {
            throw storeError(error, "tenant \(id)")
        }
        if settings.autoCreateVolumes {
            do {
                _ = try Volumes.ensure(tenant: identity(record), root: settings.volumesRoot, prefix: settings.volumePrefix,
                                       create: true)
            } catch {
                // No tenant without its volume: undo the registration.
                _ = try? store.deleteTenant(id, now: now)
                throw CommandError(error.code == .occupied ? .conflict : .internal, "cannot provision the volume: \(error.description)")
            }
        }
        meter.track(id)  // a purged tenant of the same id was forgotten
        directory.put(record)
        keys.put(key.record)
        log.info("tenant_created", [("tenant", .string(id)), ("uid", .of(record.uid)), ("key_id", .string(key.record.jti))])
        return Answer(value: .object(JSONObject([("tenant", tenantJSON(record)), ("api_key", .string(key.token)),
                                                 ("jti", .string(key.record.jti))])), target: id)
    }

    private func listTenants() throws(CommandError) -> [JSONValue] {
        do { return try store.tenants().map(tenantJSON) } catch { throw storeError(error, "tenants") }
    }

    private func showTenant(_ id: String) throws(CommandError) -> JSONValue {
        let record = try existing(id)
        let keyCount: Int
        do { keyCount = try store.keys(tenant: id).count } catch { throw storeError(error, "keys") }
        let pool = supervisor.snapshot().first { $0.tenant == id }
        guard case .object(var object) = tenantJSON(record) else { preconditionFailure() }
        object = JSONObject(object.members.map { ($0.key, $0.value) } + [
            ("volume", .string(Volumes.path(root: settings.volumesRoot, prefix: settings.volumePrefix, tenant: id))),
            ("keys", .number(JSONNumber(keyCount))),
            ("workers", .number(JSONNumber(pool?.workers.count ?? 0))),
            ("queued", .number(JSONNumber(pool?.queued ?? 0))),
            ("in_flight", .number(JSONNumber(pool?.workers.reduce(0) { $0 + $1.inFlight } ?? 0))),
        ])
        return .object(object)
    }

    private func setStatus(_ id: String, _ status: TenantStatus) throws(CommandError) -> Answer {
        var record = try existing(id)
        do { try store.setStatus(id, status) } catch { throw storeError(error, "tenant \(id)") }
        record.status = status
        directory.put(record)
        if status == .suspended { _ = supervisor.stopTenant(id) }
        return Answer(value: .object(JSONObject([("id", .string(id)), ("status", .string(status.rawValue))])), target: id)
    }

    private func deleteTenant(_ id: String, purge: Bool) throws(CommandError) -> Answer {
        let record = try existing(id)
        // Refuse new work first, then wait for its workers, then forget it. A purge sets
        // the volume aside before anything is deleted (if that fails, nothing is, and the
        // delete can be tried again), so no data is ever left where a new tenant of the
        // same id would find it; the set-aside tree is removed in the background.
        directory.remove(id)
        guard supervisor.stopTenant(id) else {
            directory.put(record)
            throw CommandError(.conflict, "the tenant's workers did not stop; try again")
        }
        var held: String?
        if purge {
            do { held = try Volumes.detach(tenant: id, root: settings.volumesRoot, prefix: settings.volumePrefix) } catch {
                directory.put(record)
                throw CommandError(.internal, "nothing was deleted: \(error.description)")
            }
        }
        let removed: [String]
        do { removed = try store.deleteTenant(id, now: clock()) } catch {
            if let held {
                do { try Volumes.reattach(held, tenant: id, root: settings.volumesRoot, prefix: settings.volumePrefix) } catch {
                    log.error("volume_not_reattached", [("tenant", .string(id)), ("held", .string(held)),
                                                        ("reason", .string(error.description))])
                }
            }
            directory.put(record)
            throw storeError(error, "tenant \(id)")
        }
        keys.remove(removed)
        admission.limitTable.set(id, nil)
        if purge {
            // Forgotten before its rows are deleted: nothing of it is written back after.
            meter.forget(id)
            if let held { Volumes.remove(held: [held], log: log) }
            do { try store.deleteUsage(id) } catch { throw storeError(error, "usage of \(id)") }
        }
        log.info("tenant_deleted", [("tenant", .string(id)), ("purge", .bool(purge)), ("keys_revoked", .of(removed.count))])
        return Answer(value: .object(JSONObject([("id", .string(id)), ("purged", .bool(purge)),
                                                 ("keys_revoked", .number(JSONNumber(removed.count)))])), target: id)
    }

    // MARK: Keys

    private func issueKey(tenant: String, ttl: Int64?, scopes: [String]) throws(CommandError) -> Answer {
        _ = try existing(tenant)
        let key = newKey(tenant: tenant, kind: .tenant, scopes: scopes, now: clock(), ttl: ttl)
        do { try store.insertKey(key.record) } catch { throw storeError(error, "key") }
        keys.put(key.record)
        return keyAnswer(key, target: tenant)
    }

    private func listKeys(_ tenant: String) throws(CommandError) -> JSONValue {
        _ = try existing(tenant)
        let records: [KeyRecord]
        do { records = try store.keys(tenant: tenant) } catch { throw storeError(error, "keys") }
        let now = clock()
        return .object(JSONObject([("keys", .array(records.map { keyJSON($0, now: now) }))]))
    }

    private func revokeKey(_ jti: String) throws(CommandError) -> Answer {
        let record = try existingKey(jti)
        let now = clock()
        do { try store.revokeKey(jti, now: now) } catch { throw storeError(error, "key \(jti)") }
        var updated = record
        updated.revokedAt = record.revokedAt ?? now
        keys.put(updated)
        return Answer(value: .object(JSONObject([("jti", .string(jti))])), target: jti)
    }

    private func rotateKey(_ jti: String, grace: Int64, ttl: Int64?) throws(CommandError) -> Answer {
        let old = try existingKey(jti)
        let now = clock()
        guard old.revokedAt == nil, old.graceUntil == nil else { throw CommandError(.conflict, "key \(jti) is already revoked or rotated") }
        let new = newKey(tenant: old.tenantID, kind: old.kind, scopes: old.scopes, now: now, ttl: ttl)
        do { try store.rotateKey(old: jti, new: new.record, graceUntil: now + grace) } catch { throw storeError(error, "key \(jti)") }
        var replaced = old
        replaced.replacedBy = new.record.jti
        replaced.graceUntil = now + grace
        keys.put(replaced)
        keys.put(new.record)
        return keyAnswer(new, target: jti)
    }

    private func issueAdminKey(name: String, ttl: Int64?) throws(CommandError) -> Answer {
        guard !name.isEmpty, name.utf8.count <= 64,
              name.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D || $0 == 0x2E || $0 == 0x5F })
        else { throw CommandError(.badRequest, "--name must be 1 to 64 characters of a-z 0-9 . _ -") }
        let key = newKey(tenant: nil, kind: .admin, scopes: [Self.adminScope], now: clock(), ttl: ttl, subject: "admin:\(name)")
        do { try store.insertKey(key.record) } catch { throw storeError(error, "key") }
        keys.put(key.record)
        return keyAnswer(key, target: "admin:\(name)")
    }

    private struct IssuedKey {
        var record: KeyRecord
        var token: String
    }

    private func newKey(tenant: String?, kind: KeyKind, scopes: [String], now: Int64, ttl: Int64?,
                        subject: String? = nil) -> IssuedKey {
        let jti = Self.randomID()
        let expires = ttl.map { now + $0 }
        let claims = Claims(issuer: settings.issuer, audience: settings.audience, subject: subject ?? tenant ?? "admin",
                            jwtID: jti, issuedAt: now, expiresAt: expires, notBefore: nil, scopes: scopes)
        let record = KeyRecord(jti: jti, tenantID: tenant, kind: kind, scopes: scopes, issuedAt: now, expiresAt: expires,
                               revokedAt: nil, replacedBy: nil, graceUntil: nil)
        return IssuedKey(record: record, token: issuer.issue(claims))
    }

    private func keyAnswer(_ key: IssuedKey, target: String) -> Answer {
        Answer(value: .object(JSONObject([("api_key", .string(key.token)), ("jti", .string(key.record.jti)),
                                          ("expires", key.record.expiresAt.map { .number(JSONNumber($0)) } ?? .null)])),
               target: target)
    }

    /// 16 random bytes, hex: the key id (jti), safe to log and show.
    static func randomID() -> String {
        var bytes = [UInt8](repeating: 0, count: 16)
        let r = bytes.withUnsafeMutableBytes { bh_random($0.baseAddress, $0.count) }
        precondition(r == 0, "getrandom failed")
        return bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    // MARK: Audit and status

    private func auditEntries(tenant: String?, limit: Int) throws(CommandError) -> JSONValue {
        let records: [AuditRecord]
        do { records = try store.audit(target: tenant, limit: limit) } catch { throw storeError(error, "audit") }
        return .object(JSONObject([("entries", .array(records.map { r in
            .object(JSONObject([("id", .number(JSONNumber(r.id))), ("time", .string(Self.isoTime(r.time))),
                                ("actor", .string(r.actor)), ("action", .string(r.action)),
                                ("target", r.target.map(JSONValue.string) ?? .null), ("result", .string(r.result)),
                                ("detail", r.detail.map(JSONValue.string) ?? .null)]))
        }))]))
    }

    private func audit(_ peer: ControlPeer, _ action: String, _ target: String?, _ result: String, _ detail: String?) {
        let record = AuditRecord(id: 0, time: clock(), actor: "uid \(peer.uid) pid \(peer.pid)", action: action,
                                 target: target, result: result, detail: detail)
        do { _ = try store.appendAudit(record) } catch {
            log.error("audit_write_failed", [("action", .string(action)), ("reason", .string(error.description))])
        }
    }

    private func status() -> JSONValue {
        let pools = supervisor.snapshot()
        var fields: [(String, JSONValue)] = [
            ("version", .string("bulkheadd 0.1.0")),
            ("uptime_seconds", .number(JSONNumber(clock() - startedAt))),
        ]
        if let operations {
            fields += [("config_generation", .number(JSONNumber(operations.configGeneration))),
                       ("connections", .number(JSONNumber(operations.openConnections))),
                       ("draining", .bool(operations.draining))]
        }
        fields += [
            ("tenants", .number(JSONNumber(directory.count))),
            ("workers", .number(JSONNumber(pools.reduce(0) { $0 + $1.workers.count }))),
            ("queued", .number(JSONNumber(pools.reduce(0) { $0 + $1.queued }))),
            // Per tenant with workers or a queue: how many of each.
            ("pools", .array(pools.map { pool in
                .object(JSONObject([
                    ("tenant", .string(pool.tenant)),
                    ("workers", .number(JSONNumber(pool.workers.count))),
                    ("busy", .number(JSONNumber(pool.workers.count { $0.state == "busy" }))),
                    ("queued", .number(JSONNumber(pool.queued))),
                ]))
            })),
        ]
        return .object(JSONObject(fields + admissionCounters()))
    }

    /// Since the start: what the admission stage decided.
    private func admissionCounters() -> [(String, JSONValue)] {
        let c = admission.snapshot
        return [("admitted", c.admitted), ("rate_limited", c.rateLimited), ("concurrency_limited", c.concurrencyLimited),
                ("quota_exceeded", c.quotaExceeded), ("rate_limit_unavailable", c.backendUnavailable),
                ("rate_limit_fallbacks", c.fallbacks), ("shadow_refusals", c.shadowRefusals)]
            .map { ($0.0, .number(JSONNumber($0.1))) }
    }

    /// One row per live worker, for `workers list`.
    private func workerRows(_ only: String?) -> [JSONValue] {
        var rows: [JSONValue] = []
        for pool in supervisor.detailedSnapshot() where only == nil || pool.tenant == only {
            for w in pool.workers {
                func seconds(_ v: Double?) -> JSONValue { v.flatMap { JSONNumber(Self.rounded($0)) }.map(JSONValue.number) ?? .null }
                let fields: [(String, JSONValue)] = [
                    ("pid", .number(JSONNumber(Int(w.pid)))), ("tenant", .string(pool.tenant)), ("state", .string(w.state)),
                    ("age_s", seconds(w.ageSeconds)),
                    ("requests", .number(JSONNumber(w.requestsServed))), ("in_flight", .number(JSONNumber(w.inFlight))),
                    ("cpu_s", seconds(w.cpuSeconds)), ("rss_kib", .number(JSONNumber(w.rssKiB))),
                    ("request_age_s", seconds(w.requestAgeSeconds)),
                ]
                rows.append(.object(JSONObject(fields)))
            }
        }
        return rows
    }

    // MARK: Helpers

    /// Three decimals, for figures meant to be read.
    static func rounded(_ v: Double) -> Double { (v * 1000).rounded() / 1000 }

    private func validate(tenantID id: String) throws(CommandError) {
        guard TenantIdentity.isValid(id: id) else {
            throw CommandError(.badRequest,
                               "invalid tenant id \"\(Self.printable(id))\": use 1 to 63 characters of a-z, 0-9 and -, starting with a letter or digit")
        }
    }

    func existing(_ id: String) throws(CommandError) -> TenantRecord {
        try validate(tenantID: id)
        let record: TenantRecord?
        do { record = try store.tenant(id) } catch { throw storeError(error, "tenant \(id)") }
        guard let record else { throw CommandError(.notFound, "no tenant \(id)") }
        return record
    }

    private func existingKey(_ jti: String) throws(CommandError) -> KeyRecord {
        guard jti.utf8.count == 32, jti.utf8.allSatisfy({ ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }) else {
            throw CommandError(.badRequest, "a key id is 32 hex characters (see key list)")
        }
        let record: KeyRecord?
        do { record = try store.key(jti) } catch { throw storeError(error, "key \(jti)") }
        guard let record else { throw CommandError(.notFound, "no key \(jti)") }
        return record
    }

    private func tenantScopes(_ value: JSONValue?) throws(CommandError) -> [String] {
        guard let list = value?.arrayValue else { return Self.tenantScopes }
        let scopes = list.compactMap(\.stringValue)
        for s in scopes where !Self.tenantScopes.contains(s) {
            throw CommandError(.badRequest, "unknown scope \"\(Self.printable(s))\" (known: \(Self.tenantScopes.joined(separator: ", ")))")
        }
        return Array(Set(scopes)).sorted()
    }

    func string(_ a: JSONObject, _ key: String) throws(CommandError) -> String {
        guard let s = a[key]?.stringValue else { throw CommandError(.badRequest, "missing \(key)") }
        return s
    }

    private func seconds(_ a: JSONObject, _ key: String) throws(CommandError) -> Int64? {
        guard let v = a[key] else { return nil }
        guard let n = v.intValue, n > 0, n <= 100 * 365 * 86_400 else {
            throw CommandError(.badRequest, "--\(key) must be a positive duration of at most 100 years")
        }
        return n
    }

    func storeError(_ error: StoreError, _ what: String) -> CommandError {
        switch error.code {
        case .notFound: return CommandError(.notFound, "no \(what)")
        case .alreadyExists: return CommandError(.conflict, "\(what) already exists")
        case .conflict: return CommandError(.conflict, error.message)
        default:
            log.error("store_error", [("what", .string(what)), ("reason", .string(error.description))])
            return CommandError(.internal, "the state database failed: \(error.message)")
        }
    }

    private func identity(_ r: TenantRecord) -> TenantIdentity { TenantIdentity(id: r.id, uid: r.uid, gid: r.gid) }

    private func tenantJSON(_ r: TenantRecord) -> JSONValue {
        .object(JSONObject([("id", .string(r.id)), ("name", .string(r.name)), ("status", .string(r.status.rawValue)),
                            ("uid", .number(JSONNumber(Int64(r.uid)))), ("gid", .number(JSONNumber(Int64(r.gid)))),
                            ("created", .string(Self.isoTime(r.createdAt)))]))
    }

    private func keyJSON(_ r: KeyRecord, now: Int64) -> JSONValue {
        let status: String
        switch keys.verdict(jti: r.jti, now: now) {
        case .valid: status = r.graceUntil != nil ? "rotating" : (r.expiresAt.map { $0 <= now } == true ? "expired" : "active")
        case .revoked: status = "revoked"
        case .replaced: status = "replaced"
        case .unknown: status = "unknown"
        }
        return .object(JSONObject([("jti", .string(r.jti)), ("status", .string(status)),
                                   ("scopes", .string(r.scopes.joined(separator: " "))),
                                   ("issued", .string(Self.isoTime(r.issuedAt))),
                                   ("expires", r.expiresAt.map { .string(Self.isoTime($0)) } ?? .null),
                                   ("replaced_by", r.replacedBy.map(JSONValue.string) ?? .null)]))
    }

    /// Only printable ASCII of untrusted input goes into messages.
    public static func printable(_ s: String) -> String {
        String(String.UnicodeScalarView(s.unicodeScalars.prefix(80).map { $0.isASCII && $0.value >= 0x20 && $0.value < 0x7F ? $0 : "?" }))
    }

    static func isoTime(_ t: Int64) -> String { UTCTime.dateTime(t) }
}
