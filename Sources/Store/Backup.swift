// SQLite's online backup API (sqlite3_backup_*): a consistent copy of a live database —
// the daemon's own store for `bulkheadctl backup-state`, a tenant's Dict for
// `tenant backup` — taken in one read transaction, so writers carry on and a writer that
// never stops cannot make the copy start over.
import CSQLite
import Glibc

public enum SQLiteBackup {
    /// Copies the database at `source` into a new file at `destination` (mode 0600, a
    /// rollback-journal database: no WAL beside it). `followLinks` false: no component of
    /// `source` may be a symbolic link. A lock that another process holds on either file
    /// for more than `busySeconds` fails the copy rather than waiting for its owner.
    public static func copy(from source: String, to destination: String, followLinks: Bool, busySeconds: Int) throws(StoreError) {
        var src: OpaquePointer?
        let flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | (followLinks ? 0 : SQLITE_OPEN_NOFOLLOW)
        let rc = sqlite3_open_v2(source, &src, flags, nil)
        defer { sqlite3_close_v2(src) }
        guard rc == SQLITE_OK, let src else {
            throw StoreError(code: .io, message: "\(source): \(String(cString: sqlite3_errstr(rc)))")
        }
        let dst = try create(destination, followLinks: followLinks)
        defer { sqlite3_close_v2(dst) }
        harden(src)
        // The busy handler retries for the whole deadline.
        sqlite3_busy_timeout(src, Int32(clamping: busySeconds * 1000))
        sqlite3_busy_timeout(dst, Int32(clamping: busySeconds * 1000))
        guard let b = sqlite3_backup_init(dst, "main", src, "main") else {
            throw StoreError(code: .io, message: "backup: \(String(cString: sqlite3_errmsg(dst)))")
        }
        // -1: every page in one step, within one read transaction of the source.
        let step = sqlite3_backup_step(b, -1)
        let finished = sqlite3_backup_finish(b)
        if step == SQLITE_BUSY || step == SQLITE_LOCKED {
            throw StoreError(code: .io, message: "\(source) stayed locked for \(busySeconds) s (its owner holds a lock on it): not copied")
        }
        guard step == SQLITE_DONE, finished == SQLITE_OK else {
            throw StoreError(code: .io, message: "backup: \(String(cString: sqlite3_errmsg(dst)))")
        }
        // A single self-contained file: no WAL beside it.
        guard sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", nil, nil, nil) == SQLITE_OK else {
            throw StoreError(code: .io, message: "\(destination): \(String(cString: sqlite3_errmsg(dst)))")
        }
    }

    /// A new, empty database file at `path` (mode 0600), open.
    private static func create(_ path: String, followLinks: Bool) throws(StoreError) -> OpaquePointer {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StoreError(code: .io, message: "\(path): \(String(cString: strerror(errno)))") }
        close(fd)
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (followLinks ? 0 : SQLITE_OPEN_NOFOLLOW)
        let rc = sqlite3_open_v2(path, &handle, flags, nil)
        guard rc == SQLITE_OK, let handle else {
            sqlite3_close_v2(handle)
            throw StoreError(code: .io, message: "\(path): \(String(cString: sqlite3_errstr(rc)))")
        }
        harden(handle)
        return handle
    }

    /// Nothing in a database that someone else wrote runs here: no function from its
    /// schema, no write to its internals.
    private static func harden(_ db: OpaquePointer) {
        _ = bh_sqlite3_db_config_flag(db, SQLITE_DBCONFIG_DEFENSIVE, 1)
        _ = bh_sqlite3_db_config_flag(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0)
    }
}
