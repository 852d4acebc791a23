// A Redis password in the configuration never leaves it: a reload refused for a bad
// `redis_url` shows the URL with its password masked in bulkheadctl's answer, the log and
// the audit log, and so does `bulkheadd --check-config`.
import Foundation
import Testing

@Suite(.serialized) struct SecretLeakTests {
    static let password = "hunter2-Secret"

    @Test func aRefusedReloadShowsNoRedisPassword() throws {
        let d = try Daemon()
        defer { d.cleanUp() }
        try d.start()
        try d.rewriteConfig(extra: "[ratelimit]\nredis_url = redis://:\(Self.password)@ca che:6379/0")
        let reload = d.ctl("reload")
        #expect(reload.status == 1)
        #expect(reload.stderr.contains("invalid Redis URL \"redis://:***@ca che:6379/0\""), "\(reload.stderr)")
        let json = d.ctl("--json", "reload")
        let audit = d.ctl("--json", "audit")
        #expect(audit.status == 0 && audit.stdout.contains("reload"))
        let check = run(buildDirectory + "/bulkheadd", ["--check-config", d.config])
        #expect(check.status != 0 && (check.stdout + check.stderr).contains("***"))
        try eventually(10, "the refusals are logged") { d.logText().components(separatedBy: "reload_refused").count == 3 }
        for (place, text) in [("bulkheadctl", reload.stdout + reload.stderr + json.stdout + json.stderr), ("log", d.logText()),
                              ("audit", audit.stdout), ("--check-config", check.stdout + check.stderr)] {
            #expect(!text.contains(Self.password), "the password shows in \(place)")
            #expect(!text.contains("hunter2"), "part of the password shows in \(place)")
        }
    }
}
