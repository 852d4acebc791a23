// How the daemon looks after running workers: a worker's CPU time counts all its threads
// while it runs.
import Foundation
import Glibc
import Testing

@Suite(.serialized) struct WorkerUpkeepTests {
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
