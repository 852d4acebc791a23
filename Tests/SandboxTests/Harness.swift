// A real supervisor on a real event loop thread, spawning real workers, for the tests.
import Dispatch
import EventLoop
import Foundation
import Log
import Posix
import Sandbox
import Supervisor
import Testing
import Wire

/// The build directory holding the test bundle, the workers and the daemon.
let buildDirectory: String = {
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
    // On Linux the test bundle is an executable directly in the build directory.
    if dir.lastPathComponent.hasSuffix(".xctest") { dir = dir.deletingLastPathComponent() }
    return dir.path
}()

let hostileWorker = buildDirectory + "/bulkhead-hostile-worker"
let stockWorker = buildDirectory + "/bulkhead-worker"

final class Harness: @unchecked Sendable {  // the supervisor is only touched through `onLoop`
    let loop: EventLoop
    let directory: String
    let volumes: String
    let logs = LogStore()
    private var supervisor: Supervisor!
    private let thread: Thread

    init(executable: String = hostileWorker, configure: (inout SupervisorSettings) -> Void = { _ in }) throws {
        directory = try makeTemporaryDirectory()
        volumes = directory + "/volumes"
        let loop = try EventLoop()
        self.loop = loop
        thread = Thread { try? loop.run() }
        thread.start()
        var settings = SupervisorSettings(
            executable: executable, volumesRoot: volumes, maxWorkersPerTenant: 2, queueLimit: 8,
            idleTimeout: .seconds(60), requestTimeout: .seconds(20), spawnTimeout: .seconds(10),
            restartBackoffBase: .milliseconds(200), restartBackoffMax: .seconds(5), exitGrace: .seconds(2),
            limits: ResourceLimits(memoryBytes: 256 << 20, cpuSeconds: 60, processes: 32, openFiles: 64,
                                   fileSizeBytes: 1 << 20))
        configure(&settings)
        let logger = Logger.collecting(into: logs)
        let s = settings
        supervisor = try onLoop { try Supervisor(loop: loop, settings: s, log: logger) }
    }

    /// Runs `body` on the loop thread and returns its result.
    func onLoop<T>(_ body: @escaping () throws -> T) throws -> T {
        let box = ResultBox<T>()
        let bound = LoopBound(body, loop: loop)
        loop.execute {
            box.set(Result { try bound.value() })
        }
        return try box.wait(seconds: 30).get()
    }

    func withSupervisor<T>(_ body: @escaping (Supervisor) throws -> T) throws -> T {
        let bound = LoopBound(supervisor!, loop: loop)
        return try onLoop { try body(bound.value) }
    }

    /// Submits a request and waits for its completion.
    func request(_ tenant: TenantIdentity, _ task: String, _ body: String = "") throws -> Result<Response, WorkerFailure> {
        let box = ResultBox<Result<Response, WorkerFailure>>()
        try withSupervisor { s in
            s.submit(tenant: tenant, task: task, body: Array(body.utf8)) { box.set(.success($0)) }
        }
        return try box.wait(seconds: 60).get()
    }

    /// Submits without waiting; returns a box for the answer.
    func submit(_ tenant: TenantIdentity, _ task: String, _ body: String = "") throws -> ResultBox<Result<Response, WorkerFailure>> {
        try submitWithTicket(tenant, task, body).box
    }

    func submitWithTicket(_ tenant: TenantIdentity, _ task: String, _ body: String = "") throws
        -> (box: ResultBox<Result<Response, WorkerFailure>>, ticket: RequestTicket) {
        let box = ResultBox<Result<Response, WorkerFailure>>()
        let ticket = try withSupervisor { s in
            s.submit(tenant: tenant, task: task, body: Array(body.utf8)) { box.set(.success($0)) }
        }
        return (box, ticket)
    }

    func body(_ tenant: TenantIdentity, _ task: String, _ body: String = "") throws -> String {
        switch try request(tenant, task, body) {
        case .success(let r): return String(decoding: r.body, as: UTF8.self)
        case .failure(let f): throw HarnessError("\(task) failed: \(f)")
        }
    }

    func snapshot(_ tenant: String) throws -> PoolSnapshot? {
        try withSupervisor { $0.snapshot().first { $0.tenant == tenant } }
    }

    func pids(_ tenant: String) throws -> [Int32] { try snapshot(tenant)?.workers.map(\.pid) ?? [] }

    func counters() throws -> SupervisorCounters { try withSupervisor { $0.counters } }

    /// Stops every worker, waits until all are reaped, stops the loop.
    func shutdown() throws {
        let done = ResultBox<Void>()
        try withSupervisor { s in s.shutdown(deadline: .seconds(5)) { done.set(.success(())) } }
        try done.wait(seconds: 30).get()
        loop.stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    func logLines(containing needle: String) -> [String] { logs.all.filter { $0.contains(needle) } }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

/// A one-shot value handed from the loop thread to the test thread.
final class ResultBox<T>: @unchecked Sendable {  // guarded by `lock`
    private let lock = NSCondition()
    private var value: Result<T, Error>?

    func set(_ v: Result<T, Error>) {
        lock.lock()
        if value == nil { value = v }
        lock.broadcast()
        lock.unlock()
    }

    func wait(seconds: Double) throws -> Result<T, Error> {
        let deadline = Date(timeIntervalSinceNow: seconds)
        lock.lock()
        defer { lock.unlock() }
        while value == nil {
            if !lock.wait(until: deadline) { throw HarnessError("timed out after \(seconds)s") }
        }
        return value!
    }

    var isSet: Bool {
        lock.lock()
        defer { lock.unlock() }
        return value != nil
    }
}

/// Polls `condition` until it holds or `seconds` pass (no sleeping to synchronise: the
/// wait ends as soon as the condition is true).
func eventually(_ seconds: Double = 10, _ what: String, _ condition: () throws -> Bool) throws {
    let deadline = Date(timeIntervalSinceNow: seconds)
    while Date() < deadline {
        if try condition() { return }
        _ = poll(nil, 0, 5)  // yield the core for 5 ms between checks
    }
    throw HarnessError("condition never held: \(what)")
}

func makeTemporaryDirectory() throws -> String {
    var template = Array("/tmp/bulkhead-test.XXXXXX".utf8CString)
    guard let p = mkdtemp(&template) else { throw HarnessError("mkdtemp failed") }
    return String(cString: p)
}

/// Fields of /proc/PID/status.
func procStatus(_ pid: Int32) -> [String: String] {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return [:] }
    var fields: [String: String] = [:]
    for line in text.split(separator: "\n") {
        guard let colon = line.firstIndex(of: ":") else { continue }
        fields[String(line[..<colon])] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    return fields
}

func processExists(_ pid: Int32) -> Bool { kill(pid, 0) == 0 }

/// Children of this process that are zombies (exited, not reaped).
func zombieChildren() -> [Int32] {
    let me = getpid()
    let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
    return entries.compactMap(Int32.init).filter { pid in
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return false }
        let rest = stat[stat.index(close, offsetBy: 2)...].split(separator: " ")
        return rest.count > 2 && rest[0] == "Z" && Int32(rest[1]) == me
    }
}

/// The pipes, sockets and pidfds this process holds, counted by kernel identity (all
/// pidfds share one name, so this is a multiset).
func kernelObjects() -> [String: Int] {
    var result: [String: Int] = [:]
    for fd in Posix.openDescriptors() {
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)") else { continue }
        if target.hasPrefix("socket:") || target.hasPrefix("pipe:") || target.contains("pidfd") { result[target, default: 0] += 1 }
    }
    return result
}

/// Objects in `after` that were not in `before`.
func leaked(before: [String: Int], after: [String: Int]) -> [String] {
    after.compactMap { key, n in n > (before[key] ?? 0) ? key : nil }
}
