// The HTTP front end end to end: real TCP against a real bulkheadd, real workers.
import Foundation
import Testing

func echo(_ data: String) -> String { #"{"task":"echo","data":\#(data)}"# }

/// After an attack, the daemon still serves everyone.
func expectHealthy(_ d: Daemon, key: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
    #expect(try d.call("GET", "/healthz", key: nil).status == 200, sourceLocation: sourceLocation)
    let r = try d.call(key: key, body: echo(#""still here""#))
    #expect(r.status == 200, sourceLocation: sourceLocation)
    #expect(r.json["result"] as? String == "still here", sourceLocation: sourceLocation)
}

@Suite(.serialized) struct HTTPTests {
    @Test func processRoundTripKeepAliveAndPipelining() throws {
        let d = try Daemon()
        defer { d.cleanUp() }
        try d.start()
        let key = try d.tenant("acme")
        // The seed's request, on the alias path too.
        for path in ["/v1/process", "/process"] {
            let r = try d.call("POST", path, key: key, body: #"{"task":"analyze","data":"the cat and the hat"}"#)
            #expect(r.status == 200, "\(r.text)")
            #expect(r.json["tenant_id"] as? String == "acme")
            #expect(r.json["task"] as? String == "analyze")
            #expect(r.header("X-Request-Id") == r.json["request_id"] as? String)
            let result = r.json["result"] as? [String: Any]
            #expect(result?["words"] as? Int == 5)
        }
        // Keep-alive: three requests on one connection; then ten pipelined in one write.
        let c = try d.connect()
        for i in 0..<3 {
            c.send(request(key: key, body: echo("\(i)"), headers: ["X-Request-Id: keep-\(i)"]))
            let r = try #require(c.response())
            #expect(r.status == 200)
            #expect(r.header("X-Request-Id") == "keep-\(i)")
        }
        c.send((0..<10).map { request(key: key, body: echo("\($0)"), headers: ["X-Request-Id: pipe-\($0)"]) }.joined())
        for i in 0..<10 {
            let r = try #require(c.response())
            #expect(r.header("X-Request-Id") == "pipe-\(i)")
            #expect(r.json["result"] as? Int == i)
        }
        // A malformed X-Request-Id is replaced, not echoed.
        let bad = try d.call(key: key, body: echo("1"), headers: ["X-Request-Id: <script>"])
        #expect(bad.header("X-Request-Id") != "<script>")
    }

    @Test func chunkedTrailersExpectContinueAndAMebibyte() throws {
        let d = try Daemon()
        defer { d.cleanUp() }
        try d.start()
        let key = try d.tenant("acme")
        let c = try d.connect()
        let body = echo(#""chunky""#)
        let half = body.utf8.count / 2
        let a = String(body.prefix(half)), b = String(body.dropFirst(half))
        c.send("POST /v1/process HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(key)\r\nTransfer-Encoding: chunked\r\n\r\n"
            + String(a.utf8.count, radix: 16) + ";ext=1\r\n" + a + "\r\n" + String(b.utf8.count, radix: 16) + "\r\n" + b
            + "\r\n0\r\nX-Trailer: yes\r\n\r\n")
        let r = try #require(c.response())
        #expect(r.status == 200, "\(r.text)")
        #expect(r.json["result"] as? String == "chunky")
        // Expect: 100-continue: the interim answer comes before the body is sent.
        let e = try d.connect()
        let eb = echo(#""continued""#)
        e.send("POST /v1/process HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(key)\r\nContent-Length: \(eb.utf8.count)\r\nExpect: 100-continue\r\n\r\n")
        #expect(e.response()?.status == 100)
        e.send(eb)
        #expect(e.response()?.json["result"] as? String == "continued")
        // 1 MiB through the worker and back.
        let big = String(repeating: "x", count: 1 << 20)
        let m = try d.call(key: key, body: echo("\"\(big)\""))
        #expect(m.status == 200)
        #expect((m.json["result"] as? String)?.count == 1 << 20)
    }

    @Test func twoHundredConcurrentRequestsAcrossTwentyTenants() throws {
        let d = try Daemon(extra: "[workers]\nmax_per_tenant = 2\nqueue_size = 64")
        defer { d.cleanUp() }
        try d.start()
        let keys = try (0..<20).map { try d.tenant("t\($0)") }
        let failures = Counter()
        DispatchQueue.concurrentPerform(iterations: 200) { i in
            let tenant = i % 20
            guard let r = try? d.call(key: keys[tenant], body: echo("\(i)")), r.status == 200,
                  r.json["tenant_id"] as? String == "t\(tenant)", r.json["result"] as? Int == i else {
                failures.add()
                return
            }
        }
        #expect(failures.value == 0)
    }

    @Test func smugglingAndMalformedRequestsAreRefusedAndClosed() throws {
        let d = try Daemon()
        defer { d.cleanUp() }
        try d.start()
        let key = try d.tenant("acme")
        let auth = "Authorization: Bearer \(key)\r\n"
        let cases: [(String, String, Int)] = [
            ("TE and CL", "POST /v1/process HTTP/1.1\r\nHost: t\r\n\(auth)Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
            ("two differing CL", "POST /v1/process HTTP/1.1\r\nHost: t\r\n\(auth)Content-Length: 4\r\nContent-Length: 5\r\n\r\nabcde", 400),
            ("two equal CL", "POST /v1/process HTTP/1.1\r\nHost: t\r\n\(auth)Content-Length: 4\r\nContent-Length: 4\r\n\r\nabcd", 400),
            ("TE gzip", "POST /v1/process HTTP/1.1\r\nHost: t\r\n\(auth)Transfer-Encoding: gzip\r\n\r\n", 501),
            ("TE chunked twice", "POST /v1/process HTTP/1.1\r\nHost: t\r\n\(auth)Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 400),
            ("bad chunk size", "POST /v1/process HTTP/1.1\r\nHost: t\r\n\(auth)Transfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
            ("bad chunk extension", "POST /v1/process HTTP/1.1\r\nHost: t\r\n\(auth)Transfer-Encoding: chunked\r\n\r\n5;=\r\nabcde\r\n0\r\n\r\n", 400),
            ("bare method", "GET\r\n\r\n", 400),
            ("HTTP/9.9", "GET /healthz HTTP/9.9\r\nHost: t\r\n\r\n", 505),
            ("control byte in target", "GET /health\u{01}z HTTP/1.1\r\nHost: t\r\n\r\n", 400),
            ("space before colon", "GET /healthz HTTP/1.1\r\nHost : t\r\n\r\n", 400),
            ("obs-fold", "GET /healthz HTTP/1.1\r\nHost: t\r\nX-A: 1\r\n  2\r\n\r\n", 400),
            ("two Hosts", "GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
            ("no Host", "GET /healthz HTTP/1.1\r\n\r\n", 400),
            ("100 KiB URL", "GET /" + String(repeating: "a", count: 100 * 1024) + " HTTP/1.1\r\nHost: t\r\n\r\n", 414),
            ("huge header block", "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Big: " + String(repeating: "b", count: 20_000) + "\r\n\r\n", 431),
            ("too many headers", "GET /healthz HTTP/1.1\r\nHost: t\r\n" + (0..<120).map { "X-\($0): v\r\n" }.joined() + "\r\n", 431),
            ("body over max_body_bytes", "POST /v1/process HTTP/1.1\r\nHost: t\r\n\(auth)Content-Length: 999999999\r\n\r\n", 413),
        ]
        for (name, text, status) in cases {
            let c = try d.connect()
            c.send(text)
            let r = c.response(seconds: 10)
            #expect(r?.status == status, "\(name): got \(r?.status ?? -1) \(r?.text ?? "")")
            #expect(r?.header("Connection") == "close", "\(name)")
            #expect(r?.header("X-Request-Id") != nil, "\(name)")
            #expect(c.closedByServer(), "\(name): connection left open")
        }
        try expectHealthy(d, key: key)
    }

    /// A client that keeps sending a body the server refused still reads the refusal
    /// (lingering close), instead of a connection reset.
    @Test func anOversizedUploadInFlightStillGets413() throws {
        let d = try Daemon(extra: "[server]\nmax_body_bytes = 1048576")
        defer { d.cleanUp() }
        try d.start()
        let key = try d.tenant("acme")
        let c = try d.connect()
        let sender = DispatchQueue(label: "upload")
        sender.async {
            c.send("POST /v1/process HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(key)\r\nContent-Length: 8388608\r\n\r\n")
            c.send([UInt8](repeating: 0x61, count: 2 << 20))
        }
        // Only once the whole upload is sent does the client look for the answer.
        sender.sync {}
        let r = c.response(seconds: 20)
        #expect(r?.status == 413)
        #expect(r?.header("Connection") == "close")
        try expectHealthy(d, key: key)
    }

    /// A client that pipelines a lot and reads nothing does not make the daemon buffer all
    /// the answers: reading stops once 16 are in flight or 1 MiB is unsent.
    @Test func aSlowReaderDoesNotGrowTheDaemonsMemory() throws {
        let d = try Daemon(extra: "[server]\nmax_body_bytes = 1048576")
        defer { d.cleanUp() }
        try d.start()
        let key = try d.tenant("acme")
        _ = try d.call(key: key, body: echo("1"))  // a worker is up
        let pid = d.process!.processIdentifier
        func rss() -> Int {
            let text = (try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)) ?? ""
            return Int(text.split(separator: "\n").first { $0.hasPrefix("VmRSS:") }?.split(separator: " ")[1] ?? "0") ?? 0
        }
        let before = rss()
        let c = try d.connect()
        _ = fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK)
        let one = Array(request(key: key, body: echo("\"" + String(repeating: "x", count: 256 * 1024) + "\"")).utf8)
        // 200 requests whose answers add up to 50 MiB; send until the daemon stops taking them.
        var queued = 0, offset = 0
        let deadline = Date(timeIntervalSinceNow: 5)
        while queued < 200 && Date() < deadline {
            let n = one.withUnsafeBytes { Glibc.send(c.fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if n > 0 {
                offset += n
                if offset == one.count { queued += 1; offset = 0 }
            } else {
                var p = pollfd(fd: c.fd, events: Int16(POLLOUT), revents: 0)
                if poll(&p, 1, 200) == 0 { break }  // the daemon has stopped reading
            }
        }
        #expect(queued < 200)  // it pushed back
        #expect(rss() - before < 40 * 1024, "the daemon grew by \(rss() - before) KiB")
        try expectHealthy(d, key: key)
    }

    @Test func slowClientsAreCutOffByTheTimeouts() throws {
        let d = try Daemon(extra: "[server]\nheader_timeout = 300ms\nbody_timeout = 300ms\nkeepalive_timeout = 400ms")
        defer { d.cleanUp() }
        try d.start()
        let key = try d.tenant("acme")
        // Slowloris: half a head, then nothing.
        let slow = try d.connect()
        slow.send("GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow")
        let r = slow.response(seconds: 10)
        #expect(r?.status == 408)
        #expect(slow.closedByServer())
        // A body that never completes.
        let body = try d.connect()
        body.send("POST /v1/process HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(key)\r\nContent-Length: 100\r\n\r\n{\"ta")
        #expect(body.response(seconds: 10)?.status == 408)
        #expect(body.closedByServer())
        // An idle keep-alive connection is closed.
        let idle = try d.connect()
        idle.send(request("GET", "/healthz", key: nil))
        #expect(idle.response()?.status == 200)
        #expect(idle.closedByServer())
        // A request trickled a byte at a time inside the timeout still works (timeouts are per phase, long enough here).
        let d2 = try Daemon()
        defer { d2.cleanUp() }
        try d2.start()
        let k2 = try d2.tenant("acme")
        let trickle = try d2.connect()
        for byte in Array(request(key: k2, body: echo("7")).utf8) { trickle.send([byte]) }
        #expect(trickle.response()?.json["result"] as? Int == 7)
        // A client that disconnects mid-body leaves the daemon healthy.
        let gone = try d2.connect()
        gone.send("POST /v1/process HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(k2)\r\nContent-Length: 50\r\n\r\n{\"task\"")
        _ = shutdown(gone.fd, Int32(SHUT_RDWR))  // and goes away mid-body
        try expectHealthy(d2, key: k2)
        try expectHealthy(d, key: key)
    }

    @Test func authenticationAndTenantBoundaries() throws {
        let d = try Daemon(hostile: true)
        defer { d.cleanUp() }
        try d.start()
        let a = try d.tenant("tenant-a"), b = try d.tenant("tenant-b")
        let admin = try #require(apiKey(d.ctl("admin-key", "issue", "--name", "ops").stdout, json: false))
        // No key, a bad key, a garbage header.
        let none = try d.call(key: nil, body: echo("1"))
        #expect(none.status == 401)
        #expect(none.header("WWW-Authenticate")?.hasPrefix("Bearer") == true)
        let bad = try d.call(key: a + "x", body: echo("1"))
        #expect(bad.status == 401)
        #expect(bad.header("WWW-Authenticate") == #"Bearer error="invalid_token""#)
        #expect(try d.call(key: nil, body: echo("1"), headers: ["Authorization: Basic Zm9vOmJhcg=="]).status == 401)
        // Each key reaches its own tenant's worker only: the worker's uid is the tenant's.
        let pa = try d.call(key: a, body: #"{"task":"pid"}"#)
        let pb = try d.call(key: b, body: #"{"task":"pid"}"#)
        #expect(pa.json["tenant_id"] as? String == "tenant-a")
        #expect(pb.json["tenant_id"] as? String == "tenant-b")
        let uidA = procUID(pa.json["result"] as? Int), uidB = procUID(pb.json["result"] as? Int)
        #expect(uidA == 240_000 && uidB == 240_001)
        // An admin key is not a tenant.
        let adminCall = try d.call(key: admin, body: echo("1"))
        #expect(adminCall.status == 403)
        #expect(try d.call("GET", "/v1/admin/tenants", key: admin).status == 200)
        #expect(try d.call("GET", "/v1/admin/tenants", key: a).status == 403)
        #expect(try d.call("GET", "/v1/admin/tenants/tenant-b", key: admin).json["id"] as? String == "tenant-b")
        // Suspended: 403 tenant_suspended; revoked: 401 on the very next request.
        #expect(d.ctl("tenant", "suspend", "tenant-b").status == 0)
        let suspended = try d.call(key: b, body: echo("1"))
        #expect(suspended.status == 403)
        #expect(suspended.errorCode == "tenant_suspended")
        let jti = try #require(jwtID(a))
        #expect(try d.call(key: a, body: echo("1")).status == 200)
        #expect(d.ctl("key", "revoke", jti).status == 0)
        #expect(try d.call(key: a, body: echo("1")).status == 401)
        // Failures are audited, and no token reaches the log or the audit log.
        let audit = d.ctl("audit", "--limit", "50").stdout
        #expect(audit.contains("http.authenticate"))
        #expect(audit.contains("refused: key_revoked"))
        for token in [a, b, admin] {
            let signature = String(token.split(separator: ".").last ?? "")
            #expect(!d.logText().contains(signature))
            #expect(!audit.contains(signature))
        }
        // Routing errors.
        #expect(try d.call(key: b, body: #"{"task":"nope"}"#).status == 403)  // still suspended
        #expect(d.ctl("tenant", "resume", "tenant-b").status == 0)
        #expect(try d.call(key: b, body: #"{"task":"nope"}"#).errorCode == "unknown_task")
        #expect(try d.call(key: b, body: #"{"task":1}"#).status == 400)
        #expect(try d.call(key: b, body: "[1,2]").status == 400)
        #expect(try d.call("GET", "/v1/process", key: b).status == 405)
        #expect(try d.call("GET", "/nowhere", key: b).status == 404)
    }

    @Test func crashesTimeoutsAndDrain() throws {
        let d = try Daemon(extra: "[workers]\nrequest_timeout = 1s", hostile: true)
        defer { d.cleanUp() }
        try d.start()
        let key = try d.tenant("acme")
        let crash = try d.call(key: key, body: #"{"task":"crash"}"#)
        #expect(crash.status == 502)
        #expect(crash.errorCode == "worker_crashed")
        let hang = try d.call(key: key, body: #"{"task":"hang"}"#)
        #expect(hang.status == 504)
        #expect(hang.errorCode == "worker_timeout")
        try expectHealthy(d, key: key)
        // A worker killed from outside mid-request.
        let pid = try #require(try d.call(key: key, body: #"{"task":"pid"}"#).json["result"] as? Int)
        let c = try d.connect()
        c.send(request(key: key, body: #"{"task":"spin_until_cancelled"}"#))
        try eventually(10, "worker busy") { d.ctl("tenant", "show", "acme").stdout.contains("in_flight: 1") }
        kill(Int32(pid), SIGKILL)
        #expect(c.response()?.status == 502)
        // CORS preflight needs no key.
        let pre = try d.call("OPTIONS", "/v1/process", key: nil, headers: ["Origin: https://app.example", "Access-Control-Request-Method: POST"])
        #expect(pre.status == 404 || pre.status == 405 || pre.status == 204)
        // SIGTERM with requests in flight: they complete, then exit 0.
        let inflight = (0..<5).map { _ -> RawConnection in
            let c = try! d.connect()
            c.send(request(key: key, body: #"{"task":"sleep_ms","data":400}"#))
            return c
        }
        // All five have reached the workers (four run, one is pipelined behind one of them).
        try eventually(10, "requests in flight") { d.ctl("tenant", "show", "acme").stdout.contains("in_flight: 5") }
        kill(d.process!.processIdentifier, SIGTERM)
        for c in inflight {
            let r = c.response(seconds: 20)
            #expect(r?.status == 200, "\(r?.text ?? "none")")
            #expect(r?.header("Connection") == "close")
        }
        d.process!.waitUntilExit()
        #expect(d.process!.terminationStatus == 0)
        d.process = nil
    }

    @Test func corsHeadersAndPreflight() throws {
        let d = try Daemon(extra: "[cors]\nallowed_origins = https://app.example")
        defer { d.cleanUp() }
        try d.start()
        let key = try d.tenant("acme")
        let pre = try d.call("OPTIONS", "/v1/process", key: nil, headers: ["Origin: https://app.example", "Access-Control-Request-Method: POST"])
        #expect(pre.status == 204)
        #expect(pre.header("Access-Control-Allow-Origin") == "https://app.example")
        #expect(pre.header("Access-Control-Allow-Headers")?.contains("Authorization") == true)
        let r = try d.call(key: key, body: echo("1"), headers: ["Origin: https://app.example"])
        #expect(r.header("Access-Control-Allow-Origin") == "https://app.example")
        let other = try d.call(key: key, body: echo("1"), headers: ["Origin: https://evil.example"])
        #expect(other.header("Access-Control-Allow-Origin") == nil)
        #expect(try d.call("GET", "/readyz", key: nil).status == 200)
        // HEAD: the GET answer's headers and no body; the next answer on the connection is intact.
        let c = try d.connect()
        c.send(request("HEAD", "/healthz", key: nil) + request("GET", "/healthz", key: nil))
        let head = try #require(c.response(noBody: true))
        #expect(head.status == 200)
        #expect(head.header("Content-Length") == "15")
        #expect(c.response()?.text == #"{"status":"ok"}"#)
    }
}

final class Counter: @unchecked Sendable {  // guarded by lock
    private let lock = NSLock()
    private var n = 0
    func add() { lock.withLock { n += 1 } }
    var value: Int { lock.withLock { n } }
}

func procUID(_ pid: Int?) -> Int? {
    guard let pid, let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    let line = text.split(separator: "\n").first { $0.hasPrefix("Uid:") }
    return line.flatMap { Int($0.split(separator: "\t")[1]) }
}

func procState(_ pid: Int) -> String? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    return text.split(separator: "\n").first { $0.hasPrefix("State:") }.map(String.init)
}

@Suite(.serialized) struct ExternalIssuerTests {
    /// A SaaS signs its own users' short-lived EdDSA tokens; bulkheadd accepts them for the
    /// tenant their claim names, and nothing else.
    @Test func externalEdDSATokensReachTheirTenant() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(run("/usr/bin/openssl", ["genpkey", "-algorithm", "ed25519", "-out", dir + "/key.pem"]).status == 0)
        #expect(run("/usr/bin/openssl", ["pkey", "-in", dir + "/key.pem", "-pubout", "-out", dir + "/pub.pem"]).status == 0)
        let d = try Daemon(extra: """
            [auth]
            external_issuer = https://auth.example
            external_algorithm = EdDSA
            external_public_key_file = \(dir)/pub.pem
            external_tenant_claim = org
            """)
        defer { d.cleanUp() }
        try d.start()
        _ = try d.tenant("acme")
        func sign(_ claims: String) throws -> String {
            func b64(_ data: Data) -> String {
                data.base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
                    .replacingOccurrences(of: "=", with: "")
            }
            let input = b64(Data(#"{"alg":"EdDSA","typ":"JWT"}"#.utf8)) + "." + b64(Data(claims.utf8))
            try input.write(toFile: dir + "/input", atomically: true, encoding: .utf8)
            #expect(run("/usr/bin/openssl", ["pkeyutl", "-sign", "-inkey", dir + "/key.pem", "-rawin", "-in", dir + "/input",
                                             "-out", dir + "/sig"]).status == 0)
            return input + "." + b64(try Data(contentsOf: URL(fileURLWithPath: dir + "/sig")))
        }
        let exp = Int(Date().timeIntervalSince1970) + 300
        let good = try sign(#"{"iss":"https://auth.example","aud":"bulkhead","sub":"user-7","org":"acme","exp":\#(exp)}"#)
        let r = try d.call(key: good, body: echo("1"))
        #expect(r.status == 200, "\(r.text)")
        #expect(r.json["tenant_id"] as? String == "acme")
        let unknown = try sign(#"{"iss":"https://auth.example","aud":"bulkhead","sub":"user-7","org":"nobody","exp":\#(exp)}"#)
        #expect(try d.call(key: unknown, body: echo("1")).status == 401)
        let wrongIssuer = try sign(#"{"iss":"https://evil.example","aud":"bulkhead","sub":"user-7","org":"acme","exp":\#(exp)}"#)
        #expect(try d.call(key: wrongIssuer, body: echo("1")).status == 401)
    }

    @Test func aMisconfiguredIssuerStopsTheDaemonWithAClearMessage() throws {
        let d = try Daemon(extra: "[auth]\nexternal_issuer = https://auth.example\n")
        defer { d.cleanUp() }
        let r = run(buildDirectory + "/bulkheadd", ["--config", d.config])
        #expect(r.status == 1)
        #expect(r.stderr.contains("external_issuer, external_algorithm and external_public_key_file go together"))
    }
}

@Suite(.serialized) struct ListenerTests {
    @Test func unixSocketListenerAndConnectionLimit() throws {
        let dir = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let d = try Daemon(extra: "[server]\nmax_connections = 3\n")
        defer { d.cleanUp() }
        // Also serve on a Unix socket.
        var text = try String(contentsOfFile: d.config, encoding: .utf8)
        text = text.replacingOccurrences(of: "listen = 127.0.0.1:\(d.port)", with: "listen = 127.0.0.1:\(d.port), unix:\(dir)/http.sock")
        try text.write(toFile: d.config, atomically: true, encoding: .utf8)
        try d.start()
        let viaUnix = run("/usr/bin/curl", ["-s", "--unix-socket", dir + "/http.sock", "http://x/healthz"])
        #expect(viaUnix.stdout == #"{"status":"ok"}"#)
        // Three connections are the limit: the fourth gets a clean 503 and is closed.
        let held = try (0..<3).map { _ in try d.connect() }
        for c in held {
            c.send(request("GET", "/healthz", key: nil))
            #expect(c.response()?.status == 200)
        }
        let extra = try d.connect()
        let r = extra.response(seconds: 10)
        #expect(r?.status == 503)
        #expect(r?.errorCode == "overloaded")
        #expect(extra.closedByServer())
        // Once one closes, new connections are served again.
        _ = held.first.map { shutdown($0.fd, Int32(SHUT_RDWR)) }
        try eventually(10, "a slot is free") {
            guard let c = try? d.connect() else { return false }
            c.send(request("GET", "/healthz", key: nil))
            return c.response(seconds: 2)?.status == 200
        }
    }
}
