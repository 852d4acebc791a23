// Running under systemd and being operated: sd_notify on a socket the test owns, socket
// activation through systemd-socket-activate, reloads under load (one with a broken file),
// drain, and a graceful stop with requests in flight.
import Foundation
import Glibc
import Synchronization
import Testing

/// A datagram socket standing in for systemd's notification socket.
final class NotifySocket: @unchecked Sendable {  // one test thread
    let path: String
    let fd: Int32
    private(set) var messages: [String] = []
    /// The datagram the last successful `await` found.
    private(set) var found = ""

    init(directory: String) throws {
        path = directory + "/notify.sock"
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var sa = sockaddr_un()
        sa.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &sa.sun_path) { raw in
            for (i, b) in path.utf8.enumerated() { raw[i] = b }
        }
        let r = withUnsafePointer(to: &sa) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) } }
        guard r == 0 else { throw TestFailure("bind \(path): \(String(cString: strerror(errno)))") }
        chmod(path, 0o666)
    }

    deinit { close(fd) }

    /// Waits (up to `seconds`) for a datagram containing `line` among its lines.
    func await(_ line: String, seconds: Double = 10) -> Bool {
        if take(line) { return true }
        let deadline = Date(timeIntervalSinceNow: seconds)
        var buffer = [UInt8](repeating: 0, count: 4096)
        while Date() < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, Int32(max(1, deadline.timeIntervalSinceNow * 1000))) == 1 else { continue }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { messages.append(String(decoding: buffer[..<n], as: UTF8.self)) }
            if take(line) { return true }
        }
        return false
    }

    /// Removes the messages up to and including the first with `line` (prefix match).
    private func take(_ line: String) -> Bool {
        guard let i = messages.firstIndex(where: { $0.split(separator: "\n").contains { $0.hasPrefix(line) } }) else { return false }
        found = messages[i]
        messages.removeFirst(i + 1)
        return true
    }
}

/// Workers busy now, from `bulkheadctl --json status`.
func busyWorkers(_ d: Daemon) -> Int {
    let pools = jsonObject(d.ctl("--json", "status").stdout)["pools"] as? [[String: Any]] ?? []
    return pools.reduce(0) { $0 + ($1["busy"] as? Int ?? 0) }
}

@Suite(.serialized) struct OperationsTests {
    @Test func sdNotifyReadyStatusWatchdogReloadingStopping() throws {
        let d = try Daemon()
        defer { d.cleanUp() }
        let notify = try NotifySocket(directory: d.directory)
        try d.start(environment: ["NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "200000"])
        #expect(notify.await("READY=1"))
        #expect(notify.found.contains("STATUS=serving"))
        #expect(notify.await("WATCHDOG=1"))
        #expect(notify.await("WATCHDOG=1"))  // again: the loops keep turning
        d.signal(SIGHUP)
        #expect(notify.await("RELOADING=1"))
        #expect(notify.await("READY=1"))
        #expect(d.ctl("status").stdout.contains("config_generation: 2"))
        d.signal(SIGTERM)
        #expect(notify.await("STOPPING=1"))
        #expect(d.stop() == 0)
    }

    @Test func socketActivationServesThroughTheInheritedSocket() throws {
        let d = try Daemon()
        defer { d.cleanUp() }
        let activated = freePort()
        let first = try d.start(wrapper: ["/usr/bin/systemd-socket-activate", "-l", "127.0.0.1:\(activated)", "--fdname=http"],
                                activate: activated)
        let c = try #require(first)
        c.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(c.response()?.status == 200)
        // The configured address is not bound: the inherited socket replaces it.
        #expect((try? d.connect()) == nil)
        #expect(d.logText().contains("systemd sockets http (fd 3)"))
        // Both loops accept from it.
        for _ in 0..<20 {
            let again = try RawConnection(port: activated)
            again.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
            #expect(again.response()?.status == 200)
        }
    }

    @Test func fiveReloadsUnderLoadFailNothing() throws {
        let d = try Daemon()
        defer { d.cleanUp() }
        try d.rewriteConfig(extra: "[ratelimit]\nrate = 50000/hour\nburst = 100000\n")
        try d.start()
        let key = try d.tenant("acme")
        // Two clients send requests without pause while the configuration changes.
        let stop = Atomic<Bool>(false)
        let counts = Mutex<[Int: Int]>([:])
        let port = d.port
        let threads = (0..<2).map { _ in
            Thread {
                var c = try? RawConnection(port: port)
                while !stop.load(ordering: .relaxed) {
                    c?.send(request(key: key, body: echo("1")))
                    let reply = c?.response(seconds: 10)
                    let status = reply?.status ?? 0
                    counts.withLock { $0[status, default: 0] += 1 }
                    if status != 200 { print("reload test: \(status) \(reply?.text ?? "no answer")") }  // shown when the test fails
                    if status != 200 { c = try? RawConnection(port: port) }
                }
                counts.withLock { $0[-1, default: 0] += 1 }  // this thread is done
            }
        }
        threads.forEach { $0.start() }
        try eventually(10, "requests flow") { counts.withLock { $0[200, default: 0] } > 20 }

        let rates = ["100000/hour", "200000/hour", "300000/hour", "400000/hour"]
        for (i, rate) in rates.enumerated() {
            try d.rewriteConfig(extra: """
                [ratelimit]
                rate = \(rate)
                burst = 100000
                [workers]
                request_timeout = \(20 + i)s
                [sandbox]
                max_open_files = \(300 + i)
                [cors]
                allowed_origins = https://app\(i).example
                [log]
                level = \(i % 2 == 0 ? "debug" : "info")
                """)
            let before = counts.withLock { $0[200, default: 0] }
            let r = i % 2 == 0 ? d.ctl("reload") : { d.signal(SIGHUP); return Ran(status: 0, stdout: "", stderr: "") }()
            #expect(r.status == 0, "\(r.stderr)")
            try eventually(10, "generation \(i + 2)") { d.ctl("status").stdout.contains("config_generation: \(i + 2)") }
            // The new limits are in force, and traffic goes on.
            #expect(d.ctl("limits", "show", "acme").stdout.contains("default  \(rate)"))
            let served = try d.call(key: key, body: echo("1"))  // what admission now applies
            #expect(served.header("RateLimit-Policy") == "\"default\";q=\(rate.prefix { $0 != "/" });w=3600")
            let cors = try d.call("GET", "/healthz", key: nil, headers: ["Origin: https://app\(i).example"])
            #expect(cors.header("Access-Control-Allow-Origin") == "https://app\(i).example")
            try eventually(10, "requests go on after reload \(i + 1)") { counts.withLock { $0[200, default: 0] } > before + 20 }

            if i == 1 {
                // A broken file: refused with its line, the running configuration kept.
                try d.rewriteConfig(extra: "[ratelimit]\nrate = lots\n")
                let bad = d.ctl("reload")
                #expect(bad.status != 0)
                #expect(bad.stderr.contains("test.conf:") && bad.stderr.contains("rate"), "\(bad.stderr)")
                #expect(d.ctl("status").stdout.contains("config_generation: 3"))
                #expect(d.ctl("limits", "show", "acme").stdout.contains("default  \(rate)"))
                #expect(d.logText().contains("reload_refused"))
            }
        }
        // The workers of the old configurations (other rlimits) were replaced as they finished.
        let metrics = try d.call("GET", "/metrics", key: nil).text
        let recycled = metrics.split(separator: "\n").first { $0.hasPrefix("bulkhead_worker_recycled_total ") }
        #expect((recycled?.split(separator: " ").last.flatMap { Double($0) } ?? 0) >= 1, "\(recycled ?? "none")")
        // A key that needs a restart is named, and its running value kept.
        try d.rewriteConfig(extra: "[server]\nevent_loops = 1\n[ratelimit]\nrate = 400000/hour\nburst = 100000\n")
        let restart = d.ctl("reload")
        #expect(restart.status == 0 && restart.stdout.contains("[server] event_loops"))

        stop.store(true, ordering: .relaxed)
        try eventually(20, "the clients stop") { counts.withLock { $0[-1, default: 0] } == 2 }
        let final = counts.withLock { $0 }
        print("five reloads under load: \(final.filter { $0.key >= 0 }.sorted { $0.key < $1.key })")
        #expect(final.keys.filter { $0 >= 0 } == [200], "\(final)")
    }

    @Test func drainThenAGracefulStopWithAHundredRequestsInFlight() throws {
        let d = try Daemon(extra: "[workers]\nmax_per_tenant = 4\nqueue_size = 200", hostile: true)
        defer { d.cleanUp() }
        try d.start()
        let key = try d.tenant("acme")
        // Drain: what is in flight is answered, nothing new is taken, /readyz says so.
        let slow = try d.connect()
        slow.send(request(key: key, body: #"{"task":"sleep_ms","data":300}"#))
        let idle = try d.connect()
        idle.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(idle.response()?.status == 200)
        try eventually(10, "the slow request is in a worker") { busyWorkers(d) > 0 }
        #expect(d.ctl("drain").status == 0)
        let answered = slow.response()
        #expect(answered?.status == 200 && answered?.header("Connection") == "close")
        #expect(idle.closedByServer())
        #expect((try? d.connect()) == nil)
        #expect(d.ctl("status").stdout.contains("draining: true"))
        #expect(d.stop() == 0)

        // SIGTERM with 100 requests in flight: every one is answered, then the daemon exits 0.
        try d.start()
        let connections = try (0..<100).map { _ in try d.connect() }
        for c in connections { c.send(request(key: key, body: #"{"task":"sleep_ms","data":100}"#)) }
        try eventually(10, "requests in flight") { busyWorkers(d) > 0 }
        let began = Date()
        d.signal(SIGTERM)
        let statuses = connections.map { $0.response(seconds: 30)?.status ?? 0 }
        #expect(d.stop() == 0)
        let seconds = Date().timeIntervalSince(began)
        print("SIGTERM to exit with 100 requests in flight: \(String(format: "%.2f", seconds)) s, statuses \(Dictionary(grouping: statuses, by: { $0 }).mapValues(\.count))")
        #expect(statuses.allSatisfy { $0 == 200 })
    }

    @Test func workersListAndKill() throws {
        let d = try Daemon(hostile: true)
        defer { d.cleanUp() }
        try d.start()
        let key = try d.tenant("acme")
        let slow = try d.connect()
        slow.send(request(key: key, body: #"{"task":"sleep_ms","data":5000}"#))
        try eventually(10, "a busy worker") { busyWorkers(d) > 0 }
        let listed = jsonObject(d.ctl("--json", "workers", "list").stdout)["workers"] as? [[String: Any]] ?? []
        let busy = try #require(listed.first { $0["state"] as? String == "busy" })
        #expect(busy["tenant"] as? String == "acme")
        #expect((busy["rss_kib"] as? Int ?? 0) > 0)
        #expect((busy["request_age_s"] as? Double ?? -1) >= 0)
        #expect(d.ctl("workers", "list").stdout.hasPrefix("PID "))
        #expect(d.ctl("status").stdout.contains("acme"))
        let pid = try #require(busy["pid"] as? Int)
        #expect(d.ctl("workers", "kill", String(pid)).stdout.contains("Killed 1 worker"))
        #expect(slow.response()?.status == 502)
        #expect(d.ctl("workers", "kill", "nobody").status == 1)
        #expect(d.ctl("workers", "kill", "../etc").status == 1)
        // The tenant is served again, by a new worker; killing by tenant takes them all.
        #expect(try d.call(key: key, body: echo("1")).status == 200)
        #expect(d.ctl("workers", "kill", "acme").status == 0)
        #expect(try d.call(key: key, body: echo("1")).status == 200)
    }
}
