// SQLite.swift owns every C call into SQLite: one connection, its prepared statements
// (cached by SQL text), typed binding and column reading, and result codes as StoreError.
// Nothing here is public; the rest of the module sees values, never a C pointer.

import CSQLite
import Glibc

/// A value bound to a `?` parameter. Text is always bound this way, never spliced into SQL.
enum SQLValue {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)

    init(_ value: String?) { self = value.map { .text($0) } ?? .null }
    init(_ value: Int64?) { self = value.map { .integer($0) } ?? .null }
    init(_ value: Double?) { self = value.map { .real($0) } ?? .null }
}

/// One open SQLite database. Not thread-safe by design: it is opened `SQLITE_OPEN_NOMUTEX`
/// and `Store` keeps it inside a `Mutex`, so exactly one thread uses it at a time.
/// Owned (`~Copyable`): `deinit` finalizes the cached statements and closes the handle.
struct Connection: ~Copyable {
    /// The database file, for error messages.
    let path: String
    private let db: OpaquePointer
    /// Prepared statements by SQL text, reused across calls (`SQLITE_PREPARE_PERSISTENT`).
    private var cache: [String: OpaquePointer] = [:]

    /// How long a statement waits for another connection's lock before failing with
    /// SQLITE_BUSY (`sqlite3_busy_timeout`). Our own transactions last milliseconds.
    static let busyTimeoutMilliseconds: Int32 = 5000

    /// Creates the file (mode 0600) if it is missing, then `sqlite3_open_v2` with
    /// READWRITE|CREATE|NOMUTEX, then the per-connection settings of `configure()`.
    /// Nothing is written to the file yet: `enableWAL()` is the first persistent change.
    static func open(path: String) throws(StoreError) -> Connection {
        try createPrivateFile(path)
        var handle: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE
        let rc = sqlite3_open_v2(path, &handle, flags, nil)
        guard rc == SQLITE_OK, let handle else {
            let message = handle.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(rc))
            sqlite3_close_v2(handle)
            throw error(rc, message, path: path)
        }
        sqlite3_busy_timeout(handle, busyTimeoutMilliseconds)
        var connection = Connection(path: path, db: handle)
        try connection.configure()  // on failure, deinit closes the handle
        return connection
    }

    private init(path: String, db: OpaquePointer) {
        self.path = path
        self.db = db
    }

    /// How many prepared statements are cached; for tests (it must not grow with the data).
    var cachedStatements: Int { cache.count }

    deinit {
        for statement in cache.values { sqlite3_finalize(statement) }
        sqlite3_close_v2(db)
    }

    /// The settings every connection runs with (none is stored in the file):
    /// - synchronous=FULL: in WAL mode each commit fsyncs the log before the call returns,
    ///   so an acknowledged write survives kill -9 *and* power loss (NORMAL would only
    ///   survive kill -9). Our writes are control-plane changes, a few per second at most.
    /// - foreign_keys=ON: SQLite's default is off; deleting a tenant must cascade.
    /// - trusted_schema=OFF: a tampered database file cannot run SQL functions from its schema.
    private mutating func configure() throws(StoreError) {
        try run("PRAGMA synchronous = FULL", cached: false)
        try run("PRAGMA foreign_keys = ON", cached: false)
        try run("PRAGMA trusted_schema = OFF", cached: false)
        let foreignKeys = try rows("PRAGMA foreign_keys", cached: false) { (row) throws(StoreError) in try row.integer(0) }
        guard foreignKeys.first == 1 else {
            throw StoreError(.io, "\(path): this SQLite library cannot enforce foreign keys")
        }
    }

    /// `PRAGMA journal_mode=WAL`, which is stored in the file: readers never block the
    /// writer, and a commit is one append to the log.
    mutating func enableWAL() throws(StoreError) {
        let mode = try rows("PRAGMA journal_mode = WAL", cached: false) { (row) throws(StoreError) in try row.text(0) }
        guard mode.first?.lowercased() == "wal" else {
            throw StoreError(.io, "\(path): cannot switch to WAL journal mode (got \(mode.first ?? "nothing"))")
        }
    }

    /// Creates the database file with mode 0600 before SQLite opens it, so the umask never
    /// makes it readable by others (SQLite gives its -wal and -shm files the same mode).
    /// An existing file is left as it is. `open(O_CREAT|O_EXCL)` + `fchmod`.
    private static func createPrivateFile(_ path: String) throws(StoreError) {
        while true {
            let fd = Glibc.open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
            if fd >= 0 {
                _ = fchmod(fd, 0o600)  // the umask may have removed bits we need
                Glibc.close(fd)
                return
            }
            switch errno {
            case EINTR: continue
            case EEXIST: return
            case let code: throw StoreError(.io, "cannot create \(path): \(String(cString: strerror(code)))")
            }
        }
    }

    // MARK: - Running statements

    /// Runs a statement that returns no rows; returns how many rows it changed
    /// (`sqlite3_changes`: direct changes only, not cascaded ones).
    @discardableResult
    mutating func run(_ sql: String, _ values: [SQLValue] = [], cached: Bool = true) throws(StoreError) -> Int {
        let statement = try prepare(sql, cached: cached)
        try using(statement, values, cached: cached) { (statement) throws(StoreError) in
            while try step(statement) {}
        }
        return Int(sqlite3_changes(db))
    }

    /// Runs a query and maps each row with `read`. The `Row` is valid only inside `read`.
    mutating func rows<R>(
        _ sql: String, _ values: [SQLValue] = [], cached: Bool = true, _ read: (Row) throws(StoreError) -> R
    ) throws(StoreError) -> [R] {
        let statement = try prepare(sql, cached: cached)
        return try using(statement, values, cached: cached) { (statement) throws(StoreError) in
            var out: [R] = []
            while try step(statement) { out.append(try read(Row(statement: statement, path: path))) }
            return out
        }
    }

    /// The first row of a query mapped by `read`, or nil when there is none.
    mutating func row<R>(_ sql: String, _ values: [SQLValue] = [], _ read: (Row) throws(StoreError) -> R) throws(StoreError) -> R? {
        let statement = try prepare(sql, cached: true)
        return try using(statement, values, cached: true) { (statement) throws(StoreError) in
            try step(statement) ? try read(Row(statement: statement, path: path)) : nil
        }
    }

    /// Runs `body` between BEGIN IMMEDIATE and COMMIT; any error rolls back. IMMEDIATE takes
    /// the write lock up front (waiting up to the busy timeout), so a transaction never
    /// fails half-way because another connection wrote after it read.
    mutating func transaction<R>(_ body: (inout Connection) throws(StoreError) -> R) throws(StoreError) -> R {
        try run("BEGIN IMMEDIATE")
        do throws(StoreError) {
            let result = try body(&self)
            try run("COMMIT")
            return result
        } catch {
            // SQLite may already have rolled back by itself (SQLITE_FULL, SQLITE_IOERR…).
            if sqlite3_get_autocommit(db) == 0 { _ = try? run("ROLLBACK") }
            throw error
        }
    }

    // MARK: - Statements

    /// Binds `values` to a prepared statement, runs `body`, and always resets the statement
    /// (or finalizes it, when it is not cached) so the next use starts clean.
    private func using<R>(
        _ statement: OpaquePointer, _ values: [SQLValue], cached: Bool, _ body: (OpaquePointer) throws(StoreError) -> R
    ) throws(StoreError) -> R {
        defer {
            if cached {
                sqlite3_reset(statement)
                sqlite3_clear_bindings(statement)
            } else {
                sqlite3_finalize(statement)
            }
        }
        try bind(values, to: statement)
        return try body(statement)
    }

    /// `sqlite3_prepare_v3`; cached statements are kept until the connection closes.
    private mutating func prepare(_ sql: String, cached: Bool) throws(StoreError) -> OpaquePointer {
        if cached, let statement = cache[sql] { return statement }
        var statement: OpaquePointer?
        var tail: UnsafePointer<CChar>?
        let flags = cached ? UInt32(SQLITE_PREPARE_PERSISTENT) : 0
        let rc = sqlite3_prepare_v3(db, sql, -1, flags, &statement, &tail)
        guard rc == SQLITE_OK else { throw failure(rc) }
        guard let statement else { preconditionFailure("SQL with no statement: \(sql)") }
        precondition(tail.map { $0.pointee == 0 } ?? true, "one statement at a time: \(sql)")
        if cached { cache[sql] = statement }
        return statement
    }

    /// `sqlite3_bind_*` for each value, in order. Text is copied (`SQLITE_TRANSIENT`).
    private func bind(_ values: [SQLValue], to statement: OpaquePointer) throws(StoreError) {
        precondition(
            Int(sqlite3_bind_parameter_count(statement)) == values.count,
            "wrong number of parameters for: \(String(cString: sqlite3_sql(statement)))")
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            let rc: Int32
            switch value {
            case .null: rc = sqlite3_bind_null(statement, index)
            case .integer(let v): rc = sqlite3_bind_int64(statement, index, v)
            case .real(let v): rc = sqlite3_bind_double(statement, index, v)
            case .text(let v):
                // Bound with its length, so an embedded NUL is data, not an end. An empty
                // string has no buffer address, and a NULL pointer would bind NULL, not "".
                var text = v
                rc = text.isEmpty
                    ? sqlite3_bind_text64(statement, index, "", 0, Connection.transient, UInt8(SQLITE_UTF8))
                    : text.withUTF8 { bytes in
                        bytes.withMemoryRebound(to: CChar.self) {
                            sqlite3_bind_text64(
                                statement, index, $0.baseAddress, sqlite3_uint64($0.count), Connection.transient,
                                UInt8(SQLITE_UTF8))
                        }
                    }
            }
            guard rc == SQLITE_OK else { throw failure(rc) }
        }
    }

    /// `sqlite3_step`: true when a row is ready, false when the statement is done.
    private func step(_ statement: OpaquePointer) throws(StoreError) -> Bool {
        switch sqlite3_step(statement) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        case let rc: throw failure(rc)
        }
    }

    /// `SQLITE_TRANSIENT` is a macro (a cast of -1) that Swift cannot import.
    private static var transient: sqlite3_destructor_type {
        unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)
    }

    // MARK: - Errors

    /// The error for result code `rc`, with SQLite's message for this connection.
    private func failure(_ rc: Int32) -> StoreError {
        Connection.error(sqlite3_extended_errcode(db), String(cString: sqlite3_errmsg(db)), path: path)
    }

    /// Maps an (extended) SQLite result code to a backend-neutral code.
    static func error(_ rc: Int32, _ message: String, path: String) -> StoreError {
        let primary = rc & 0xFF
        switch primary {
        case SQLITE_CONSTRAINT:
            switch rc {
            case SQLITE_CONSTRAINT | (6 << 8), SQLITE_CONSTRAINT | (8 << 8):  // _PRIMARYKEY, _UNIQUE
                return StoreError(.alreadyExists, "\(message) (SQLite error \(rc))")
            case SQLITE_CONSTRAINT | (1 << 8), SQLITE_CONSTRAINT | (5 << 8):  // _CHECK, _NOTNULL
                return StoreError(.invalid, "\(message) (SQLite error \(rc))")
            default:  // _FOREIGNKEY and the rest
                return StoreError(.conflict, "\(message) (SQLite error \(rc))")
            }
        case SQLITE_NOTADB:
            return StoreError(.corrupt, "\(path) is not a SQLite database (\(message))")
        case SQLITE_CORRUPT:
            return StoreError(.corrupt, "\(path) is damaged: \(message); restore it from a backup")
        case SQLITE_BUSY, SQLITE_LOCKED:
            return StoreError(
                .io, "\(path): \(message) (another process held it for more than \(busyTimeoutMilliseconds) ms)")
        case SQLITE_TOOBIG, SQLITE_MISMATCH, SQLITE_RANGE:
            return StoreError(.invalid, "\(path): \(message) (SQLite error \(rc))")
        default:  // IOERR, CANTOPEN, FULL, READONLY, PERM, NOMEM, ERROR…
            return StoreError(.io, "\(path): \(message) (SQLite error \(rc))")
        }
    }
}

/// The current row of a running statement, read with type checks: a column holding an
/// unexpected type means the file was edited or damaged, and is reported, not trapped on.
struct Row {
    fileprivate let statement: OpaquePointer
    fileprivate let path: String

    func isNull(_ column: Int32) -> Bool { sqlite3_column_type(statement, column) == SQLITE_NULL }

    func integer(_ column: Int32) throws(StoreError) -> Int64 {
        try expect(column, SQLITE_INTEGER, "INTEGER")
        return sqlite3_column_int64(statement, column)
    }

    func real(_ column: Int32) throws(StoreError) -> Double {
        // A REAL column stores whole numbers as REAL, but accept INTEGER from other writers.
        if sqlite3_column_type(statement, column) == SQLITE_INTEGER { return Double(sqlite3_column_int64(statement, column)) }
        try expect(column, SQLITE_FLOAT, "REAL")
        return sqlite3_column_double(statement, column)
    }

    func text(_ column: Int32) throws(StoreError) -> String {
        try expect(column, SQLITE_TEXT, "TEXT")
        // Length first (column_bytes after column_text), so embedded NULs survive.
        guard let bytes = sqlite3_column_text(statement, column) else { return "" }
        let count = Int(sqlite3_column_bytes(statement, column))
        return String(decoding: UnsafeBufferPointer(start: bytes, count: count), as: UTF8.self)
    }

    func optionalInteger(_ column: Int32) throws(StoreError) -> Int64? { isNull(column) ? nil : try integer(column) }
    func optionalReal(_ column: Int32) throws(StoreError) -> Double? { isNull(column) ? nil : try real(column) }
    func optionalText(_ column: Int32) throws(StoreError) -> String? { isNull(column) ? nil : try text(column) }

    /// A corrupt-data error naming the column, for values that fail a check above SQL.
    func invalid(_ column: Int32, _ what: String) -> StoreError {
        StoreError(.corrupt, "\(path): column \(name(column)) holds \(what)")
    }

    private func expect(_ column: Int32, _ type: Int32, _ typeName: String) throws(StoreError) {
        let actual = sqlite3_column_type(statement, column)
        guard actual == type else {
            let names = [SQLITE_INTEGER: "INTEGER", SQLITE_FLOAT: "REAL", SQLITE_TEXT: "TEXT", SQLITE_BLOB: "BLOB", SQLITE_NULL: "NULL"]
            throw invalid(column, "\(names[actual] ?? "type \(actual)"), expected \(typeName)")
        }
    }

    private func name(_ column: Int32) -> String {
        let table = sqlite3_column_table_name(statement, column).map { String(cString: $0) + "." } ?? ""
        let name = sqlite3_column_name(statement, column).map { String(cString: $0) } ?? "\(column)"
        return table + name
    }
}
