// How the daemon looks after running workers: a noisy tenant's stderr is read within its
// budget (the worker waits, not the daemon); a worker's CPU time counts all its threads
// while it runs.
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
