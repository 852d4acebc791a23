// Malformed header fields, Host rules, Expect and Connection: each refused with its exact status and code.

import HTTPParser
import Testing

@Suite("Header fields")
struct HeaderFieldTests {
    @Test(arguments: [
        ("Host : a", "invalid_header_name"), ("Host\t: a", "invalid_header_name"),
        (": novalue", "invalid_header_name"), ("NoColon", "invalid_header_name"),
        ("Bad(Name: x", "invalid_header_name"), ("Bad/Name: x", "invalid_header_name"),
        ("Na\u{7F}me: x", "invalid_header_name"), ("X: a\u{1}b", "invalid_header_value"),
        ("X: a\u{7F}b", "invalid_header_value"), ("X: a\u{1B}[31m", "invalid_header_value"),
    ])
    func malformedFields(line: String, code: String) {
        expectRefused("GET / HTTP/1.1\r\nHost: a\r\n\(line)\r\n\r\n", 400, code)
    }

    @Test func nulInValueAndName() {
        expectRefused(bytes("GET / HTTP/1.1\r\nHost: a\r\nX: a") + [0] + bytes("b\r\n\r\n"), 400, "invalid_header_value")
        expectRefused(bytes("GET / HTTP/1.1\r\nHost: a\r\nX") + [0] + bytes(": b\r\n\r\n"), 400, "invalid_header_name")
        expectRefused(bytes("GET / HTTP/1.1\r\nHost: a\r\nX: ") + [0] + bytes("\r\n\r\n"), 400, "invalid_header_value")
    }

    @Test func obsFoldRefused() {
        expectRefused("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n", 400, "obsolete_line_folding")
        expectRefused("GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n\tb\r\n\r\n", 400, "obsolete_line_folding")
        // Whitespace between the request line and the first field (RFC 9112 §2.2).
        expectRefused("GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400, "obsolete_line_folding")
    }

    @Test func bareLineEndingsRefused() {
        expectRefused("GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n", 400, "bare_lf")
        expectRefused("GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\n", 400, "bare_lf")
        expectRefused("GET / HTTP/1.1\r\nHost: a\r\nX\n: b\r\n\r\n", 400, "bare_lf")
        expectRefused("GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n", 400, "bare_cr")
        expectRefused("GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n", 400, "bare_cr")
        expectRefused("GET / HTTP/1.1\r\nHost: a\r\n\rX", 400, "bare_cr")
        expectRefused("GET / HTTP/1.1\r\nHost: a\r\nX\r: b\r\n\r\n", 400, "invalid_header_name")
    }

    @Test func hostRules() {
        expectRefused("GET / HTTP/1.1\r\n\r\n", 400, "missing_host")
        expectRefused("GET / HTTP/1.1\r\nX: a\r\n\r\n", 400, "missing_host")
        expectRefused("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", 400, "duplicate_host")
        expectRefused("GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n", 400, "duplicate_host")
        expectRefused("GET / HTTP/1.0\r\nHost: a\r\nHOST: b\r\n\r\n", 400, "duplicate_host")
    }

    @Test(arguments: [
        "a b", "a,b", "user@a", "a:", "a:99999", "a:123456", ":80", "a:8x", "[::1", "[]", "[::g]", "a/b", "a?b",
        "caf\u{E9}", "a;b", "a:80:80",
    ])
    func invalidHosts(host: String) {
        expectRefused("GET / HTTP/1.1\r\nHost: \(host)\r\n\r\n", 400, "invalid_host")
    }

    @Test(arguments: ["something-else", "100-continue, foo", "100-continuex", "200-ok", ""])
    func unsupportedExpectation(value: String) {
        expectRefused(request(headers: ["Expect: \(value)", "Content-Length: 1"], body: "x"), 417, "unsupported_expectation")
    }

    @Test func expectationRefusedEvenWithoutBody() {
        expectRefused(request("GET", headers: ["Expect: 100-continue", "Expect: foo"]), 417, "unsupported_expectation")
    }

    @Test(arguments: ["close/x", "keep-alive;x", "\"close\"", "close x"])
    func malformedConnection(value: String) {
        expectRefused(request("GET", headers: ["Connection: \(value)"]), 400, "invalid_connection")
    }

    @Test func reasonsNeverEchoMuchAndEscapeBytes() throws {
        var input = bytes("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ")
        input += [UInt8](repeating: UInt8(ascii: "z"), count: 500) + [0x80, 0xFF]
        input += bytes("\r\n\r\n")
        let error = try #require(expectRefused(input, 400, "invalid_transfer_encoding"))
        #expect(error.reason.utf8.count < 64 * 4 + 64)
        #expect(!error.reason.contains(String(repeating: "z", count: 65)))
        let gzip = try #require(expectRefused(bytes("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: g\"zip\r\n\r\n"), 400))
        #expect(gzip.reason.contains("\\x22"))
        let nul = try #require(expectRefused(bytes("GET / HTTP/1.1\r\nHost: a\r\nX: ") + [0] + bytes("\r\n\r\n"), 400))
        #expect(nul.reason.contains("0x00"))
        #expect(nul.description.hasPrefix("400 invalid_header_value: "))
    }
}
