// A real bulkheadd process with its own state directory, and bulkheadctl runs against it.
import Foundation
import Testing

let buildDirectory: String = {
    let exe = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    return URL(fileURLWithPath: exe).deletingLastPathComponent().path
}()

struct Ran {
    let status: Int32
    let stdout: String
    let stderr: String
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

final class Daemon: @unchecked Sendable {  // used from one test at a time
    let directory: String
    let config: String
    var process: Process?
    /// A daemon started by `posix_spawn` rather than Foundation: systemd-socket-activate
    /// closes the descriptor Foundation watches for a child's exit, after which Foundation
    /// would wait on the live daemon and reap no other child.
    private var rawPID: pid_t?
    var pid: Int32? { process?.processIdentifier ?? rawPID }
    var socket: String { directory + "/control.sock" }
    var state: String { directory + "/state" }
    var volumes: String { state + "/volumes" }
    var log: String { directory + "/bulkheadd.log" }

    let port = freePort()

    /// `hostile`: the workers are the test build's hostile worker (it has extra tasks).
    /// `listen`: more listen addresses after the plain one (`tls://…`), with `[server]` lines.
    init(extra: String = "", hostile: Bool = false, listen: String = "", server: String = "") throws {
        directory = try makeTemporaryDirectory()
        chmod(directory, 0o755)  // so a test can connect as another uid
        config = directory + "/test.conf"
        try """
            [server]
            listen = 127.0.0.1:\(port)\(listen.isEmpty ? "" : ", " + listen)
            \(server)
            state_dir = \(directory)/state
            control_socket = \(directory)/control.sock
            admin_group = bulkhead-test-nonexistent
            drain_timeout = 5s
            [sandbox]
            uid_base = 240000
            uid_count = 1000
            \(hostile ? "[workers]\nexecutable = \(buildDirectory)/bulkhead-hostile-worker" : "")
            \(extra)
            """.write(toFile: config, atomically: true, encoding: .utf8)
    }

    /// `environment`: added to the test's own; `wrapper`: a command that execs the daemon
    /// (systemd-socket-activate), its arguments before the daemon's.
    /// `activate`: a port to connect to first (systemd-socket-activate starts the daemon
    /// on the first connection); that connection is returned.
    @discardableResult
    func start(environment: [String: String] = [:], wrapper: [String] = [], activate: UInt16? = nil) throws -> RawConnection? {
        let daemon = [buildDirectory + "/bulkheadd", "--config", config]
        FileManager.default.createFile(atPath: log, contents: nil)
        if !wrapper.isEmpty {
            rawPID = try spawn(wrapper + daemon, environment: ProcessInfo.processInfo.environment.merging(environment) { $1 }, output: log)
            var first: RawConnection?
            if let activate { try eventually(10, "the activating socket listens") { first = try? RawConnection(port: activate); return first != nil } }
            try eventually(20, "bulkheadd answers on its control socket") { ctl("status").status == 0 }
            return first
        }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: daemon[0])
        p.arguments = Array(daemon.dropFirst())
        if !environment.isEmpty { p.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let out = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        out.seekToEndOfFile()
        p.standardOutput = out
        p.standardError = out
        try p.run()
        process = p
        try eventually(20, "bulkheadd answers on its control socket") { ctl("status").status == 0 }
        return nil
    }

    /// SIGKILL: nothing gets to clean up or flush.
    /// Its spawner and workers outlive it briefly and, when this test process is a child
    /// subreaper (the in-process harness makes it one), come to it as orphans: they are
    /// reaped here, so no zombie is left for Swift Testing's exit-test monitor to spin on.
    func kill9() {
        if let raw = rawPID {
            kill(raw, SIGKILL)
            waitpid(raw, nil, 0)
            rawPID = nil
            return
        }
        guard let p = process else { return }
        let children = childProcesses(of: p.processIdentifier)
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        process = nil
        var left = Set(children)
        try? eventually(20, "the killed daemon's children are gone") {
            for c in left {
                let r = waitpid(c, nil, WNOHANG)
                if r == c || (r < 0 && access("/proc/\(c)", F_OK) != 0) { left.remove(c) }
            }
            return left.isEmpty
        }
    }

    func signal(_ sig: Int32) {
        if let pid { kill(pid, sig) }
    }

    /// Replaces the configuration file (for reload tests).
    func rewriteConfig(extra: String) throws {
        let text = try String(contentsOfFile: config, encoding: .utf8)
        let base = text.components(separatedBy: "\n;extra\n")[0]
        try (base + "\n;extra\n" + extra).write(toFile: config, atomically: true, encoding: .utf8)
    }

    /// SIGTERM and the exit status.
    @discardableResult
    func stop() -> Int32 {
        if let raw = rawPID {
            kill(raw, SIGTERM)
            var status: Int32 = 0
            waitpid(raw, &status, 0)
            rawPID = nil
            return (status >> 8) & 0xFF
        }
        guard let p = process else { return 0 }
        p.terminate()
        p.waitUntilExit()
        process = nil
        return p.terminationStatus
    }

    func ctl(_ args: String..., socket override: String? = nil, asUID: UInt32? = nil) -> Ran {
        ctl(args, socket: override, asUID: asUID)
    }

    func ctl(_ args: [String], socket override: String? = nil, asUID: UInt32? = nil) -> Ran {
        var argv = ["--socket", override ?? socket] + args
        var exe = buildDirectory + "/bulkheadctl"
        if let uid = asUID {
            // A copy in the test's own 0755 directory: the build directory of a CI clone
            // may not be reachable for another uid.
            let copy = directory + "/bulkheadctl"
            if !FileManager.default.fileExists(atPath: copy) {
                try? FileManager.default.copyItem(atPath: exe, toPath: copy)
                chmod(copy, 0o755)
            }
            exe = copy
            argv = ["--reuid=\(uid)", "--regid=0", "--clear-groups", exe] + argv
            exe = "/usr/bin/setpriv"
        }
        return run(exe, argv)
    }

    func connect() throws -> RawConnection { try RawConnection(port: port) }

    /// One request on a fresh connection.
    func call(_ method: String = "POST", _ path: String = "/v1/process", key: String?, body: String? = nil,
              headers: [String] = []) throws -> HTTPReply {
        let c = try connect()
        c.send(request(method, path, key: key, body: body, headers: headers))
        guard let r = c.response() else { throw TestFailure("no response to \(method) \(path)") }
        return r
    }

    /// Creates a tenant and returns its API key.
    func tenant(_ id: String) throws -> String {
        let r = ctl("tenant", "create", id)
        guard r.status == 0, let key = apiKey(r.stdout, json: false) else { throw TestFailure("tenant create \(id): \(r.stderr)") }
        return key
    }

    func cleanUp() {
        stop()
        try? FileManager.default.removeItem(atPath: directory)
    }

    func logText() -> String { (try? String(contentsOfFile: log, encoding: .utf8)) ?? "" }
}

/// posix_spawn with an empty signal mask, stdout and stderr appended to `output`.
func spawn(_ argv: [String], environment: [String: String], output: String) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
    posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_APPEND | O_CREAT, 0o644)
    posix_spawn_file_actions_adddup2(&actions, 1, 2)
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var none = sigset_t()
    sigemptyset(&none)
    posix_spawnattr_setsigmask(&attributes, &none)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK))
    let args = argv.map { strdup($0) } + [nil]
    let env = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer { (args + env).forEach { free($0) } }
    var pid: pid_t = 0
    let r = posix_spawn(&pid, argv[0], &actions, &attributes, args, env)
    guard r == 0 else { throw TestFailure("posix_spawn \(argv[0]): \(String(cString: strerror(r)))") }
    return pid
}

func run(_ exe: String, _ args: [String]) -> Ran {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: exe)
    p.arguments = args
    let out = Pipe(), err = Pipe()
    p.standardOutput = out
    p.standardError = err
    p.standardInput = FileHandle.nullDevice
    do { try p.run() } catch { return Ran(status: -1, stdout: "", stderr: "\(error)") }
    // Read both pipes to the end before waiting, so a full pipe cannot block the child.
    let o = out.fileHandleForReading.readDataToEndOfFile()
    let e = err.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    return Ran(status: p.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
}

func makeTemporaryDirectory() throws -> String {
    var template = Array("/tmp/bulkhead-daemon-test.XXXXXX".utf8CString)
    guard let p = mkdtemp(&template) else { throw TestFailure("mkdtemp failed") }
    return String(cString: p)
}

/// Polls `condition` until it holds (no sleeping to synchronise).
func eventually(_ seconds: Double, _ what: String, _ condition: () throws -> Bool) throws {
    let deadline = Date(timeIntervalSinceNow: seconds)
    while Date() < deadline {
        if try condition() { return }
        _ = poll(nil, 0, 10)
    }
    throw TestFailure("condition never held: \(what)")
}

/// The pids whose parent is `pid`, from /proc.
func childProcesses(of pid: Int32) -> [Int32] {
    guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
    return entries.compactMap { name -> Int32? in
        guard let child = Int32(name), let stat = try? String(contentsOfFile: "/proc/\(name)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        return fields.count > 1 && Int32(fields[1]) == pid ? child : nil
    }
}
