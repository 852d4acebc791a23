// A private redis-server for one test: on a Unix socket in its own directory, no
// persistence, stopped (and its directory removed) by the test.
import Foundation
import Glibc

final class RedisServer: @unchecked Sendable {  // used from one test at a time
    let directory: String
    var socket: String { directory + "/redis.sock" }
    let password: String?
    /// Also listen on 127.0.0.1 at this port (0: the Unix socket only).
    let port: UInt16
    private var process: Process?

    init(password: String? = nil, tcp: Bool = false) throws {
        directory = try makeTemporaryDirectory()
        chmod(directory, 0o755)
        self.password = password
        port = tcp ? freePort() : 0
    }

    var pid: Int32 { process?.processIdentifier ?? 0 }

    func start() throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/redis-server")
        p.arguments = ["--port", String(port), "--bind", "127.0.0.1", "--unixsocket", socket, "--unixsocketperm", "700", "--save", "", "--appendonly", "no",
                       "--dir", directory] + (password.map { ["--requirepass", $0] } ?? [])
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        try p.run()
        process = p
        try eventually(10, "redis-server answers PING") { cli("PING") == "PONG" }
    }

    func stop() {
        guard let p = process else { return }
        // SIGKILL: the test process blocks most signals, and a child spawned by Foundation
        // inherits that mask, so redis-server would never see a SIGTERM. Nothing is
        // persisted, so nothing is lost.
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        process = nil
        unlink(socket)
    }

    /// SIGSTOP: the socket stays open but nothing answers.
    func pause() { kill(pid, SIGSTOP) }
    func resume() { kill(pid, SIGCONT) }

    /// One redis-cli command; its output without the final newline.
    @discardableResult
    func cli(_ args: String...) -> String {
        let auth = password.map { ["-a", $0, "--no-auth-warning"] } ?? []
        let r = run("/usr/bin/redis-cli", ["-s", socket] + auth + args)
        var out = r.stdout
        while out.hasSuffix("\n") { out.removeLast() }
        return out
    }

    func cleanUp() {
        stop()
        try? FileManager.default.removeItem(atPath: directory)
    }
}
