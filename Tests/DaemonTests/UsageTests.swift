// Usage metering end to end: a known mix of requests is counted exactly the same by
// /stats, /v1/usage, bulkheadctl and both exports, before and after a restart; a
// kill -9 loses at most the batch not yet written and counts nothing twice.
import Foundation
import Testing

func usageOf(_ d: Daemon, _ tenant: String) -> [String: Any] { jsonObject(d.ctl("--json", "usage", "show", tenant).stdout) }

/// The CSV export back into rows of column → text.
func parseCSV(_ text: String) -> [[String: String]] {
    let lines = text.split(whereSeparator: \.isNewline).map(String.init)
    guard let header = lines.first?.split(separator: ",").map(String.init) else { return [] }
    return lines.dropFirst().map { line in
        Dictionary(uniqueKeysWithValues: zip(header, line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)))
    }
}

@Suite(.serialized) struct UsageTests {
    @Test func aKnownMixIsCountedAlikeEverywhereAndSurvivesARestart() throws {
        let d = try Daemon(extra: "[ratelimit]\nrate = 1/hour\nburst = 5", hostile: true)
        defer { d.cleanUp() }
        try d.start()
        let acme = try d.tenant("acme"), beta = try d.tenant("beta")
        let admin = try #require(apiKey(d.ctl("admin-key", "issue", "--name", "ops").stdout, json: false))
        #expect(d.ctl("limits", "set", "beta", "--burst", "100").status == 0)
        let statuses = try [echo("1"), echo("2"), echo("3"), #"{"task":"no_such_task"}"#, #"{"task":"crash"}"#, echo("4"), echo("5")]
            .map { try d.call(key: acme, body: $0).status }
        #expect(statuses == [200, 200, 200, 404, 502, 429, 429])
        #expect(try d.call(key: nil, body: echo("1")).status == 401)  // no tenant: not metered

        func check(_ stage: String, requests: Int, rateLimited: Int, tenants: [String]) throws {
            let stats = try d.call("GET", "/stats/acme", key: admin)
            #expect(stats.status == 200, "\(stage)")
            for source in [stats.json, try d.call("GET", "/v1/admin/tenants/acme/usage", key: admin).json, usageOf(d, "acme")] {
                #expect(source["tenant_id"] as? String == "acme", "\(stage)")
                #expect(source["requests"] as? Int == requests && source["requests_today"] as? Int == requests, "\(stage)")
                #expect(source["errors"] as? Int == 2 && source["rate_limited"] as? Int == rateLimited, "\(stage)")
                #expect((source["compute_seconds"] as? Double ?? 0) > 0, "\(stage)")
                #expect(source["storage_gb"] != nil, "\(stage)")
            }
            let month = String(UsageTests.today().prefix(7))
            let csv = parseCSV(d.ctl("usage", "export", "--month", month, "--format", "csv").stdout)
            let json = jsonObject(d.ctl("usage", "export", "--month", month, "--format", "json").stdout)["rows"] as? [[String: Any]] ?? []
            let http = parseCSV(try d.call("GET", "/v1/admin/usage?month=\(month)&format=csv", key: admin).text)
            #expect(csv.map { $0["tenant_id"] } == tenants, "\(stage)")
            #expect(csv == http, "\(stage)")
            #expect(json.count == csv.count, "\(stage)")
            for (c, j) in zip(csv, json) {
                for (column, value) in c {
                    let other = j[column].map { "\($0)" } ?? "missing"
                    #expect(value == other || Double(value) == (j[column] as? Double), "\(stage) \(column): \(value) vs \(other)")
                }
            }
            #expect(csv.first?["requests"] == String(requests) && csv.first?["errors"] == "2"
                    && csv.first?["rate_limited"] == String(rateLimited), "\(stage)")
        }
        try check("at once", requests: 7, rateLimited: 2, tenants: ["acme"])
        // A tenant reads its own usage; the read itself counts once it is answered.
        #expect(try d.call(key: beta, body: echo("1")).status == 200)
        let own = try d.call("GET", "/v1/usage", key: beta)
        #expect(own.status == 200 && own.json["requests"] as? Int == 1)
        #expect(try d.call("GET", "/v1/usage", key: acme).status == 429)  // acme's budget is spent
        try check("before the restart", requests: 8, rateLimited: 3, tenants: ["acme", "beta"])
        d.stop()
        try d.start()
        try check("after the restart", requests: 8, rateLimited: 3, tenants: ["acme", "beta"])
        #expect(usageOf(d, "beta")["requests"] as? Int == 2)
        // Bad periods are refused.
        #expect(try d.call("GET", "/stats/acme?day=2026-13-01", key: admin).status == 400)
        #expect(try d.call("GET", "/stats/acme?day=2026-12-01&month=2026-12", key: admin).status == 400)
        #expect(try d.call("GET", "/v1/admin/usage?format=csv", key: admin).status == 400)
        #expect(try d.call("GET", "/v1/admin/usage?month=2026-12&format=xml", key: admin).status == 400)
        #expect(try d.call("GET", "/stats/ghost", key: admin).status == 404)
        #expect(d.ctl("usage", "show", "acme", "--day", "yesterday").status == 1)
    }

    @Test func killNineLosesAtMostTheUnwrittenBatch() throws {
        let d = try Daemon(extra: "[ratelimit]\nrate = 1000/second\nburst = 1000")
        defer { d.cleanUp() }
        try d.start()
        let key = try d.tenant("acme")
        for _ in 0..<5 { #expect(try d.call(key: key, body: echo("1")).status == 200) }
        try eventually(10, "everything is written") {
            (try parsePrometheus(try d.call("GET", "/metrics", key: nil).text))["bulkhead_usage_flush_lag_milliseconds"] == 0
        }
        for _ in 0..<3 { #expect(try d.call(key: key, body: echo("1")).status == 200) }
        d.kill9()
        try d.start()
        let after = usageOf(d, "acme")["requests"] as? Int ?? -1
        print("after kill -9: \(after) of 8 requests counted")
        #expect((5...8).contains(after))
    }

    /// Every answer to a request made with a valid tenant key is the tenant's, refusals
    /// included (404, 405, 403); what carries no valid key, or never got past the HTTP
    /// server (400, 413 on a declared length), is nobody's and is counted on /metrics.
    @Test func refusalsWithATenantKeyAreMeteredAndTheRestIsNot() throws {
        let d = try Daemon()
        defer { d.cleanUp() }
        try d.start()
        let a = try d.tenant("acme")
        let processOnly = try #require(apiKey(d.ctl("key", "issue", "acme", "--scope", "process").stdout, json: false))
        #expect(try d.call(key: a, body: echo("1")).status == 200)
        #expect(try d.call("GET", "/v1/nope", key: a).status == 404)
        #expect(try d.call("DELETE", "/v1/usage", key: a).status == 405)
        #expect(try raw(d, "GET", "/v1/dict/x", key: processOnly).errorCode == "insufficient_scope")
        #expect(try d.call("GET", "/v1/admin/tenants", key: a).status == 403)
        #expect(usageOf(d, "acme")["requests"] as? Int == 5)
        #expect(usageOf(d, "acme")["errors"] as? Int == 4)

        // Not the tenant's: no key, a key that is not valid (still 404 on an unknown path,
        // and not audited there), and what the HTTP server refuses before any stage.
        let auditBefore = d.ctl("audit").stdout.components(separatedBy: "http.authenticate").count
        #expect(try d.call("GET", "/v1/nope", key: nil).status == 404)
        #expect(try d.call("GET", "/v1/nope", key: a + "x").status == 404)
        #expect(try d.call("GET", "/v1/usage", key: nil).status == 401)
        #expect(d.ctl("audit").stdout.components(separatedBy: "http.authenticate").count == auditBefore)
        let malformed = try d.connect()
        malformed.send("GET /v1/usage HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(a)\r\nBad Header\r\n\r\n")
        #expect(malformed.response()?.status == 400)
        let big = try d.connect()
        big.send("POST /v1/process HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(a)\r\nContent-Type: application/json\r\n"
                 + "Content-Length: \(11 << 20)\r\n\r\n")
        #expect(big.response()?.status == 413)
        #expect(usageOf(d, "acme")["requests"] as? Int == 5)
        let m = try parsePrometheus(try d.call("GET", "/metrics", key: nil).text)
        #expect(m[#"bulkhead_http_server_refusals_total{status="400"}"#] == 1)
        #expect(m[#"bulkhead_http_server_refusals_total{status="413"}"#] == 1)
        #expect(m[#"bulkhead_http_requests_total{class="4xx"}"#] == 9)  // 4 metered, 3 nobody's, 2 refused by the server
    }

    /// A HEAD answer sends headers only: its bytes out are none, in the usage and in the
    /// access log, although its Content-Length is the GET answer's.
    @Test func aHeadAnswerSendsNoBodyBytes() throws {
        let d = try Daemon()
        defer { d.cleanUp() }
        try d.start()
        let a = try d.tenant("acme")
        #expect(try raw(d, "PUT", "/v1/dict/k", key: a, body: [UInt8](repeating: 1, count: 5000)).status == 201)
        let before = usageOf(d, "acme")["bytes_out"] as? Int ?? -1
        let c = try d.connect()
        c.send("HEAD /v1/dict/k HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(a)\r\n\r\n")
        let head = c.response(noBody: true)
        #expect(head?.status == 200 && head?.header("Content-Length") == "5000")
        #expect(usageOf(d, "acme")["bytes_out"] as? Int == before)
        #expect(usageOf(d, "acme")["requests"] as? Int == 2)
        try eventually(10, "the HEAD request is logged") { d.logText().contains(#""method":"HEAD""#) }
        let record = d.logText().split(separator: "\n").first { $0.contains(#""method":"HEAD""#) }.map { jsonObject(String($0)) }
        #expect(record?["bytes_out"] as? Int == 0 && record?["status"] as? Int == 200)
    }

    /// Days and months that are not on the calendar are refused, leap days where they are not.
    @Test func onlyRealDaysAreAccepted() throws {
        let d = try Daemon()
        defer { d.cleanUp() }
        try d.start()
        let a = try d.tenant("acme")
        for day in ["2026-02-29", "2026-02-31", "2026-04-31", "1900-02-29", "2026-12-32", "2026-00-10", "2026-1-01"] {
            let r = try d.call("GET", "/v1/usage?day=\(day)", key: a)
            #expect(r.status == 400 && r.errorCode == "invalid_period", "\(day)")
        }
        for day in ["2028-02-29", "2000-02-29", "2026-02-28", "2026-04-30", "2026-12-31"] {
            #expect(try d.call("GET", "/v1/usage?day=\(day)", key: a).status == 200, "\(day)")
        }
        #expect(d.ctl("usage", "show", "acme", "--day", "2026-02-30").status == 1)
        #expect(d.ctl("usage", "show", "acme", "--day", "2024-02-29").status == 0)
    }

    /// A tenant deleted without --purge keeps its history for billing: it can still be shown.
    @Test func aDeletedTenantsUsageCanStillBeShown() throws {
        let d = try Daemon()
        defer { d.cleanUp() }
        try d.start()
        let a = try d.tenant("acme")
        _ = try d.tenant("beta")
        let admin = try #require(apiKey(d.ctl("admin-key", "issue", "--name", "ops").stdout, json: false))
        #expect(try d.call(key: a, body: echo("1")).status == 200)
        #expect(d.ctl("tenant", "delete", "acme").status == 0)
        let shown = d.ctl("--json", "usage", "show", "acme")
        #expect(shown.status == 0 && jsonObject(shown.stdout)["requests"] as? Int == 1, "\(shown.stderr)")
        #expect(try d.call("GET", "/stats/acme", key: admin).json["requests"] as? Int == 1)
        // A tenant that never was, or whose history was purged, is not found.
        #expect(d.ctl("usage", "show", "ghost").status == 1)
        #expect(d.ctl("tenant", "delete", "beta", "--purge").status == 0)
        #expect(d.ctl("usage", "show", "beta").status == 1)
        #expect(try d.call("GET", "/stats/beta", key: admin).status == 404)
    }

    static func today() -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyy-MM-dd"
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: Date())
    }
}
