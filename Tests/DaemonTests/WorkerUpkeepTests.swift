// How the daemon looks after running workers: a noisy tenant's stderr is read within its
// budget (the worker waits, not the daemon); a reload replaces workers only when what they
// were started with changes; a worker's CPU time counts all its threads while it runs.
import Foundation
import Glibc
import Testing

@Suite(.serialized) struct WorkerUpkeepTests {
    @Test func aNoisyTenantsStderrIsReadWithinItsBudget() throws {
        let d = try Daemon(hostile: true)
        defer { d.cleanUp() }
        try d.start()
        let noisy = try d.tenant("noisy"), calm = try d.tenant("calm")
        #expect(try d.call(key: calm, body: echo("1")).status == 200)
        #expect(try d.call(key: noisy, body: echo("1")).status == 200)
        let seconds = 3
        let flood = try d.connect()
        flood.send(request(key: noisy, body: #"{"task":"stderr_firehose","data":\#(seconds * 1000)}"#))
        try eventually(10, "the flood is on") { d.logText().contains("worker_stderr") }
        // Another tenant is served meanwhile.
        for i in 0..<5 { #expect(try d.call(key: calm, body: echo(String(i))).json["result"] as? Int == i) }
        let r = try #require(flood.response())
        let taken = try #require((r.json["result"] as? [String: Any])?["bytes"] as? Int)
        // What the pipe took is what the daemon read (at most 256 KiB at once and 64 KiB a
        // second) plus the pipe's own 64 KiB, and a piece of margin for the last write;
        // without a budget it would be gigabytes.
        let bound = (256 + 64 * seconds + 64 + 64) * 1024
        print("stderr taken in \(seconds) s: \(taken) bytes (bound \(bound))")
        #expect(taken <= bound)
        try eventually(10, "what was over the budget is reported") { d.logText().contains("worker_stderr_suppressed") }
    }

    @Test func aReloadReplacesWorkersOnlyWhenWhatTheyRunWithChanges() throws {
        let d = try Daemon(hostile: true)
        defer { d.cleanUp() }
        try d.start()
        let key = try d.tenant("acme")
        func workerPID() throws -> Int? { try d.call(key: key, body: #"{"task":"pid"}"#).json["result"] as? Int }
        func recycled() throws -> Double {
            let line = try d.call("GET", "/metrics", key: nil).text.split(separator: "\n")
                .first { $0.hasPrefix("bulkhead_worker_recycled_total ") }
            return line?.split(separator: " ").last.flatMap { Double($0) } ?? -1
        }
        let pid = try #require(try workerPID())

        // CORS, log level, request_timeout: nothing a running worker was started with.
        try d.rewriteConfig(extra: "[cors]\nallowed_origins = https://app.example\n[log]\nlevel = debug\n[workers]\nrequest_timeout = 25s\n")
        #expect(d.ctl("reload").status == 0)
        try eventually(10, "generation 2") { d.ctl("status").stdout.contains("config_generation: 2") }
        #expect(try workerPID() == pid)
        #expect(try recycled() == 0)

        // An rlimit of workers: they are replaced (the idle one at once).
        try d.rewriteConfig(extra: "[workers]\nrequest_timeout = 25s\n[sandbox]\nmax_open_files = 300\n")
        #expect(d.ctl("reload").status == 0)
        try eventually(10, "generation 3") { d.ctl("status").stdout.contains("config_generation: 3") }
        let replaced = try #require(try workerPID())
        #expect(replaced != pid)
        #expect(try recycled() >= 1)
        let limits = try String(contentsOfFile: "/proc/\(replaced)/limits", encoding: .utf8)
        #expect(limits.contains("Max open files            300                  300"))
    }

    @Test func computeCountsEveryThreadOfAWorkerWhileItRuns() throws {
        let d = try Daemon(hostile: true)
        defer { d.cleanUp() }
        try d.start()
        let key = try d.tenant("acme")
        let pid = try #require(try d.call(key: key, body: #"{"task":"pid"}"#).json["result"] as? Int)
        // 600 ms of CPU on a second thread, while the main one waits for it.
        #expect(try d.call(key: key, body: #"{"task":"burn_thread_ms","data":600}"#).status == 200)
        func metered() -> Double { jsonObject(d.ctl("--json", "limits", "show", "acme").stdout)["compute_seconds_today"] as? Double ?? 0 }
        try eventually(10, "the thread's CPU time is metered") { metered() >= 0.55 }
        // ... while the worker still runs (not from its rusage at exit), and `workers list` shows it.
        let row = try #require(workerList(d).first { $0["pid"] as? Int == pid })
        #expect((row["cpu_s"] as? Double ?? 0) >= 0.55)
        print("burn_thread_ms 600: metered \(metered()) s, workers list \(row["cpu_s"] ?? "none") s")
    }
}
