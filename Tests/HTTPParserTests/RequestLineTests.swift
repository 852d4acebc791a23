// Malformed request lines: each refused with its exact status and code.

import HTTPParser
import Testing

@Suite("Request line")
struct RequestLineTests {
    @Test(arguments: [
        ("GET\r\n\r\n", "invalid_request_line"),
        ("GET /\r\n\r\n", "invalid_request_line"),
        ("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", "invalid_request_line"),
        (" GET / HTTP/1.1\r\nHost: a\r\n\r\n", "invalid_request_line"),
        ("GET /  HTTP/1.1\r\nHost: a\r\n\r\n", "invalid_version"),
        ("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", "invalid_version"),
        ("GET / HTTP/1.1\t\r\nHost: a\r\n\r\n", "invalid_version"),
        ("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n", "invalid_method"),
        ("GET /\tHTTP/1.1\r\nHost: a\r\n\r\n", "invalid_target"),
        ("GET / http/1.1\r\nHost: a\r\n\r\n", "invalid_version"),
        ("GET / HTTP/1.10\r\nHost: a\r\n\r\n", "invalid_version"),
        ("GET / HTTP/11\r\nHost: a\r\n\r\n", "invalid_version"),
        ("GET / HTTP/1\r\nHost: a\r\n\r\n", "invalid_version"),
        ("GET / HTTP/a.b\r\nHost: a\r\n\r\n", "invalid_version"),
        ("GET / HTTP/1.1/\r\nHost: a\r\n\r\n", "invalid_version"),
        ("GET / \r\nHost: a\r\n\r\n", "invalid_version"),
        ("G(T / HTTP/1.1\r\nHost: a\r\n\r\n", "invalid_method"),
        ("GE\u{7F}T / HTTP/1.1\r\nHost: a\r\n\r\n", "invalid_method"),
        ("GET /a#frag HTTP/1.1\r\nHost: a\r\n\r\n", "invalid_target"),
        ("GET / HTTP/1.1\r\r\nHost: a\r\n\r\n", "bare_cr"),
        ("GET / HTTP/1.1\nHost: a\n\n", "bare_lf"),
        ("GET /\n HTTP/1.1\r\nHost: a\r\n\r\n", "bare_lf"),
        ("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", "bare_lf"),
        ("\r\rGET / HTTP/1.1\r\nHost: a\r\n\r\n", "bare_cr"),
    ])
    func malformed(input: String, code: String) {
        expectRefused(input, 400, code)
    }

    @Test(arguments: ["HTTP/9.9", "HTTP/2.0", "HTTP/1.2", "HTTP/0.9", "HTTP/3.0"])
    func unsupportedVersion(version: String) {
        expectRefused("GET / \(version)\r\nHost: a\r\n\r\n", 505, "unsupported_version")
    }

    @Test func unsupportedVersionRefusedAtTheLineEnd() throws {
        // Decided when the request line ends, before any header arrives.
        var parser = HTTPRequestParser()
        parser.feed(bytes("GET / HTTP/2.0\r"))
        #expect(throws: HTTPParseError.self) { try parser.next() }
    }

    @Test(arguments: [[0x00], [0x01], [0x09], [0x1F], [0x7F], [0x80], [0xFF]] as [[UInt8]])
    func controlAndHighBytesInTarget(byte: [UInt8]) {
        expectRefused(bytes("GET /a") + byte + bytes("b HTTP/1.1\r\nHost: a\r\n\r\n"), 400, "invalid_target")
    }

    @Test func connectRefused() {
        expectRefused("CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 501, "unsupported_method")
        // Refused as soon as the request line is complete.
        var parser = HTTPRequestParser()
        parser.feed(bytes("CONNECT example.com:443 HTTP/1.1\r"))
        #expect(throws: HTTPParseError(status: 501, code: "unsupported_method", reason: "CONNECT (tunnelling) is not supported")) {
            try parser.next()
        }
    }

    @Test(arguments: [
        "GET example.com HTTP/1.1", "GET example.com:80 HTTP/1.1", "GET * HTTP/1.1", "OPTIONS *x HTTP/1.1",
        "OPTIONS ** HTTP/1.1", "GET ftp://a/ HTTP/1.1", "GET http:/a HTTP/1.1", "GET http:// HTTP/1.1",
        "GET http:///x HTTP/1.1", "GET http://user@a/ HTTP/1.1", "GET http://a:b/ HTTP/1.1", "GET ?q HTTP/1.1",
    ])
    func refusedTargetForms(line: String) {
        expectRefused(line + "\r\nHost: a\r\n\r\n", 400, "invalid_target")
    }

    @Test func absoluteFormHostMustMatchHostHeader() {
        expectRefused("GET http://a.example/ HTTP/1.1\r\nHost: b.example\r\n\r\n", 400, "host_mismatch")
        expectRefused("GET http://a.example:80/ HTTP/1.1\r\nHost: a.example\r\n\r\n", 400, "host_mismatch")
        expectRefused("GET http://a.example/ HTTP/1.1\r\n\r\n", 400, "missing_host")
    }

    @Test func longTargetIs414BeforeTheLineEnds() throws {
        var limits = HTTPLimits()
        limits.maxTargetBytes = 8_192
        // A target of exactly the limit is fine.
        let exact = "/" + String(repeating: "a", count: 8_191)
        #expect(parse("GET \(exact) HTTP/1.1\r\nHost: a\r\n\r\n", limits: limits).error == nil)

        var parser = HTTPRequestParser(limits: limits)
        parser.feed(bytes("GET /"))
        let piece = [UInt8](repeating: UInt8(ascii: "a"), count: 1024)
        var fed = 5
        var refused: HTTPParseError?
        while fed < 100 * 1024 {
            parser.feed(piece)
            fed += piece.count
            do {
                #expect(try parser.next() == nil)
            } catch {
                refused = error
                break
            }
        }
        let error = try #require(refused)
        #expect(error.status == 414)
        #expect(error.code == "target_too_long")
        // Detected within one feed of crossing the limit, long before the 100 KiB line ends.
        #expect(fed <= 4 + 8_192 + 1 + piece.count)
    }

    @Test func targetLimitIsConfigurable() {
        var limits = HTTPLimits()
        limits.maxTargetBytes = 4
        #expect(parse("GET /abc HTTP/1.1\r\nHost: a\r\n\r\n", limits: limits).error == nil)
        expectRefused("GET /abcd HTTP/1.1\r\nHost: a\r\n\r\n", 414, "target_too_long", limits: limits)
    }
}
