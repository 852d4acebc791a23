// Support.swift: helpers shared by the Store tests: a temporary directory that removes
// itself, record factories, and running a body on real threads.

import Glibc
import Synchronization
import Testing
@testable import Store

/// A fresh directory under $TMPDIR (or /tmp), removed with everything in it on deinit.
final class TemporaryDirectory {
    let path: String

    init() {
        let base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array((base + "/store-tests-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else { fatalError("mkdtemp: \(String(cString: strerror(errno)))") }
        path = String(cString: made)
    }

    /// A path inside the directory.
    func file(_ name: String) -> String { path + "/" + name }

    deinit {
        if let dir = opendir(path) {
            while let entry = readdir(dir) {
                let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
                if name != "." && name != ".." { unlink(file(name)) }
            }
            closedir(dir)
        }
        rmdir(path)
    }
}

/// A store on a fresh file in `dir`.
func makeStore(_ dir: TemporaryDirectory, _ name: String = "state.db") throws(StoreError) -> Store {
    try Store(path: dir.file(name))
}

func tenantKey(_ jti: String, _ tenant: String, issuedAt: Int64 = 100, scopes: [String] = ["tasks:run"]) -> KeyRecord {
    KeyRecord(jti: jti, tenantID: tenant, kind: .tenant, scopes: scopes, issuedAt: issuedAt)
}

func adminKey(_ jti: String, issuedAt: Int64 = 100) -> KeyRecord {
    KeyRecord(jti: jti, tenantID: nil, kind: .admin, scopes: ["admin"], issuedAt: issuedAt)
}

/// Creates a tenant with a first key named `<id>-key1`, in uid range [base, base+count).
@discardableResult
func create(
    _ store: Store, _ id: String, name: String? = nil, base: UInt32 = 200_000, count: UInt32 = 65_536, now: Int64 = 1_000
) throws(StoreError) -> TenantRecord {
    try store.createTenant(
        id: id, name: name ?? "Tenant \(id)", uidBase: base, uidCount: count, now: now, firstKey: tenantKey(id + "-key1", id))
}

/// The StoreError `body` throws, or nil. (Untyped `throws`: closures written inside
/// `#expect` are inferred as throwing `any Error`.)
func storeError<T>(_ body: () throws -> T) -> StoreError? {
    do {
        _ = try body()
        return nil
    } catch let error as StoreError {
        return error
    } catch {
        Issue.record("not a StoreError: \(error)")
        return nil
    }
}

/// File mode bits (`stat`), or nil if the file does not exist.
func fileMode(_ path: String) -> mode_t? {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    return info.st_mode & 0o7777
}

func writeFile(_ path: String, _ bytes: [UInt8]) {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
    precondition(fd >= 0, "open \(path)")
    bytes.withUnsafeBytes { precondition(write(fd, $0.baseAddress, $0.count) == $0.count) }
    close(fd)
}

/// Runs `body(index)` on `count` real threads at once and waits for all of them.
func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
    final class Job: Sendable {
        let index: Int
        let body: @Sendable (Int) -> Void
        init(_ index: Int, _ body: @escaping @Sendable (Int) -> Void) {
            self.index = index
            self.body = body
        }
    }
    var threads: [pthread_t] = []
    for index in 0..<count {
        var thread = pthread_t()
        let job = Unmanaged.passRetained(Job(index, body)).toOpaque()
        let rc = pthread_create(&thread, nil, { raw in
            let job = Unmanaged<Job>.fromOpaque(raw!).takeRetainedValue()
            job.body(job.index)
            return nil
        }, job)
        precondition(rc == 0, "pthread_create: \(rc)")
        threads.append(thread)
    }
    for thread in threads { pthread_join(thread, nil) }
}

/// Errors collected from several threads.
final class Failures: Sendable {
    private let list = Mutex<[String]>([])
    func add(_ text: String) { list.withLock { $0.append(text) } }
    var all: [String] { list.withLock { $0 } }
}
