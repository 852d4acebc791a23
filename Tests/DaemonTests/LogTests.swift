// The daemon's log: one JSON object per line, never a token or the signing secret, and a
// tenant whose workers flood stderr is cut to a budget without costing anyone else.
import Foundation
import Testing

@Suite(.serialized) struct LogTests {
    @Test func everyLineIsJSONAndNoTokenOrSecretIsLogged() throws {
        let d = try Daemon(extra: "[log]\nlevel = debug")
        defer { d.cleanUp() }
        try d.start()
        let key = try d.tenant("acme")
        let parts = key.split(separator: ".").map(String.init)
        // Authentication failures of every kind, with this token and pieces of it.
        let tampered = parts[0] + "." + parts[1] + "." + String(parts[2].reversed())
        for bearer in [tampered, parts[0] + "." + parts[1], key + "x", "not-a-token-" + parts[2], parts[1]] {
            let r = try d.call(key: bearer, body: echo("1"))
            #expect(r.status == 401)
        }
        #expect(try d.call(key: key, body: echo("1")).status == 200)
        let jti = try #require(jsonObject(d.ctl("--json", "key", "list", "acme").stdout)["keys"] as? [[String: Any]])[0]["jti"] as? String
        #expect(d.ctl("key", "revoke", jti!).status == 0)
        #expect(try d.call(key: key, body: echo("1")).status == 401)
        #expect(d.stop() == 0)

        // The generated secret is raw bytes: look for them, and for their hex and base64 forms.
        let secret = try Data(contentsOf: URL(fileURLWithPath: d.state + "/jwt.key"))
        let log = d.logText()
        #expect(log.utf8.firstRange(of: secret) == nil)
        let hex = secret.map { String(format: "%02x", $0) }.joined()
        let base64 = secret.base64EncodedString().trimmingCharacters(in: CharacterSet(charactersIn: "="))
        let base64url = base64.replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
        for part in parts + [hex, base64, base64url] {
            #expect(!log.contains(part), "the log contains a piece of a token or the secret")
        }
        var requests: [[String: Any]] = []
        for line in log.split(separator: "\n") {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object?["time"] is String && object?["level"] is String, "\(line)")
            if object?["event"] as? String == "request", let object { requests.append(object) }
        }
        // The access log: one record per request (written in batches, all there after the stop).
        #expect(requests.count == 7)
        #expect(requests.filter { $0["status"] as? Int == 401 }.count == 6)
        let ok = try #require(requests.first { $0["status"] as? Int == 200 })
        #expect(ok["tenant"] as? String == "acme" && ok["path"] as? String == "/v1/process" && ok["method"] as? String == "POST")
        #expect(ok["request_id"] is String && ok["duration_us"] is Int && ok["bytes_in"] is Int)
    }

    @Test func aNoisyTenantsStderrIsCutToItsBudget() throws {
        let d = try Daemon(hostile: true)
        defer { d.cleanUp() }
        try d.start()
        let noisy = try d.tenant("noisy"), calm = try d.tenant("calm")
        #expect(try d.call(key: noisy, body: #"{"task":"stderr_flood","data":5000}"#).status == 200)
        #expect(try d.call(key: calm, body: echo("1")).status == 200)
        try eventually(10, "the suppressed lines are reported") { d.logText().contains("worker_stderr_suppressed") }
        let lines = d.logText().split(separator: "\n")
        let logged = lines.filter { $0.contains("\"worker_stderr\"") && $0.contains("\"tenant\":\"noisy\"") }.count
        let suppressed = lines.filter { $0.contains("worker_stderr_suppressed") }
            .compactMap { (try? JSONSerialization.jsonObject(with: Data($0.utf8))) as? [String: Any] }
            .reduce(0) { $0 + ($1["lines"] as? Int ?? 0) }
        print("stderr flood of 5000 lines: \(logged) logged, \(suppressed) suppressed")
        #expect(logged <= 150)
        #expect(logged + suppressed == 5000)
    }
}
