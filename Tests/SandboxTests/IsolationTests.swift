// What the kernel actually enforces on a worker, read from /proc, and what a hostile
// worker can and cannot do from inside its jail.
import Foundation
import Posix
import Supervisor
import Testing
import Wire

/// All tests that spawn workers run one after another, so /proc checks of this process
/// (zombies, descriptors) see only their own children.
@Suite(.serialized) struct WorkerTests {
    static let tenantA = TenantIdentity(id: "tenant-a", uid: 210_001, gid: 210_001)
    static let tenantB = TenantIdentity(id: "tenant-b", uid: 210_002, gid: 210_002)

    /// Both ways a worker is started: forked by the spawner, or exec'd with posix_spawn.
    @Test(arguments: [true, false]) func workerRunsConfinedAsItsTenant(spawner: Bool) throws {
        let h = try Harness { $0.useSpawner = spawner }
        defer { try? h.shutdown() }
        let pid = try #require(Int32(try h.body(Self.tenantA, "pid")))
        let status = procStatus(pid)
        #expect(status["Uid"]?.split(separator: "\t").map(String.init) == ["210001", "210001", "210001", "210001"])
        #expect(status["Gid"]?.split(separator: "\t").map(String.init) == ["210001", "210001", "210001", "210001"])
        #expect(status["Groups"] == "")
        #expect(status["Seccomp"] == "2")
        #expect(status["NoNewPrivs"] == "1")
        #expect(status["CapEff"] == "0000000000000000")
        #expect(status["CapPrm"] == "0000000000000000")
        let root = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/root")
        #expect(root == h.volumes + "/tenant-tenant-a-data")
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/cwd") == root)
        // stdin, stdout (/dev/null), stderr (a pipe to the supervisor) and its socket: nothing else.
        #expect(Posix.openDescriptors(pid: pid) == [0, 1, 2, 3])
        let fd3 = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/3")
        #expect(fd3.hasPrefix("socket:"))
        #expect(try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/0") == "/dev/null")
        // Its own session, no controlling terminal, an empty environment.
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        let fields = stat[stat.index(stat.lastIndex(of: ")")!, offsetBy: 2)...].split(separator: " ")
        #expect(fields[3] == Substring(String(pid)))  // session id == pid
        #expect(fields[4] == "0")  // tty_nr
        #expect(try Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/environ")).isEmpty)
        let limits = try String(contentsOfFile: "/proc/\(pid)/limits", encoding: .utf8)
        #expect(limits.contains("Max address space         268435456            268435456"))
        #expect(limits.contains("Max file size             1048576              1048576"))
        #expect(limits.contains("Max core file size        0                    0"))
        // The volume: the tenant's, 0700.
        let attrs = try FileManager.default.attributesOfItem(atPath: root)
        #expect((attrs[.ownerAccountID] as? NSNumber)?.uint32Value == 210_001)
        #expect((attrs[.posixPermissions] as? NSNumber)?.intValue == 0o700)
    }

    @Test func hostileWorkerCannotEscape() throws {
        let h = try Harness()
        defer { try? h.shutdown() }
        // Tenant B has a secret in its volume.
        _ = try h.body(Self.tenantB, "write_file", "/secret.txt 6")
        let secret = h.volumes + "/tenant-tenant-b-data/secret.txt"
        #expect(FileManager.default.fileExists(atPath: secret))
        let bPid = try #require(try h.pids("tenant-b").first)

        func result(_ task: String, _ body: String = "") throws -> Int? {
            let text = try h.body(Self.tenantA, task, body)
            let obj = try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any]
            return obj?["result"] as? Int
        }
        // Files outside the volume do not exist in the jail.
        #expect(try result("open", secret) == -Int(ENOENT))
        #expect(try result("open", "/etc/shadow") == -Int(ENOENT))
        #expect(try result("open", "/../../etc/passwd") == -Int(ENOENT))
        #expect(try result("open", "/proc/self/status") == -Int(ENOENT))
        // Signals to other processes fail; the targets live on.
        #expect(try result("kill", String(bPid)) == -Int(EPERM))
        #expect(try result("kill", String(getpid())) == -Int(EPERM))
        #expect(processExists(bPid))
        // Raising a limit, an unlisted call, clone3: refused with an errno, worker alive.
        #expect(try result("raise_limit") == -Int(ENOSYS))
        #expect(try result("unlisted_syscall") == -Int(ENOSYS))
        #expect(try result("clone3") == -Int(ENOSYS))
        #expect(try result("personality_query") != nil)
        #expect(try result("socket_unix")! >= 0)
        // A fork bomb stops at its first fork.
        let bomb = try h.body(Self.tenantA, "fork_bomb")
        #expect(bomb == "{\"forked\":0,\"errno\":\(EPERM)}")
        // Memory: malloc fails at the address-space limit (256 MiB) and the worker survives.
        let alloc = try h.body(Self.tenantA, "allocate", "4096")
        let mib = try #require(Int(alloc.split(separator: ":")[1].dropLast()))
        #expect(mib > 16 && mib < 256)
        #expect(try h.body(Self.tenantA, "echo", "still alive") == "still alive")

        // Each of these kills the worker (seccomp or a limit); the kernel's signal is logged.
        let fatal: [(String, String, Int32)] = [
            ("socket_inet", "", SIGSYS), ("ptrace", String(bPid), SIGSYS), ("mount", "", SIGSYS),
            ("setuid0", "", SIGSYS), ("chroot", "", SIGSYS), ("unshare", "", SIGSYS), ("execve", "", SIGSYS),
            ("personality", "", SIGSYS), ("x32_getpid", "", SIGSYS), ("tiocsti", "", SIGSYS),
            ("tiocsti_high_bits", "", SIGSYS), ("write_file", "/big 2097152", SIGXFSZ),
        ]
        for (task, body, signal) in fatal {
            let before = h.logLines(containing: "worker_crashed").count
            let outcome = try h.request(Self.tenantA, task, body)
            guard case .failure(.crashed) = outcome else {
                Issue.record("\(task) was not fatal: \(outcome)")
                continue
            }
            try eventually(10, "\(task) exit logged") { h.logLines(containing: "worker_crashed").count > before }
            let line = h.logLines(containing: "worker_crashed").last ?? ""
            #expect(line.contains("killed by signal \(signal)"), "\(task): \(line)")
            // The tenant's next request and the other tenant's still work.
            #expect(try h.body(Self.tenantA, "echo", "after \(task)") == "after \(task)")
            #expect(try h.body(Self.tenantB, "echo", "b") == "b")
        }
        #expect(processExists(bPid))
        #expect(try String(contentsOfFile: secret, encoding: .utf8) == "AAAAAA")
    }

    @Test func crashedWorkerIsReplaced() throws {
        let h = try Harness()
        let first = try #require(Int32(try h.body(Self.tenantA, "pid")))
        guard case .failure(.crashed) = try h.request(Self.tenantA, "crash") else {
            Issue.record("crash did not report .crashed")
            return
        }
        let second = try #require(Int32(try h.body(Self.tenantA, "pid")))
        #expect(first != second)
        try eventually(10, "crashed worker reaped") { !processExists(first) }
        #expect(try h.counters().crashed == 1)
        try h.shutdown()
    }

    @Test func crashLoopBacksOff() throws {
        let h = try Harness { $0.restartBackoffBase = .milliseconds(300); $0.restartBackoffMax = .seconds(10) }
        defer { try? h.shutdown() }
        // The first crash is replaced at once.
        guard case .failure(.crashed) = try h.request(Self.tenantA, "crash") else { throw HarnessError("not crashed") }
        // The request fails when the socket closes; the crash counts when the exit is reaped.
        try eventually(10, "first crash recorded") { try h.counters().crashed == 1 }
        #expect(try h.snapshot("tenant-a")?.throttledUntil ?? 0 == 0)
        #expect(try h.body(Self.tenantA, "echo", "x") == "x")  // a success resets the count
        // Consecutive crashes throttle restarts, for longer each time.
        var delays: [UInt64] = []
        for _ in 0..<3 {
            // Wait out the current throttle: poll until a worker can be had.
            try eventually(15, "throttle over") {
                guard let s = try h.snapshot("tenant-a") else { return true }
                return s.throttledUntil == 0
            }
            guard case .failure(.crashed) = try h.request(Self.tenantA, "crash") else { throw HarnessError("not crashed") }
            try eventually(10, "crash recorded") { (try h.snapshot("tenant-a")?.workers.isEmpty) ?? true }
            let snap = try #require(try h.snapshot("tenant-a"))
            if snap.throttledUntil > 0 { delays.append(snap.throttledUntil - h.loop.now) }
        }
        #expect(delays.count == 2)  // failures 2 and 3 are throttled (1 was reset by the success)
        if delays.count == 2 { #expect(delays[1] > delays[0]) }
        // While throttled with no live worker, a request is refused at once with a retry hint.
        let outcome = try h.request(Self.tenantA, "echo", "y")
        if case .failure(.unavailable(let retry, _)) = outcome { #expect(retry >= 1) } else {
            Issue.record("expected .unavailable while throttled, got \(outcome)")
        }
        #expect(!h.logLines(containing: "worker_restart_throttled").isEmpty)
        // Another tenant is unaffected.
        #expect(try h.body(Self.tenantB, "echo", "b") == "b")
    }

    @Test func idleWorkerIsReaped() throws {
        let h = try Harness { $0.idleTimeout = .milliseconds(200) }
        let pid = try #require(Int32(try h.body(Self.tenantA, "pid")))
        try eventually(10, "idle worker exits") { !processExists(pid) }
        try eventually(10, "pool empty") { try h.snapshot("tenant-a") == nil }
        #expect(try h.counters().reapedIdle == 1)
        #expect(try h.counters().crashed == 0)
        #expect(try h.body(Self.tenantA, "echo", "again") == "again")
        try h.shutdown()
    }

    @Test func hungWorkerIsKilledAtTheTimeout() throws {
        let h = try Harness { $0.requestTimeout = .milliseconds(300) }
        let pid = try #require(Int32(try h.body(Self.tenantA, "pid")))
        #expect(try h.request(Self.tenantA, "hang") == .failure(.timedOut))
        try eventually(10, "hung worker killed") { !processExists(pid) }
        #expect(try h.body(Self.tenantA, "echo", "fresh") == "fresh")
        #expect(try h.counters().killedForTimeout == 1)
        #expect(try h.counters().crashed == 0)
        try h.shutdown()
    }

    @Test func recyclingLosesNoRequest() throws {
        let h = try Harness { $0.maxRequestsPerWorker = 3; $0.maxWorkersPerTenant = 2; $0.queueLimit = 64 }
        // 40 requests at once through a pool of two that recycles every third request.
        let boxes = try (0..<40).map { try h.submit(Self.tenantA, "echo", "r\($0)") }
        for (i, box) in boxes.enumerated() {
            guard case .success(let r) = try box.wait(seconds: 60).get() else { throw HarnessError("request \(i) failed") }
            #expect(String(decoding: r.body, as: UTF8.self) == "r\(i)")
        }
        let c = try h.counters()
        #expect(c.recycled >= 12)
        #expect(c.crashed == 0)
        try h.shutdown()
    }

    @Test func fullPoolAndQueueAnswerOverloaded() throws {
        let h = try Harness { $0.maxWorkersPerTenant = 1; $0.queueLimit = 1; $0.requestTimeout = .seconds(5); $0.pipelineDepth = 1 }
        defer { try? h.shutdown() }
        let (running, ticket) = try h.submitWithTicket(Self.tenantA, "spin_until_cancelled")
        try eventually(10, "worker busy") { try h.snapshot("tenant-a")?.workers.first?.state == "busy" }
        let queued = try h.submit(Self.tenantA, "echo", "queued")
        #expect(try h.request(Self.tenantA, "echo", "third") == .failure(.overloaded(retryAfterSeconds: 1)))
        // Cancelling the running request frees the worker for the queued one.
        try h.withSupervisor { s in s.cancel(ticket) }
        #expect(try running.wait(seconds: 10).get() == .failure(.cancelled))
        guard case .success(let r) = try queued.wait(seconds: 10).get() else { throw HarnessError("queued failed") }
        #expect(String(decoding: r.body, as: UTF8.self) == "queued")
    }

    @Test func jailFailureIsLoggedAndNeverServes() throws {
        let h = try Harness()
        defer { try? h.shutdown() }
        // uid 0 is refused by the jail: the worker exits before it says HELLO.
        let root = TenantIdentity(id: "tenant-root", uid: 0, gid: 0)
        let outcome = try h.request(root, "echo", "x")
        guard case .failure(let f) = outcome, case .unavailable = f else {
            Issue.record("expected .unavailable, got \(outcome)")
            return
        }
        try eventually(10, "failure logged: \(h.logs.all)") { !h.logLines(containing: "worker_start_failed").isEmpty }
        let line = h.logLines(containing: "worker_start_failed")[0]
        #expect(line.contains("sandbox step setresuid failed: refusing to run a tenant as root"))
        #expect(line.contains("exited with status 3"))
    }

    @Test func aDeadSpawnerIsReplacedAndNoRequestFails() throws {
        let h = try Harness()
        defer { try? h.shutdown() }
        #expect(try h.body(Self.tenantA, "echo", "1") == "1")
        let spawner = try #require(h.logLines(containing: "spawner_started").first.flatMap { line in
            line.split(separator: ",").first { $0.hasPrefix("\"pid\":") }.flatMap { Int32($0.dropFirst(6)) }
        })
        kill(spawner, SIGKILL)
        try eventually(10, "spawner exit noticed") { !h.logLines(containing: "spawner_exited").isEmpty }
        // Tenant B's first worker comes from a fresh spawner (or exec while none is up).
        #expect(try h.body(Self.tenantB, "echo", "2") == "2")
        #expect(try h.body(Self.tenantA, "echo", "3") == "3")
        #expect(processExists(spawner) == false)
    }

    @Test func policyFileWidensButCannotUnkill() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // fchown is not in the default policy (ENOSYS); the file allows it.
        try "# operator's extension\nallow fchown\n".write(toFile: dir + "/ok.policy", atomically: true, encoding: .utf8)
        try "allow ptrace\n".write(toFile: dir + "/bad.policy", atomically: true, encoding: .utf8)
        let h = try Harness { $0.seccompPolicyFile = dir + "/ok.policy" }
        defer { try? h.shutdown() }
        let r = try h.body(Self.tenantA, "unlisted_syscall")
        #expect(r != "{\"result\":-\(ENOSYS)}")
        let bad = try Harness { $0.seccompPolicyFile = dir + "/bad.policy" }
        defer { try? bad.shutdown() }
        guard case .failure(.unavailable) = try bad.request(Self.tenantA, "echo") else {
            Issue.record("a worker started with a bad policy file")
            return
        }
        #expect(bad.logs.all.contains { $0.contains("ptrace is fixed by the default policy and cannot be changed") })
    }

    /// In a fresh process of its own (an exit test), so that no other test's pipes,
    /// sockets or children are counted: after crashes, a timeout, recycling and idle reaping,
    /// shutdown leaves no zombie and not one pipe, socket or pidfd behind.
    @Test func noZombieAndNoDescriptorLeftBehind() async {
        await #expect(processExitsWith: .success) {
            let before = kernelObjects()
            do {
                let h = try Harness {
                    $0.idleTimeout = .milliseconds(300)
                    $0.requestTimeout = .milliseconds(500)
                    $0.maxRequestsPerWorker = 3
                }
                let a = TenantIdentity(id: "tenant-a", uid: 210_001, gid: 210_001)
                guard case .failure(.crashed) = try h.request(a, "crash") else { exit(10) }
                guard case .failure(.timedOut) = try h.request(a, "hang") else { exit(11) }
                for i in 0..<10 { guard try h.body(a, "echo", "\(i)") == "\(i)" else { exit(12) } }
                try eventually(10, "idle workers reaped") { try h.snapshot("tenant-a") == nil }
                _ = try h.body(a, "echo", "again")
                try h.shutdown()
            } catch {
                exit(13)
            }
            try? eventually(5, "reaped") { zombieChildren().isEmpty }
            exit(zombieChildren().isEmpty && leaked(before: before, after: kernelObjects()).isEmpty ? 0 : 1)
        }
    }

    @Test func invalidTenantIdsAreRefused() throws {
        let h = try Harness()
        defer { try? h.shutdown() }
        for id in ["../x", "a/b", "Upper", "", String(repeating: "a", count: 64), "é", "-lead"] {
            #expect(try h.request(TenantIdentity(id: id, uid: 210_009, gid: 210_009), "echo") == .failure(.invalidTenant))
        }
        #expect(!FileManager.default.fileExists(atPath: h.volumes))
    }
}
