// Store.swift owns Bulkhead's persistent state behind one backend-neutral interface:
// tenants, API keys, per-tenant limit overrides and the audit log. All SQL lives here and
// in Schema.swift; callers see records and StoreError only.

import Synchronization

/// The state database. Open one per process with `Store(path:)`; every call is a short
/// synchronous transaction, safe to make from any thread.
///
/// Sendable because its only mutable state, the SQLite connection and its statement
/// cache, is reachable only through `connection.withLock`: one thread at a time, which
/// is also what a connection opened `SQLITE_OPEN_NOMUTEX` requires.
public final class Store: Sendable {
    /// The schema this build writes; a database with a higher version is refused.
    public static let schemaVersion: Int = 4

    /// The database file.
    public let path: String
    private let connection: Mutex<Connection>

    /// Opens (creating it with mode 0600 if needed) the database at `path`, configures the
    /// connection and migrates the schema in place to `schemaVersion`.
    public convenience init(path: String) throws(StoreError) {
        try self.init(path: path, migratingTo: Store.schemaVersion)
    }

    /// For tests only: a store whose schema is migrated no further than `version`, to build
    /// an old database that `Store(path:)` then upgrades.
    static func open(path: String, upToVersion version: Int) throws(StoreError) -> Store {
        try Store(path: path, migratingTo: version)
    }

    private init(path: String, migratingTo version: Int) throws(StoreError) {
        var db = try Connection.open(path: path)
        try Store.migrate(&db, upTo: version)
        self.path = path
        self.connection = Mutex(db)
    }

    /// A trivial query: the database answers (for readiness checks).
    public func ping() throws(StoreError) {
        _ = try locked { (db) throws(StoreError) in
            try db.rows("SELECT 1", [], { (row) throws(StoreError) in try row.integer(0) })
        }
    }

    /// `PRAGMA integrity_check`: "ok", or SQLite's list of problems, one per line.
    public func integrityCheck() throws(StoreError) -> String {
        try locked { (db) throws(StoreError) in
            try db.rows("PRAGMA integrity_check", cached: false) { (row) throws(StoreError) in try row.text(0) }
                .joined(separator: "\n")
        }
    }

    /// The schema version written in the file (`PRAGMA user_version`); for tests and diagnostics.
    var storedSchemaVersion: Int {
        get throws(StoreError) { try locked { (db) throws(StoreError) in try Store.userVersion(&db) } }
    }

    /// A consistent copy of the whole store in a new file at `destination` (mode 0600),
    /// taken while the daemon runs (`bulkheadctl backup-state`) through a connection of its
    /// own: the store stays usable from other threads while a large audit log is copied.
    public func backup(to destination: String) throws(StoreError) {
        try SQLiteBackup.copy(from: path, to: destination, followLinks: true, busySeconds: Int(Connection.busyTimeoutMilliseconds / 1000))
    }

    /// The connection's journal mode ("wal"); for tests and diagnostics.
    var journalMode: String {
        get throws(StoreError) {
            try locked { (db) throws(StoreError) in
                try db.row("PRAGMA journal_mode") { (row) throws(StoreError) in try row.text(0) } ?? ""
            }
        }
    }

    /// How many prepared statements the connection keeps; for tests.
    var cachedStatementCount: Int { connection.withLock { $0.cachedStatements } }

    /// Runs `body` with the connection, holding the lock.
    private func locked<R: Sendable>(_ body: (inout Connection) throws(StoreError) -> R) throws(StoreError) -> R {
        try connection.withLock { (db) throws(StoreError) -> R in try body(&db) }
    }
}

// MARK: - Tenants

extension Store {
    private static let tenantColumns = "id, name, status, uid, gid, created_at"

    /// Creates the tenant with the lowest uid in [uidBase, uidBase+uidCount) that no
    /// existing tenant uses (gid = uid), and its first key, in ONE transaction; returns the
    /// tenant. `alreadyExists` if the id (or the key's jti) exists; `conflict` "uid range
    /// exhausted" when every uid of the range is taken. A uid is never reused while its
    /// tenant exists (UNIQUE); after a delete the lowest free one is taken again.
    public func createTenant(
        id: String, name: String, uidBase: UInt32, uidCount: UInt32, now: Int64, firstKey: KeyRecord
    ) throws(StoreError) -> TenantRecord {
        guard firstKey.kind == .tenant, firstKey.tenantID == id else {
            throw StoreError(.invalid, "the first key of tenant \(quoted(id)) must be a tenant key of that tenant")
        }
        try Store.validate(firstKey)
        return try locked { (db) throws(StoreError) in
            try db.transaction { (db) throws(StoreError) in
                if try Store.tenantExists(&db, id) {
                    throw StoreError(.alreadyExists, "tenant \(quoted(id)) already exists")
                }
                let uid = try Store.lowestFreeUID(&db, base: uidBase, count: uidCount)
                let tenant = TenantRecord(id: id, name: name, status: .active, uid: uid, gid: uid, createdAt: now)
                try db.run(
                    "INSERT INTO tenants (\(Store.tenantColumns)) VALUES (?, ?, ?, ?, ?, ?)",
                    [.text(id), .text(name), .text(tenant.status.rawValue), .integer(Int64(uid)), .integer(Int64(uid)),
                     .integer(now)])
                try Store.insertKey(&db, firstKey)
                return tenant
            }
        }
    }

    public func tenant(_ id: String) throws(StoreError) -> TenantRecord? {
        try locked { (db) throws(StoreError) in
            try db.row("SELECT \(Store.tenantColumns) FROM tenants WHERE id = ?", [.text(id)], Store.tenant(from:))
        }
    }

    /// Every tenant, ordered by id.
    public func tenants() throws(StoreError) -> [TenantRecord] {
        try locked { (db) throws(StoreError) in
            try db.rows("SELECT \(Store.tenantColumns) FROM tenants ORDER BY id", [], Store.tenant(from:))
        }
    }

    /// `notFound` if there is no such tenant.
    public func setStatus(_ id: String, _ status: TenantStatus) throws(StoreError) {
        let changed = try locked { (db) throws(StoreError) in
            try db.run("UPDATE tenants SET status = ? WHERE id = ?", [.text(status.rawValue), .text(id)])
        }
        if changed == 0 { throw .tenantNotFound(id) }
    }

    /// Deletes the tenant, its keys and its limit overrides (ON DELETE CASCADE) in one
    /// transaction, and returns the jtis of the keys removed (ordered by issued_at, jti) so
    /// that the caller can add them to its in-memory revocation set. `notFound` if there is
    /// no such tenant. `now` is the time of deletion: no table of this schema keeps it, the
    /// usage tables of a later version (kept for billing, SPEC §5) will.
    public func deleteTenant(_ id: String, now: Int64) throws(StoreError) -> [String] {
        _ = now
        return try locked { (db) throws(StoreError) in
            try db.transaction { (db) throws(StoreError) in
                let jtis = try db.rows("SELECT jti FROM keys WHERE tenant_id = ? ORDER BY issued_at, jti", [.text(id)]) {
                    (row) throws(StoreError) in try row.text(0)
                }
                if try db.run("DELETE FROM tenants WHERE id = ?", [.text(id)]) == 0 { throw .tenantNotFound(id) }
                return jtis
            }
        }
    }

    private static func tenantExists(_ db: inout Connection, _ id: String) throws(StoreError) -> Bool {
        try db.row("SELECT 1 FROM tenants WHERE id = ?", [.text(id)]) { _ in true } ?? false
    }

    /// The lowest uid in [base, base+count) no tenant has: `base` itself, or one above the
    /// lowest used uid of the range whose successor is free (a walk of the UNIQUE index).
    private static func lowestFreeUID(_ db: inout Connection, base: UInt32, count: UInt32) throws(StoreError) -> UInt32 {
        let end = Int64(base) + Int64(count)
        let candidate = try db.row(
            """
            SELECT CASE
                WHEN NOT EXISTS (SELECT 1 FROM tenants WHERE uid = ?1) THEN ?1
                ELSE (SELECT min(t.uid) + 1 FROM tenants AS t
                      WHERE t.uid >= ?1 AND t.uid < ?2
                        AND NOT EXISTS (SELECT 1 FROM tenants AS u WHERE u.uid = t.uid + 1))
            END
            """, [.integer(Int64(base)), .integer(end)]
        ) { (row) throws(StoreError) in try row.optionalInteger(0) }
        guard count > 0, let free = candidate ?? nil, free < end, let uid = UInt32(exactly: free) else {
            let range = count == 0 ? "the range is empty" : "uids \(base)-\(end - 1) are all in use"
            throw StoreError(.conflict, "uid range exhausted: \(range)")
        }
        return uid
    }

    private static func tenant(from row: Row) throws(StoreError) -> TenantRecord {
        let status = try row.text(2)
        guard let status = TenantStatus(rawValue: status) else { throw row.invalid(2, "unknown status \(quoted(status))") }
        guard let uid = UInt32(exactly: try row.integer(3)) else { throw row.invalid(3, "a uid out of range") }
        guard let gid = UInt32(exactly: try row.integer(4)) else { throw row.invalid(4, "a gid out of range") }
        return TenantRecord(
            id: try row.text(0), name: try row.text(1), status: status, uid: uid, gid: gid, createdAt: try row.integer(5))
    }
}

// MARK: - Keys

extension Store {
    private static let keyColumns = "jti, tenant_id, kind, scopes, issued_at, expires_at, revoked_at, replaced_by, grace_until"

    /// Records an issued key. `alreadyExists` for a known jti, `notFound` for a tenant key
    /// of an unknown tenant, `invalid` for an admin key with a tenant (or the reverse) or a
    /// scope that is empty or has whitespace.
    public func insertKey(_ key: KeyRecord) throws(StoreError) {
        try Store.validate(key)
        try locked { (db) throws(StoreError) in
            try db.transaction { (db) throws(StoreError) in try Store.insertKey(&db, key) }
        }
    }

    public func key(_ jti: String) throws(StoreError) -> KeyRecord? {
        try locked { (db) throws(StoreError) in
            try db.row("SELECT \(Store.keyColumns) FROM keys WHERE jti = ?", [.text(jti)], Store.key(from:))
        }
    }

    /// The keys of `tenant`, or the admin keys when `tenant` is nil; ordered by issued_at, jti.
    public func keys(tenant: String?) throws(StoreError) -> [KeyRecord] {
        try locked { (db) throws(StoreError) in
            if let tenant {
                return try db.rows(
                    "SELECT \(Store.keyColumns) FROM keys WHERE tenant_id = ? ORDER BY issued_at, jti", [.text(tenant)],
                    Store.key(from:))
            }
            return try db.rows(
                "SELECT \(Store.keyColumns) FROM keys WHERE tenant_id IS NULL ORDER BY issued_at, jti", [], Store.key(from:))
        }
    }

    /// Every key, tenant and admin; ordered by issued_at, jti.
    public func allKeys() throws(StoreError) -> [KeyRecord] {
        try locked { (db) throws(StoreError) in
            try db.rows("SELECT \(Store.keyColumns) FROM keys ORDER BY issued_at, jti", [], Store.key(from:))
        }
    }

    /// Marks the key revoked at `now`. `notFound` if there is no such key; revoking a revoked
    /// key changes nothing (it keeps its first revocation time).
    public func revokeKey(_ jti: String, now: Int64) throws(StoreError) {
        let changed = try locked { (db) throws(StoreError) in
            try db.run("UPDATE keys SET revoked_at = coalesce(revoked_at, ?) WHERE jti = ?", [.integer(now), .text(jti)])
        }
        if changed == 0 { throw .keyNotFound(jti) }
    }

    /// Inserts `new` and marks `old` replaced by `new.jti`, valid until `graceUntil`, in one
    /// transaction. `new` must be of the same kind and tenant as `old` (`invalid`); `old`
    /// must exist (`notFound`) and be neither revoked nor already rotated (`conflict`).
    public func rotateKey(old: String, new: KeyRecord, graceUntil: Int64) throws(StoreError) {
        try Store.validate(new)
        try locked { (db) throws(StoreError) in
            try db.transaction { (db) throws(StoreError) in
                guard let current = try db.row(
                    "SELECT \(Store.keyColumns) FROM keys WHERE jti = ?", [.text(old)], Store.key(from:))
                else { throw .keyNotFound(old) }
                guard new.kind == current.kind, new.tenantID == current.tenantID else {
                    throw StoreError(.invalid, "key \(quoted(new.jti)) must have the kind and tenant of the key it replaces")
                }
                if current.revokedAt != nil { throw StoreError(.conflict, "key \(quoted(old)) is revoked") }
                if let successor = current.replacedBy {
                    throw StoreError(.conflict, "key \(quoted(old)) was already rotated (replaced by \(quoted(successor)))")
                }
                try Store.insertKey(&db, new)
                try db.run(
                    "UPDATE keys SET replaced_by = ?, grace_until = ? WHERE jti = ?",
                    [.text(new.jti), .integer(graceUntil), .text(old)])
            }
        }
    }

    /// The insert shared by `insertKey`, `createTenant` and `rotateKey`, inside their
    /// transaction; the checks first give clear errors, the constraints stay the backstop.
    private static func insertKey(_ db: inout Connection, _ key: KeyRecord) throws(StoreError) {
        if try db.row("SELECT 1 FROM keys WHERE jti = ?", [.text(key.jti)], { _ in true }) != nil {
            throw StoreError(.alreadyExists, "key \(quoted(key.jti)) already exists")
        }
        if let tenant = key.tenantID, try !tenantExists(&db, tenant) { throw .tenantNotFound(tenant) }
        try db.run(
            "INSERT INTO keys (\(keyColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [.text(key.jti), SQLValue(key.tenantID), .text(key.kind.rawValue), .text(key.scopes.joined(separator: " ")),
             .integer(key.issuedAt), SQLValue(key.expiresAt), SQLValue(key.revokedAt), SQLValue(key.replacedBy),
             SQLValue(key.graceUntil)])
    }

    /// Refuses keys the schema would store wrongly: scopes are stored space-separated, as in
    /// the JWT `scope` claim, so each must be a non-empty word.
    private static func validate(_ key: KeyRecord) throws(StoreError) {
        guard (key.kind == .admin) == (key.tenantID == nil) else {
            throw StoreError(
                .invalid,
                key.kind == .admin
                    ? "admin key \(quoted(key.jti)) cannot belong to a tenant" : "tenant key \(quoted(key.jti)) needs a tenant")
        }
        for scope in key.scopes
        where scope.isEmpty || scope.unicodeScalars.contains(where: { $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7F }) {
            throw StoreError(.invalid, "scope \(quoted(scope)) of key \(quoted(key.jti)) must be one word without whitespace")
        }
    }

    private static func key(from row: Row) throws(StoreError) -> KeyRecord {
        let kind = try row.text(2)
        guard let kind = KeyKind(rawValue: kind) else { throw row.invalid(2, "unknown key kind \(quoted(kind))") }
        return KeyRecord(
            jti: try row.text(0), tenantID: try row.optionalText(1), kind: kind,
            scopes: try row.text(3).split(separator: " ").map(String.init), issuedAt: try row.integer(4),
            expiresAt: try row.optionalInteger(5), revokedAt: try row.optionalInteger(6),
            replacedBy: try row.optionalText(7), graceUntil: try row.optionalInteger(8))
    }
}

// MARK: - Limits

extension Store {
    private static let limitColumns = "concurrency, compute_minutes_per_day, storage_gb, max_workers"
    private static let policyColumns = "name, rate_count, rate_period_seconds, burst, mode"

    /// The tenant's overrides, or nil when none were ever set.
    public func limits(_ tenant: String) throws(StoreError) -> LimitOverrides? {
        try locked { (db) throws(StoreError) in try Store.limits(&db, tenant) }
    }

    /// Replaces the tenant's overrides with `limits` (nil fields: use the configuration;
    /// policies not listed are removed) in one transaction. `notFound` for an unknown
    /// tenant; `invalid` for values that cannot be stored.
    public func setLimits(_ tenant: String, _ limits: LimitOverrides) throws(StoreError) {
        let values = try Store.values(of: limits)
        let policies = try limits.policies.map { (p) throws(StoreError) in try Store.values(of: p) }
        try locked { (db) throws(StoreError) in
            try db.transaction { (db) throws(StoreError) in
                if try !Store.tenantExists(&db, tenant) { throw .tenantNotFound(tenant) }
                try db.run(
                    """
                    INSERT INTO tenant_limits (tenant_id, \(Store.limitColumns)) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (tenant_id) DO UPDATE SET
                        concurrency = excluded.concurrency, compute_minutes_per_day = excluded.compute_minutes_per_day,
                        storage_gb = excluded.storage_gb, max_workers = excluded.max_workers
                    """, [.text(tenant)] + values)
                try db.run("DELETE FROM tenant_policies WHERE tenant_id = ?", [.text(tenant)])
                for p in policies {
                    try db.run("INSERT INTO tenant_policies (tenant_id, \(Store.policyColumns)) VALUES (?, ?, ?, ?, ?, ?)",
                               [.text(tenant)] + p)
                }
            }
        }
    }

    /// Removes every override of the tenant: it goes back to the configuration.
    public func clearLimits(_ tenant: String) throws(StoreError) {
        try locked { (db) throws(StoreError) in
            try db.transaction { (db) throws(StoreError) in
                if try !Store.tenantExists(&db, tenant) { throw .tenantNotFound(tenant) }
                try db.run("DELETE FROM tenant_limits WHERE tenant_id = ?", [.text(tenant)])
                try db.run("DELETE FROM tenant_policies WHERE tenant_id = ?", [.text(tenant)])
            }
        }
    }

    /// The overrides of every tenant that has some, by tenant id.
    public func allLimits() throws(StoreError) -> [String: LimitOverrides] {
        try locked { (db) throws(StoreError) in
            let ids = try db.rows(
                "SELECT tenant_id FROM tenant_limits UNION SELECT tenant_id FROM tenant_policies", []
            ) { (row) throws(StoreError) in try row.text(0) }
            var all: [String: LimitOverrides] = [:]
            for id in ids { all[id] = try Store.limits(&db, id) }
            return all
        }
    }

    private static func limits(_ db: inout Connection, _ tenant: String) throws(StoreError) -> LimitOverrides? {
        let scalar = try db.row("SELECT \(limitColumns) FROM tenant_limits WHERE tenant_id = ?", [.text(tenant)]) {
            (row) throws(StoreError) in try Store.limits(from: row)
        }
        let policies = try db.rows(
            "SELECT \(policyColumns) FROM tenant_policies WHERE tenant_id = ? ORDER BY name", [.text(tenant)],
            Store.policy(from:))
        if scalar == nil && policies.isEmpty { return nil }
        var limits = scalar ?? LimitOverrides()
        limits.policies = policies
        return limits
    }

    private static func count(_ value: UInt64?, _ name: String) throws(StoreError) -> SQLValue {
        guard let value else { return .null }
        guard let stored = Int64(exactly: value) else { throw StoreError(.invalid, "\(name) \(value) is too large") }
        return .integer(stored)
    }

    private static func values(of limits: LimitOverrides) throws(StoreError) -> [SQLValue] {
        func number(_ value: Int?, _ name: String) throws(StoreError) -> SQLValue {
            guard let value else { return .null }
            guard value >= 0 else { throw StoreError(.invalid, "\(name) \(value) is negative") }
            return .integer(Int64(value))
        }
        if let gb = limits.storageGB, !(gb.isFinite && gb >= 0) {
            throw StoreError(.invalid, "storageGB \(gb) is not a finite, non-negative number")
        }
        var names = Set<String>()
        for p in limits.policies where !names.insert(p.name).inserted {
            throw StoreError(.invalid, "policy \(p.name) is given twice")
        }
        return [
            try number(limits.concurrency, "concurrency"), try count(limits.computeMinutesPerDay, "computeMinutesPerDay"),
            SQLValue(limits.storageGB), try number(limits.maxWorkers, "maxWorkers"),
        ]
    }

    private static func values(of p: PolicyOverride) throws(StoreError) -> [SQLValue] {
        guard (1...32).contains(p.name.utf8.count) else { throw StoreError(.invalid, "policy name \"\(p.name)\" is not 1-32 bytes") }
        if p.name != PolicyOverride.defaultName, p.rateCount == nil || p.ratePeriodSeconds == nil || p.burst == nil {
            throw StoreError(.invalid, "policy \(p.name) needs a rate, a period and a burst")
        }
        for (value, name) in [(p.rateCount, "rateCount"), (p.ratePeriodSeconds, "ratePeriodSeconds"), (p.burst, "burst")] where value == 0 {
            throw StoreError(.invalid, "\(name) of policy \(p.name) must be at least 1")
        }
        return [.text(p.name), try count(p.rateCount, "rateCount"), try count(p.ratePeriodSeconds, "ratePeriodSeconds"),
                try count(p.burst, "burst"), SQLValue(p.mode?.rawValue)]
    }

    /// Reads the four limit columns.
    private static func limits(from row: Row) throws(StoreError) -> LimitOverrides {
        func number(_ column: Int32) throws(StoreError) -> Int? {
            guard let value = try row.optionalInteger(column) else { return nil }
            guard let number = Int(exactly: value), number >= 0 else { throw row.invalid(column, "a negative count") }
            return number
        }
        var computeMinutes: UInt64?
        if let value = try row.optionalInteger(1) {
            guard let minutes = UInt64(exactly: value) else { throw row.invalid(1, "a negative count") }
            computeMinutes = minutes
        }
        return LimitOverrides(concurrency: try number(0), computeMinutesPerDay: computeMinutes,
                              storageGB: try row.optionalReal(2), maxWorkers: try number(3))
    }

    private static func policy(from row: Row) throws(StoreError) -> PolicyOverride {
        func count(_ column: Int32) throws(StoreError) -> UInt64? {
            guard let value = try row.optionalInteger(column) else { return nil }
            guard let count = UInt64(exactly: value) else { throw row.invalid(column, "a negative count") }
            return count
        }
        var mode: PolicyOverride.Mode?
        if let text = try row.optionalText(4) {
            guard let m = PolicyOverride.Mode(rawValue: text) else { throw row.invalid(4, "an unknown mode") }
            mode = m
        }
        return PolicyOverride(name: try row.text(0), rateCount: try count(1), ratePeriodSeconds: try count(2),
                              burst: try count(3), mode: mode)
    }
}

// MARK: - Usage

extension Store {
    private static let usageColumns = "tenant_id, day, requests, errors, rate_limited, bytes_in, bytes_out, cpu_us, storage_bytes"

    /// Adds `rows` (deltas) to the daily rollups, once: a batch whose id was applied
    /// before is skipped (false), so a retried flush never counts twice. Batch ids older
    /// than a week are forgotten.
    @discardableResult
    public func applyUsage(batch id: Int64, _ rows: [UsageRow], now: Int64) throws(StoreError) -> Bool {
        try locked { (db) throws(StoreError) in
            try db.transaction { (db) throws(StoreError) -> Bool in
                let seen = try db.row("SELECT 1 FROM usage_batches WHERE id = ?", [.integer(id)]) { (row) throws(StoreError) in
                    try row.integer(0)
                }
                if seen != nil { return false }
                try db.run("INSERT INTO usage_batches (id, written_at) VALUES (?, ?)", [.integer(id), .integer(now)])
                try db.run("DELETE FROM usage_batches WHERE written_at < ?", [.integer(now - 7 * 86_400)])
                for r in rows {
                    // A day's first row without a measurement carries the tenant's last known
                    // storage figure: the volume did not empty at midnight.
                    try db.run(
                        """
                        INSERT INTO usage_daily (\(Store.usageColumns)) VALUES (?, ?, ?, ?, ?, ?, ?, ?, COALESCE(?,
                            (SELECT storage_bytes FROM usage_daily WHERE tenant_id = ? AND day < ? ORDER BY day DESC LIMIT 1), 0))
                        ON CONFLICT (tenant_id, day) DO UPDATE SET
                            requests = requests + excluded.requests, errors = errors + excluded.errors,
                            rate_limited = rate_limited + excluded.rate_limited, bytes_in = bytes_in + excluded.bytes_in,
                            bytes_out = bytes_out + excluded.bytes_out, cpu_us = cpu_us + excluded.cpu_us,
                            storage_bytes = CASE WHEN ? THEN excluded.storage_bytes ELSE storage_bytes END
                        """,
                        [.text(r.tenantID), .text(r.day), .integer(r.requests), .integer(r.errors), .integer(r.rateLimited),
                         .integer(r.bytesIn), .integer(r.bytesOut), .integer(r.cpuMicros), SQLValue(r.storageBytes),
                         .text(r.tenantID), .text(r.day), .integer(r.storageBytes == nil ? 0 : 1)])
                }
                return true
            }
        }
    }

    /// The rollups with `day` in `from...to` (YYYY-MM-DD, inclusive), of one tenant or all,
    /// ordered by tenant then day.
    public func usage(tenant: String?, from: String, to: String) throws(StoreError) -> [UsageRow] {
        try locked { (db) throws(StoreError) in
            if let tenant {
                return try db.rows(
                    "SELECT \(Store.usageColumns) FROM usage_daily WHERE tenant_id = ? AND day BETWEEN ? AND ? ORDER BY tenant_id, day",
                    [.text(tenant), .text(from), .text(to)], Store.usage(from:))
            }
            return try db.rows(
                "SELECT \(Store.usageColumns) FROM usage_daily WHERE day BETWEEN ? AND ? ORDER BY tenant_id, day",
                [.text(from), .text(to)], Store.usage(from:))
        }
    }

    /// Forgets the tenant's usage history (`tenant delete --purge`).
    public func deleteUsage(_ tenant: String) throws(StoreError) {
        try locked { (db) throws(StoreError) in
            _ = try db.run("DELETE FROM usage_daily WHERE tenant_id = ?", [.text(tenant)])
        }
    }

    private static func usage(from row: Row) throws(StoreError) -> UsageRow {
        UsageRow(tenantID: try row.text(0), day: try row.text(1), requests: try row.integer(2), errors: try row.integer(3),
                 rateLimited: try row.integer(4), bytesIn: try row.integer(5), bytesOut: try row.integer(6),
                 cpuMicros: try row.integer(7), storageBytes: try row.integer(8))
    }
}

// MARK: - Audit

extension Store {
    private static let auditColumns = "id, time, actor, action, target, result, detail"

    /// Appends `record` (its `id` is ignored) and returns the id it was given.
    @discardableResult
    public func appendAudit(_ record: AuditRecord) throws(StoreError) -> Int64 {
        let id = try locked { (db) throws(StoreError) in
            try db.row(
                "INSERT INTO audit (time, actor, action, target, result, detail) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                [.integer(record.time), .text(record.actor), .text(record.action), SQLValue(record.target),
                 .text(record.result), SQLValue(record.detail)]
            ) { (row) throws(StoreError) in try row.integer(0) }
        }
        guard let id else { preconditionFailure("INSERT … RETURNING returned no row") }
        return id
    }

    /// The newest (last appended) `limit` records, newest first; only those about `target`
    /// when it is given. Appending order, not `time`, decides: a clock step back cannot
    /// reorder the log.
    public func audit(target: String?, limit: Int) throws(StoreError) -> [AuditRecord] {
        guard limit >= 0 else { throw StoreError(.invalid, "audit limit \(limit) is negative") }
        return try locked { (db) throws(StoreError) in
            if let target {
                return try db.rows(
                    "SELECT \(Store.auditColumns) FROM audit WHERE target = ? ORDER BY id DESC LIMIT ?",
                    [.text(target), .integer(Int64(limit))], Store.audit(from:))
            }
            return try db.rows(
                "SELECT \(Store.auditColumns) FROM audit ORDER BY id DESC LIMIT ?", [.integer(Int64(limit))],
                Store.audit(from:))
        }
    }

    private static func audit(from row: Row) throws(StoreError) -> AuditRecord {
        AuditRecord(
            id: try row.integer(0), time: try row.integer(1), actor: try row.text(2), action: try row.text(3),
            target: try row.optionalText(4), result: try row.text(5), detail: try row.optionalText(6))
    }
}
