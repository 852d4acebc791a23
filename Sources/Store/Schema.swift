// Schema.swift owns the database schema as an ordered list of migrations, and bringing a
// database up to date in place. `PRAGMA user_version` is the number of migrations applied.

/// One step of the schema. Migration N takes a database from version N-1 to N.
struct Migration: Sendable {
    let version: Int
    let summary: String
    let statements: [String]
}

extension Store {
    /// Every migration, in order; `migrations[i].version == i + 1`. Never edit a released
    /// migration: add the next one. A
    /// migration that must rebuild a table follows https://sqlite.org/lang_altertable.html
    /// ("other kinds of table schema changes"); foreign_keys is ON during migrations.
    static let migrations: [Migration] = [
        Migration(
            version: 1, summary: "tenants, keys, audit",
            statements: [
                """
                CREATE TABLE tenants (
                    id TEXT PRIMARY KEY,
                    name TEXT NOT NULL,
                    status TEXT NOT NULL CHECK (status IN ('active', 'suspended')),
                    uid INTEGER NOT NULL UNIQUE,
                    gid INTEGER NOT NULL UNIQUE,
                    created_at INTEGER NOT NULL
                )
                """,
                // Admin keys have no tenant, tenant keys always have one.
                """
                CREATE TABLE keys (
                    jti TEXT PRIMARY KEY,
                    tenant_id TEXT REFERENCES tenants(id) ON DELETE CASCADE,
                    kind TEXT NOT NULL CHECK (kind IN ('tenant', 'admin')),
                    scopes TEXT NOT NULL,
                    issued_at INTEGER NOT NULL,
                    expires_at INTEGER,
                    revoked_at INTEGER,
                    replaced_by TEXT,
                    grace_until INTEGER,
                    CHECK ((kind = 'admin') = (tenant_id IS NULL))
                )
                """,
                // AUTOINCREMENT: ids are never reused, so they order the log.
                """
                CREATE TABLE audit (
                    id INTEGER PRIMARY KEY AUTOINCREMENT,
                    time INTEGER NOT NULL,
                    actor TEXT NOT NULL,
                    action TEXT NOT NULL,
                    target TEXT,
                    result TEXT NOT NULL,
                    detail TEXT
                )
                """,
            ]),
        Migration(
            version: 2, summary: "per-tenant limit overrides; indexes",
            statements: [
                """
                CREATE TABLE tenant_limits (
                    tenant_id TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
                    rate_count INTEGER CHECK (rate_count >= 0),
                    rate_period_seconds INTEGER CHECK (rate_period_seconds >= 0),
                    burst INTEGER CHECK (burst >= 0),
                    concurrency INTEGER CHECK (concurrency >= 0),
                    compute_minutes_per_day INTEGER CHECK (compute_minutes_per_day >= 0),
                    storage_gb REAL CHECK (storage_gb >= 0),
                    max_workers INTEGER CHECK (max_workers >= 0),
                    shadow INTEGER NOT NULL DEFAULT 0 CHECK (shadow IN (0, 1))
                )
                """,
                "CREATE INDEX keys_tenant_id ON keys(tenant_id)",
                "CREATE INDEX audit_target ON audit(target)",
                "CREATE INDEX audit_time ON audit(time)",
            ]),
        // Several named rate policies per tenant: they move out of tenant_limits into a
        // table of their own; a v2 rate override becomes the tenant's "default" policy.
        // NULL values of "default" keep the configuration's.
        Migration(
            version: 3, summary: "named rate policies per tenant",
            statements: [
                """
                CREATE TABLE tenant_policies (
                    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
                    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 32),
                    rate_count INTEGER CHECK (rate_count > 0),
                    rate_period_seconds INTEGER CHECK (rate_period_seconds > 0),
                    burst INTEGER CHECK (burst > 0),
                    mode TEXT CHECK (mode IN ('enforce', 'shadow')),
                    PRIMARY KEY (tenant_id, name),
                    CHECK (name = 'default' OR (rate_count IS NOT NULL AND rate_period_seconds IS NOT NULL AND burst IS NOT NULL))
                ) WITHOUT ROWID
                """,
                """
                INSERT INTO tenant_policies (tenant_id, name, rate_count, rate_period_seconds, burst, mode)
                SELECT tenant_id, 'default', NULLIF(rate_count, 0), NULLIF(rate_period_seconds, 0), NULLIF(burst, 0),
                       CASE shadow WHEN 1 THEN 'shadow' END
                FROM tenant_limits
                WHERE rate_count IS NOT NULL OR rate_period_seconds IS NOT NULL OR burst IS NOT NULL OR shadow = 1
                """,
                """
                CREATE TABLE tenant_limits_v3 (
                    tenant_id TEXT PRIMARY KEY REFERENCES tenants(id) ON DELETE CASCADE,
                    concurrency INTEGER CHECK (concurrency >= 0),
                    compute_minutes_per_day INTEGER CHECK (compute_minutes_per_day >= 0),
                    storage_gb REAL CHECK (storage_gb >= 0),
                    max_workers INTEGER CHECK (max_workers >= 0)
                )
                """,
                """
                INSERT INTO tenant_limits_v3 (tenant_id, concurrency, compute_minutes_per_day, storage_gb, max_workers)
                SELECT tenant_id, concurrency, compute_minutes_per_day, storage_gb, max_workers FROM tenant_limits
                """,
                "DROP TABLE tenant_limits",
                "ALTER TABLE tenant_limits_v3 RENAME TO tenant_limits",
            ]),
        // Usage per tenant per UTC day (SPEC §8). No foreign key: billing history outlives
        // the tenant unless purged. Each batch of usage is applied once: its id is
        // recorded in the same transaction.
        Migration(
            version: 4, summary: "daily usage rollups",
            statements: [
                """
                CREATE TABLE usage_daily (
                    tenant_id TEXT NOT NULL,
                    day TEXT NOT NULL CHECK (length(day) = 10),
                    requests INTEGER NOT NULL DEFAULT 0 CHECK (requests >= 0),
                    errors INTEGER NOT NULL DEFAULT 0 CHECK (errors >= 0),
                    rate_limited INTEGER NOT NULL DEFAULT 0 CHECK (rate_limited >= 0),
                    bytes_in INTEGER NOT NULL DEFAULT 0 CHECK (bytes_in >= 0),
                    bytes_out INTEGER NOT NULL DEFAULT 0 CHECK (bytes_out >= 0),
                    cpu_us INTEGER NOT NULL DEFAULT 0 CHECK (cpu_us >= 0),
                    storage_bytes INTEGER NOT NULL DEFAULT 0 CHECK (storage_bytes >= 0),
                    PRIMARY KEY (tenant_id, day)
                ) WITHOUT ROWID
                """,
                "CREATE TABLE usage_batches (id INTEGER PRIMARY KEY, written_at INTEGER NOT NULL)",
                "CREATE INDEX usage_daily_day ON usage_daily(day)",
            ]),
    ]

    /// Refuses a database this build must not touch (a newer schema, another program's
    /// file) before anything is written to it, then switches it to WAL and applies the
    /// migrations after its version up to `target`, each in its own transaction together
    /// with its `user_version` bump. Several bulkheadd processes starting at once are
    /// safe: each step re-reads the version under the write lock.
    static func migrate(_ db: inout Connection, upTo target: Int) throws(StoreError) {
        precondition(migrations.count == schemaVersion && (1...schemaVersion).contains(target))
        let version = try checkedVersion(&db)
        if version == 0 { try requireEmpty(&db) }
        try db.enableWAL()
        if version >= target { return }
        while true {
            let done = try db.transaction { (db) throws(StoreError) -> Bool in
                let current = try checkedVersion(&db)
                if current >= target { return true }
                if current == 0 { try requireEmpty(&db) }
                for sql in migrations[current].statements { try db.run(sql, cached: false) }
                // A number we produce, not input: the one place SQL is built from a value,
                // because PRAGMA takes no parameters.
                try db.run("PRAGMA user_version = \(current + 1)", cached: false)
                return false
            }
            if done { return }
        }
    }

    /// The database's schema version, refused when a newer bulkheadd wrote it.
    static func checkedVersion(_ db: inout Connection) throws(StoreError) -> Int {
        let version = try userVersion(&db)
        if version > schemaVersion {
            throw StoreError(
                .schemaTooNew,
                "database schema version \(version) is newer than this bulkheadd (supports up to \(schemaVersion)); upgrade bulkheadd"
            )
        }
        if version < 0 { throw StoreError(.corrupt, "\(db.path): schema version \(version) was not written by bulkheadd") }
        return version
    }

    static func userVersion(_ db: inout Connection) throws(StoreError) -> Int {
        let version = try db.row("PRAGMA user_version") { (row) throws(StoreError) in try row.integer(0) }
        return Int(version ?? 0)
    }

    /// A version-0 database must be empty: we do not add our tables to another program's file.
    private static func requireEmpty(_ db: inout Connection) throws(StoreError) {
        let objects = try db.row("SELECT count(*) FROM sqlite_schema") { (row) throws(StoreError) in try row.integer(0) }
        if let objects, objects > 0 {
            throw StoreError(
                .invalid, "\(db.path) is a SQLite database that bulkheadd did not create (it has tables but no schema version); refusing to change it")
        }
    }
}
