// SQLite's online backup API (sqlite3_backup_*): a consistent copy of a live database —
// the daemon's own store for `bulkheadctl backup-state`, a tenant's Dict for
// `tenant backup` — taken page by page while writers carry on.
import CSQLite
import Glibc

public enum SQLiteBackup {
    /// Copies the database at `source` into a new file at `destination` (mode 0600).
    /// `source` is opened read-only and never through a symbolic link: a tenant's Dict
    /// lives in a directory the tenant controls.
    public static func copy(from source: String, to destination: String) throws(StoreError) {
        var src: OpaquePointer?
        let rc = sqlite3_open_v2(source, &src, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOFOLLOW | SQLITE_OPEN_NOMUTEX, nil)
        defer { sqlite3_close_v2(src) }
        guard rc == SQLITE_OK, let src else {
            throw StoreError(code: .io, message: "\(source): \(String(cString: sqlite3_errstr(rc)))")
        }
        sqlite3_busy_timeout(src, 5000)
        try backup(src, to: destination)
    }

    /// Copies the open database `db` into a new file at `destination`.
    static func backup(_ db: OpaquePointer, to destination: String) throws(StoreError) {
        let fd = open(destination, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw StoreError(code: .io, message: "\(destination): \(String(cString: strerror(errno)))") }
        close(fd)
        var dst: OpaquePointer?
        let rc = sqlite3_open_v2(destination, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nil)
        defer { sqlite3_close_v2(dst) }
        guard rc == SQLITE_OK, let dst else {
            throw StoreError(code: .io, message: "\(destination): \(String(cString: sqlite3_errstr(rc)))")
        }
        guard let b = sqlite3_backup_init(dst, "main", db, "main") else {
            throw StoreError(code: .io, message: "backup: \(String(cString: sqlite3_errmsg(dst)))")
        }
        var step: Int32
        repeat {
            step = sqlite3_backup_step(b, 256)
            if step == SQLITE_BUSY || step == SQLITE_LOCKED { sqlite3_sleep(10) }
        } while step == SQLITE_OK || step == SQLITE_BUSY || step == SQLITE_LOCKED
        let finished = sqlite3_backup_finish(b)
        guard step == SQLITE_DONE, finished == SQLITE_OK else {
            throw StoreError(code: .io, message: "backup: \(String(cString: sqlite3_errstr(step == SQLITE_DONE ? finished : step)))")
        }
        // A single self-contained file: no WAL beside it.
        sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", nil, nil, nil)
    }
}
