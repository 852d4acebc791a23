// Measures, through the real supervisor and the real sandbox:
//   cold:  submit → worker spawned, jailed, HELLO, first response (a new tenant each time)
//   exec:  posix_spawn + exit of the worker binary with no arguments (exec + runtime start)
//   bwrap: `bwrap --ro-bind / / --unshare-all true`, the anchor, timed in the same run
//   warm:  one more request on the now-running worker (socket round trip)
// and the resident set of a serving worker.
import EventLoop
import Glibc
import Log
import Posix
import Sandbox
import Supervisor
import Synchronization

enum WorkerStartBenchmark {
    static func main() {
        let n = CommandLine.arguments.dropFirst().compactMap { Int($0) }.first ?? 50
        var exe = [CChar](repeating: 0, count: 4096)
        let len = readlink("/proc/self/exe", &exe, exe.count - 1)
        let selfPath = String(decoding: exe[..<max(0, len)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let workerPath = String(selfPath[..<(selfPath.lastIndex(of: "/") ?? selfPath.endIndex)]) + "/bulkhead-worker"
        var template = Array("/tmp/bulkhead-bench.XXXXXX".utf8CString)
        let dir = String(cString: mkdtemp(&template)!)
        defer { _ = system("rm -rf \(dir)") }

        guard let loop = try? EventLoop() else { fatalError("event loop") }
        let useSpawner = !CommandLine.arguments.contains("--exec")
        let settings = SupervisorSettings(
            executable: workerPath, volumesRoot: dir + "/volumes", maxWorkersPerTenant: 1, idleTimeout: .seconds(600),
            limits: ResourceLimits(memoryBytes: 512 << 20, cpuSeconds: 600, processes: 64, openFiles: 256, fileSizeBytes: 1 << 30),
            useSpawner: useSpawner)
        guard let supervisor = try? Supervisor(loop: loop, settings: settings, log: .standardError(minimum: .warning)) else {
            fatalError("supervisor")
        }
        // Volumes are provisioned when a tenant is created, before its first request.
        for i in 0..<n {
            let t = TenantIdentity(id: "bench-\(i)", uid: 230_000 + UInt32(i), gid: 230_000 + UInt32(i))
            _ = try? Volumes.ensure(tenant: t, root: dir + "/volumes", prefix: "tenant", create: true)
        }
        var cold: [Double] = [], warm: [Double] = [], rss: [Int] = []
        var index = 0
        var phase = 0  // 0 cold, 1 warm
        var started: UInt64 = 0

        func next() {
            if index == n {
                supervisor.shutdown(deadline: .seconds(5)) { loop.stop() }
                return
            }
            let tenant = TenantIdentity(id: "bench-\(index)", uid: 230_000 + UInt32(index), gid: 230_000 + UInt32(index))
            started = loop.now
            supervisor.submit(tenant: tenant, task: "echo", body: Array("\"hello\"".utf8)) { result in
                let ms = Double(loop.now - started) / 1e6
                guard case .success = result else { fatalError("request failed: \(result)") }
                if phase == 0 {
                    cold.append(ms)
                    phase = 1
                } else {
                    warm.append(ms)
                    if let pid = supervisor.snapshot().first(where: { $0.tenant == tenant.id })?.workers.first?.pid {
                        rss.append(residentKiB(pid))
                    }
                    supervisor.stopTenant(tenant.id)
                    phase = 0
                    index += 1
                }
                loop.executeSoon(next)
            }
        }
        loop.executeSoon(next)
        try? loop.run()

        let exec = (0..<n).map { _ in timeCommand(workerPath, ["bulkhead-worker"]) }
        let bwrapPath = "/usr/bin/bwrap"
        let bwrap = (0..<n).map { _ in timeCommand(bwrapPath, ["bwrap", "--ro-bind", "/", "/", "--unshare-all", "true"]) }

        func line(_ name: String, _ xs: [Double]) {
            print(name.padding(48) + "p50 \(fmt(pct(xs, 50))) ms   p99 \(fmt(pct(xs, 99))) ms")
        }
        print("runs: \(n), workers \(useSpawner ? "forked by the spawner" : "exec'd with posix_spawn (--exec)")")
        line("cold start (spawn → jail → HELLO → response):", cold)
        line("warm request (socket round trip):", warm)
        line("exec of bulkhead-worker alone (exit at usage):", exec)
        line("bwrap --ro-bind / / --unshare-all true:", bwrap)
        print("ratio cold p50 / bwrap p50: \(fmt(pct(cold, 50) / pct(bwrap, 50)))")
        print("worker RSS while serving: p50 \(pct(rss.map(Double.init), 50) / 1024) MiB")
    }

    static func timeCommand(_ path: String, _ args: [String]) -> Double {
        guard let devNull = try? Posix.open("/dev/null", O_RDWR) else { return .nan }
        let t0 = Posix.monotonicNanoseconds()
        guard let child = try? ChildProcess.spawn(path: path, arguments: args, stdin: devNull, stdout: devNull,
                                                  stderr: devNull, fd3: devNull) else { return .nan }
        var p = pollfd(fd: child.pidfd.rawValue, events: Int16(POLLIN), revents: 0)
        _ = poll(&p, 1, 10_000)
        _ = try? child.reap()
        return Double(Posix.monotonicNanoseconds() - t0) / 1e6
    }

    static func residentKiB(_ pid: Int32) -> Int {
        guard let f = fopen("/proc/\(pid)/status", "r") else { return 0 }
        defer { fclose(f) }
        var buf = [CChar](repeating: 0, count: 256)
        while fgets(&buf, 256, f) != nil {
            let line = String(decoding: buf.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            if line.hasPrefix("VmRSS:") { return Int(line.split(separator: " ")[1]) ?? 0 }
        }
        return 0
    }

    static func pct(_ xs: [Double], _ p: Double) -> Double {
        let s = xs.sorted()
        guard !s.isEmpty else { return .nan }
        return s[min(s.count - 1, Int((p / 100 * Double(s.count - 1)).rounded()))]
    }

    static func fmt(_ x: Double) -> String {
        let v = (x * 100).rounded() / 100
        return String(v)
    }
}

extension String {
    func padding(_ width: Int) -> String { self + String(repeating: " ", count: max(1, width - count)) }
}
