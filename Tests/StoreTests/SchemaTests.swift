// SchemaTests.swift: connection settings, migrations in place, and files that are refused.

import Glibc
import Testing
@testable import Store

@Suite struct Schema {
    @Test func migrationsAreNumberedOneToSchemaVersion() {
        #expect(Store.migrations.map(\.version) == Array(1...Store.schemaVersion))
        #expect(Store.schemaVersion == 4)
    }

    @Test func aFreshDatabaseIsCurrentWALAndPrivate() throws {
        let dir = TemporaryDirectory()
        let store = try makeStore(dir)
        #expect(store.path == dir.file("state.db"))
        #expect(try store.storedSchemaVersion == 4)
        #expect(try store.journalMode == "wal")
        #expect(try store.integrityCheck() == "ok")
        try create(store, "acme")  // writes the -wal file
        #expect(fileMode(dir.file("state.db")) == 0o600)
        #expect(fileMode(dir.file("state.db-wal")) == 0o600)
        #expect(fileMode(dir.file("state.db-shm")) == 0o600)
    }

    @Test func reopeningKeepsDataAndVersion() throws {
        let dir = TemporaryDirectory()
        do {
            let store = try makeStore(dir)
            try create(store, "acme")
        }
        // Closing the last connection checkpointed the log and removed it.
        #expect(fileMode(dir.file("state.db-wal")) == nil)
        let store = try makeStore(dir)
        #expect(try store.storedSchemaVersion == 4)
        #expect(try store.tenants().map(\.id) == ["acme"])
    }

    @Test func aVersion1DatabaseIsUpgradedInPlace() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("old.db")
        let tenant: TenantRecord
        let auditID: Int64
        do {
            let old = try Store.open(path: path, upToVersion: 1)
            #expect(try old.storedSchemaVersion == 1)
            tenant = try create(old, "acme", name: "Acme Corp")
            try old.insertKey(adminKey("root"))
            try old.revokeKey("acme-key1", now: 50)
            auditID = try old.appendAudit(AuditRecord(time: 1, actor: "root", action: "tenant.create", target: "acme", result: "ok"))
            // Version 1 has no limits table yet.
            #expect(storeError { try old.limits("acme") } != nil)
        }
        let store = try Store(path: path)
        #expect(try store.storedSchemaVersion == 4)
        #expect(try store.tenants() == [tenant])
        #expect(try store.allKeys().map(\.jti) == ["acme-key1", "root"])
        #expect(try store.key("acme-key1")?.revokedAt == 50)
        #expect(try store.audit(target: "acme", limit: 5).map(\.id) == [auditID])
        try store.setLimits("acme", LimitOverrides(policies: [PolicyOverride(name: "default", burst: 3)]))
        #expect(try store.limits("acme") == LimitOverrides(policies: [PolicyOverride(name: "default", burst: 3)]))
        // Later audit ids continue after the old ones.
        #expect(try store.appendAudit(AuditRecord(time: 2, actor: "root", action: "x", result: "ok")) > auditID)
        #expect(try store.integrityCheck() == "ok")
    }

    /// Version 3 moved rate overrides into named policies: a v2 override becomes the
    /// tenant's "default" policy, and the other limits stay where they were.
    @Test func aVersion2DatabaseKeepsItsLimits() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("v2.db")
        do {
            let old = try Store.open(path: path, upToVersion: 2)
            try create(old, "acme")
            try create(old, "beta")
            try create(old, "gamma")
        }
        do {
            var db = try Connection.open(path: path)
            try db.run("""
                INSERT INTO tenant_limits (tenant_id, rate_count, rate_period_seconds, burst, concurrency, compute_minutes_per_day,
                                           storage_gb, max_workers, shadow)
                VALUES ('acme', 50, 60, 10, 3, 7, 0.5, 2, 1), ('beta', NULL, NULL, NULL, 4, NULL, NULL, NULL, 0),
                       ('gamma', NULL, NULL, 9, NULL, NULL, NULL, NULL, 0)
                """, cached: false)
        }
        let store = try Store(path: path)
        #expect(try store.storedSchemaVersion == 4)
        #expect(try store.limits("acme") == LimitOverrides(
            concurrency: 3, computeMinutesPerDay: 7, storageGB: 0.5, maxWorkers: 2,
            policies: [PolicyOverride(name: "default", rateCount: 50, ratePeriodSeconds: 60, burst: 10, mode: .shadow)]))
        #expect(try store.limits("beta") == LimitOverrides(concurrency: 4))
        #expect(try store.limits("gamma") == LimitOverrides(policies: [PolicyOverride(name: "default", burst: 9)]))
        #expect(try store.allLimits().keys.sorted() == ["acme", "beta", "gamma"])
        #expect(try store.integrityCheck() == "ok")
    }

    @Test func aNewerSchemaIsRefused() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("future.db")
        do {
            var db = try Connection.open(path: path)
            try db.run("PRAGMA user_version = 99", cached: false)
        }
        let before = readFile(path)
        let error = storeError { try Store(path: path) }
        #expect(readFile(path) == before)
        #expect(error == StoreError(
            code: .schemaTooNew,
            message: "database schema version 99 is newer than this bulkheadd (supports up to 4); upgrade bulkheadd"))
        #expect(error?.description == "database schema version 99 is newer than this bulkheadd (supports up to 4); upgrade bulkheadd")
    }

    @Test func aTextFileIsRefusedAsNotADatabase() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("state.db")
        let text = Array("[server]\nlisten = 127.0.0.1:8080\n# this is a configuration file, not a database, and it is long enough\n".utf8)
        writeFile(path, text)
        let error = storeError { try Store(path: path) }
        #expect(error?.code == .corrupt)
        #expect(error?.message == "\(path) is not a SQLite database (file is not a database)")
        // Refusing it did not change it.
        #expect(readFile(path) == text)
    }

    @Test(arguments: [
        DamagedFile("header then garbage", Array("SQLite format 3\0".utf8) + [UInt8](repeating: 0xA5, count: 8_176)),
        DamagedFile("header only", Array("SQLite format 3\0".utf8) + [0x10, 0x00, 0x02, 0x02] + [UInt8](repeating: 0, count: 80)),
        DamagedFile("all ones", [UInt8](repeating: 0xFF, count: 4096)),
    ])
    func damagedFilesAreRefusedCleanly(file: DamagedFile) throws {
        let dir = TemporaryDirectory()
        let path = dir.file("state.db")
        writeFile(path, file.bytes)
        let error = storeError { try Store(path: path) }
        #expect(error?.code == .corrupt || error?.code == .io)
        #expect(error?.message.contains(path) == true)
    }

    @Test func aDamagedPageIsReportedNotCrashedOn() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("state.db")
        do {
            let store = try makeStore(dir)
            for i in 0..<300 { try create(store, "tenant-\(i)", name: String(repeating: "n", count: 100)) }
        }
        // Overwrite pages 3 and 4 (of 4096 bytes) with garbage.
        var bytes = readFile(path)
        try #require(bytes.count > 5 * 4096)
        for i in (2 * 4096)..<(4 * 4096) { bytes[i] = UInt8(truncatingIfNeeded: i &* 131) }
        writeFile(path, bytes)

        var reported = false
        do {
            let store = try Store(path: path)
            let check = try store.integrityCheck()
            reported = check != "ok"
            _ = try store.tenants()
            _ = try store.allKeys()
        } catch {
            #expect(error.code == .corrupt)
            reported = true
        }
        #expect(reported)
    }

    @Test func anotherProgramsDatabaseIsNotTouched() throws {
        let dir = TemporaryDirectory()
        let path = dir.file("foreign.db")
        do {
            var db = try Connection.open(path: path)
            try db.run("CREATE TABLE notes (body TEXT)", cached: false)
        }
        let before = readFile(path)
        #expect(storeError { try Store(path: path) }?.code == .invalid)
        #expect(readFile(path) == before)
        var db = try Connection.open(path: path)
        #expect(try db.rows("SELECT name FROM sqlite_schema", cached: false) { (row) throws(StoreError) in try row.text(0) } == ["notes"])
    }

    @Test func aMissingDirectoryIsAnIOError() {
        let dir = TemporaryDirectory()
        let path = dir.file("no/such/dir/state.db")
        #expect(storeError { try Store(path: path) } == StoreError(code: .io, message: "cannot create \(path): No such file or directory"))
    }
}

struct DamagedFile: Sendable, CustomTestStringConvertible {
    let testDescription: String
    let bytes: [UInt8]
    init(_ name: String, _ bytes: [UInt8]) {
        testDescription = name
        self.bytes = bytes
    }
}

func readFile(_ path: String) -> [UInt8] {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return [] }
    defer { close(fd) }
    var out: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if n <= 0 { return out }
        out += buffer[0..<n]
    }
}
