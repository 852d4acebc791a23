// HTTPS listeners: a real TLS client (curl) completes requests over TLS 1.2 and 1.3 with
// ALPN http/1.1; plain HTTP on the TLS port gets nowhere and costs nothing else; an
// expired or mismatched certificate stops the start with a clear message; a reload
// picks up a new certificate.
import Foundation
import Testing

/// A self-signed certificate for 127.0.0.1 in `directory`: (certificate, key).
func makeCertificate(_ directory: String, name: String = "server", days: Int = 2) throws -> (String, String) {
    let cert = directory + "/\(name).crt", key = directory + "/\(name).key"
    let r = run("/usr/bin/openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                                     "-keyout", key, "-out", cert, "-subj", "/CN=\(name)", "-days", String(days),
                                     "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"])
    guard r.status == 0 else { throw TestFailure("openssl req: \(r.stderr)") }
    return (cert, key)
}

func curl(_ args: [String]) -> Ran { run("/usr/bin/curl", ["-sS", "--max-time", "10"] + args) }

@Suite(.serialized) struct TLSTests {
    @Test func aRealTLSClientCompletesRequests() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (cert, key) = try makeCertificate(directory)
        let tlsPort = freePort()
        let d = try Daemon(listen: "tls://127.0.0.1:\(tlsPort)", server: "tls_certificate = \(cert)\ntls_private_key = \(key)")
        defer { d.cleanUp() }
        try d.start()
        let apiKey = try d.tenant("acme")
        let url = "https://127.0.0.1:\(tlsPort)"
        for version in ["--tlsv1.2", "--tlsv1.3"] {
            let r = curl(["--cacert", cert, version, "-w", "\n%{http_version} %{ssl_verify_result}", "-H", "Authorization: Bearer \(apiKey)",
                          "-H", "Content-Type: application/json", "-d", echo("\"over tls\""), url + "/v1/process"])
            #expect(r.status == 0, "\(version): \(r.stderr)")
            #expect(r.stdout.contains("over tls") && r.stdout.hasSuffix("1.1 0"), "\(r.stdout)")
        }
        // ALPN: offered h2 and http/1.1, it picks http/1.1.
        let alpn = curl(["--cacert", cert, "-v", url + "/healthz"])
        #expect(alpn.stderr.contains("ALPN: server accepted http/1.1") || alpn.stderr.contains("ALPN, server accepted to use http/1.1"), "\(alpn.stderr)")
        // Keep-alive, pipelining and a large streamed file work through TLS too.
        let big = d.directory + "/big.bin"
        try Data((0..<(2 << 20)).map { UInt8(truncatingIfNeeded: $0) }).write(to: URL(fileURLWithPath: big))
        #expect(curl(["--cacert", cert, "-H", "Authorization: Bearer \(apiKey)", "-T", big, url + "/v1/files/big.bin"]).stdout.contains("2097152"))
        let back = d.directory + "/back.bin"
        #expect(curl(["--cacert", cert, "-H", "Authorization: Bearer \(apiKey)", "-o", back, url + "/v1/files/big.bin",
                      url + "/healthz"]).status == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: back)) == Data(contentsOf: URL(fileURLWithPath: big)))
        // Old protocols are refused; plain HTTP on the TLS port gets no answer; others go on.
        #expect(curl(["--cacert", cert, "--tls-max", "1.1", url + "/healthz"]).status != 0)
        let plain = try RawConnection(port: tlsPort)
        plain.send("GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        #expect(plain.response(seconds: 2) == nil)
        #expect(try d.call("GET", "/healthz", key: nil).status == 200)

        // A new certificate on reload: new connections get it.
        let (cert2, key2) = try makeCertificate(directory, name: "renewed")
        try d.rewriteConfig(extra: "")  // no extra sections
        let text = try String(contentsOfFile: d.config, encoding: .utf8)
        try text.replacingOccurrences(of: cert, with: cert2).replacingOccurrences(of: key, with: key2)
            .write(toFile: d.config, atomically: true, encoding: .utf8)
        #expect(d.ctl("reload").status == 0)
        #expect(curl(["--cacert", cert2, url + "/healthz"]).status == 0)
        #expect(curl(["--cacert", cert, url + "/healthz"]).status != 0)  // the old one is no longer served
    }

    @Test func anExpiredOrMismatchedCertificateStopsTheStart() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (cert, key) = try makeCertificate(directory)
        let (_, otherKey) = try makeCertificate(directory, name: "other")
        // An expired one: re-signed with an end date in the past.
        let expired = directory + "/expired.crt"
        let csr = directory + "/r.csr"
        #expect(run("/usr/bin/openssl", ["req", "-new", "-key", key, "-subj", "/CN=old", "-out", csr]).status == 0)
        #expect(run("/usr/bin/openssl", ["x509", "-req", "-in", csr, "-signkey", key, "-days", "-1", "-out", expired]).status == 0)
        for (certificate, privateKey, message) in [(expired, key, "expired on"), (cert, otherKey, "does not match the certificate"),
                                                    (directory + "/missing.crt", key, "tls_certificate")] {
            let d = try Daemon(listen: "tls://127.0.0.1:\(freePort())", server: "tls_certificate = \(certificate)\ntls_private_key = \(privateKey)")
            defer { d.cleanUp() }
            let r = run(buildDirectory + "/bulkheadd", ["--config", d.config])
            #expect(r.status != 0)
            #expect(r.stderr.contains(message), "\(r.stderr)")
        }
        // Without the two keys the file itself is refused, with its line.
        let d = try Daemon(listen: "tls://127.0.0.1:\(freePort())")
        defer { d.cleanUp() }
        let r = run(buildDirectory + "/bulkheadd", ["--check-config", d.config])
        #expect(r.status != 0 && r.stderr.contains("needs tls_certificate and tls_private_key"), "\(r.stderr)")
    }

    @Test func aStalledHandshakeIsCutOffByTheHeaderTimeout() throws {
        let directory = try makeTemporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let (cert, key) = try makeCertificate(directory)
        let tlsPort = freePort()
        let d = try Daemon(listen: "tls://127.0.0.1:\(tlsPort)",
                           server: "tls_certificate = \(cert)\ntls_private_key = \(key)\nheader_timeout = 500ms")
        defer { d.cleanUp() }
        try d.start()
        let silent = try RawConnection(port: tlsPort)  // connects, never says hello
        #expect(silent.closedByServer(seconds: 10))
        #expect(curl(["--cacert", cert, "https://127.0.0.1:\(tlsPort)/healthz"]).status == 0)
    }
}
