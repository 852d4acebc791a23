// The tenant's Dict (SPEC §4): a key-value store in one SQLite file inside the tenant's
// volume, opened by the worker inside its jail (so it belongs to the tenant's uid and no
// other tenant's worker can reach it). The file lives in `/.bulkhead/`, a directory the
// files API refuses, so it can only be changed through these calls.
import CSQLite
import Glibc
import Wire

public final class TenantDict {
    /// The limits of Wire's DictCodec, shared with the dispatcher.
    public static let maxKeyBytes = DictCodec.maxKeyBytes
    public static let maxValueBytes = DictCodec.maxValueBytes
    public static let maxContentTypeBytes = DictCodec.maxContentTypeBytes
    static let directory = "/.bulkhead"
    static let file = "/.bulkhead/dict.db"

    /// The worker's one Dict, opened on first use (the worker serves one request at a
    /// time on one thread).
    nonisolated(unsafe) static var opened: TenantDict?

    public static func shared() throws(TaskError) -> TenantDict {
        if let d = opened { return d }
        let d = try TenantDict(path: file)
        opened = d
        return d
    }

    private var db: OpaquePointer?

    init(path: String) throws(TaskError) {
        _ = mkdir(Self.directory, 0o700)
        guard sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nil) == SQLITE_OK else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "out of memory"
            sqlite3_close(db)
            throw .failed("the dict cannot be opened: \(message)")
        }
        sqlite3_busy_timeout(db, 2000)
        try exec("PRAGMA journal_mode = WAL")
        try exec("PRAGMA synchronous = FULL")  // an acknowledged write survives a crash
        try exec("CREATE TABLE IF NOT EXISTS dict (key TEXT PRIMARY KEY, content_type TEXT NOT NULL, value BLOB NOT NULL) WITHOUT ROWID")
    }

    deinit { sqlite3_close(db) }

    public struct Entry: Equatable {
        public var contentType: String
        public var value: [UInt8]
    }

    public func get(_ key: String) throws(TaskError) -> Entry? {
        try Self.check(key: key)
        return try query("SELECT content_type, value FROM dict WHERE key = ?", [.text(key)]) { s in
            Entry(contentType: String(cString: sqlite3_column_text(s, 0)), value: Self.blob(s, 1))
        }.first
    }

    /// Stores `value`; true if the key is new.
    @discardableResult
    public func put(_ key: String, _ value: [UInt8], contentType: String = "application/octet-stream") throws(TaskError) -> Bool {
        try Self.check(key: key)
        guard value.count <= Self.maxValueBytes else { throw .tooLarge("a dict value is at most \(Self.maxValueBytes) bytes") }
        guard !contentType.isEmpty, contentType.utf8.count <= Self.maxContentTypeBytes,
              contentType.utf8.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) else {
            throw .badRequest("the content type must be 1 to \(Self.maxContentTypeBytes) printable characters")
        }
        let existed = try query("SELECT 1 FROM dict WHERE key = ?", [.text(key)]) { _ in true }.isEmpty == false
        _ = try query("INSERT INTO dict (key, content_type, value) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET content_type = excluded.content_type, value = excluded.value",
                      [.text(key), .text(contentType), .blob(value)]) { _ in () }
        return !existed
    }

    /// Bytes the Dict's files take on disk (the database, its WAL and shared-memory
    /// index, in whole blocks), as the daemon's storage scan counts them: a write reports
    /// the difference it made, for the tenant's storage figure.
    static func diskBytes() -> Int64 {
        var total: Int64 = 0
        for suffix in ["", "-wal", "-shm"] {
            var st = stat()
            if lstat(file + suffix, &st) == 0 { total += Int64(st.st_blocks) * 512 }
        }
        return total
    }

    /// True if there was such a key.
    public func delete(_ key: String) throws(TaskError) -> Bool {
        try Self.check(key: key)
        _ = try query("DELETE FROM dict WHERE key = ?", [.text(key)]) { _ in () }
        return sqlite3_changes(db) > 0
    }

    /// Keys starting with `prefix`, after `after`, in order, at most `limit`.
    public func keys(prefix: String, after: String?, limit: Int) throws(TaskError) -> [String] {
        // A range, not LIKE: no wildcard in a key can widen the match.
        var sql = "SELECT key FROM dict WHERE key >= ?"
        var values: [Value] = [.text(prefix)]
        if let after {
            sql += " AND key > ?"
            values.append(.text(after))
        }
        sql += " ORDER BY key LIMIT ?"
        values.append(.integer(Int64(limit) + 64))
        var out: [String] = []
        for key in try query(sql, values, { s in String(cString: sqlite3_column_text(s, 0)) }) {
            // Bytes, as SQLite ordered them: `hasPrefix` compares Characters, and a key whose
            // next scalar combines with the prefix's last one would end the listing early.
            guard key.utf8.starts(with: prefix.utf8) else { break }
            out.append(key)
            if out.count == limit { break }
        }
        return out
    }

    static func check(key: String) throws(TaskError) {
        guard !key.isEmpty else { throw .badRequest("a dict key must not be empty") }
        guard key.utf8.count <= maxKeyBytes else { throw .tooLarge("a dict key is at most \(maxKeyBytes) bytes") }
        guard !key.utf8.contains(0) else { throw .badRequest("a dict key must not contain NUL") }
    }

    // MARK: SQLite

    enum Value {
        case text(String)
        case blob([UInt8])
        case integer(Int64)
    }

    private func exec(_ sql: String) throws(TaskError) {
        _ = try query(sql, []) { _ in () }
    }

    private func query<R>(_ sql: String, _ values: [Value], _ row: (OpaquePointer) -> R) throws(TaskError) -> [R] {
        var stmt: OpaquePointer?
        guard sqlite3_prepare_v2(db, sql, -1, &stmt, nil) == SQLITE_OK, let s = stmt else { throw error() }
        defer { sqlite3_finalize(s) }
        let transient = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)
        for (i, v) in values.enumerated() {
            let index = Int32(i + 1)
            switch v {
            case .text(let t): sqlite3_bind_text(s, index, t, -1, transient)
            case .integer(let n): sqlite3_bind_int64(s, index, n)
            case .blob(let b): _ = b.withUnsafeBytes { sqlite3_bind_blob(s, index, $0.baseAddress ?? UnsafeRawPointer(bitPattern: 1), Int32($0.count), transient) }
            }
        }
        var out: [R] = []
        while true {
            switch sqlite3_step(s) {
            case SQLITE_ROW: out.append(row(s))
            case SQLITE_DONE: return out
            default: throw error()
            }
        }
    }

    private func error() -> TaskError { .failed("the dict failed: \(String(cString: sqlite3_errmsg(db)))") }

    static func blob(_ s: OpaquePointer, _ column: Int32) -> [UInt8] {
        let n = Int(sqlite3_column_bytes(s, column))
        guard n > 0, let p = sqlite3_column_blob(s, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: p, count: n))
    }
}
