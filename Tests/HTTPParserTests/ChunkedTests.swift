// The chunked coding: sizes, extensions, the CRLF after data, body limits and trailers.

import HTTPParser
import Testing

private func chunked(_ body: String) -> String {
    request(headers: ["Transfer-Encoding: chunked"], body: body)
}

@Suite("Chunked bodies")
struct ChunkedTests {
    @Test(arguments: [
        "g\r\n", "-1\r\n", " 5\r\nhello\r\n", "5 \r\nhello\r\n", "0x5\r\nhello\r\n", "\r\n", "5\t\r\nhello\r\n",
        "+5\r\nhello\r\n", "00000000000000005\r\nhello\r\n", "FFFFFFFFFFFFFFFF\r\n", "8000000000000000\r\n",
        "12345678901234567890\r\n", ";a=b\r\n", "5\r\r\n",
    ])
    func invalidChunkSize(body: String) {
        let error = expectRefused(chunked(body), 400)
        #expect(["invalid_chunk_size", "bare_cr"].contains(error?.code ?? ""), "\(String(describing: error))")
    }

    @Test func sixteenHexDigitsAreFine() throws {
        let outcome = parse(chunked("0000000000000005\r\nhello\r\n0\r\n\r\n"))
        #expect(outcome.error == nil)
        #expect(outcome.body == bytes("hello"))
        // The largest 63-bit size parses, and is then over the body limit.
        expectRefused(chunked("7FFFFFFFFFFFFFFF\r\n"), 413, "body_too_large")
    }

    @Test(arguments: ["5\r\nhelloX\r\n0\r\n\r\n", "5\r\nhello\n0\r\n\r\n", "5\r\nhello\r0\r\n\r\n", "5\r\nhello0\r\n\r\n", "3\r\nhello\r\n0\r\n\r\n"])
    func missingCRLFAfterData(body: String) {
        expectRefused(chunked(body), 400, "invalid_chunk_framing")
    }

    @Test(arguments: [
        "5;\r\n", "5;=a\r\n", "5;a=\r\n", "5;a=\"open\r\n", "5;a b\r\n", "5 ;a\r\n", "5;a=b c\r\n", "5;a=\"x\"y\r\n",
        "5;a=\"\\\u{1}\"\r\n", "5;a=\"\u{1}\"\r\n", "5;;a\r\n", "5;a=b=c\r\n", "5;a=\"x\"\"y\"\r\n", "5;a=,\r\n",
    ])
    func malformedExtension(line: String) {
        let error = expectRefused(chunked(line + "hello\r\n0\r\n\r\n"), 400)
        #expect(["invalid_chunk_extension", "invalid_chunk_size"].contains(error?.code ?? ""), "\(String(describing: error))")
    }

    @Test func wellFormedExtensions() throws {
        let body = "5;a;b=c;d=\"e f\\\"g\\\\\";h=\"\"\r\nhello\r\n0;z\r\n\r\n"
        let outcome = parse(chunked(body))
        #expect(outcome.error == nil)
        #expect(outcome.body == bytes("hello"))
    }

    @Test func chunkLineLimit() {
        var limits = HTTPLimits()
        limits.maxChunkLineBytes = 32
        let ok = "5;" + String(repeating: "x", count: 30)
        #expect(parse(chunked(ok + "\r\nhello\r\n0\r\n\r\n"), limits: limits).error == nil)
        expectRefused(chunked(ok + "x\r\nhello\r\n0\r\n\r\n"), 400, "chunk_line_too_long", limits: limits)
        // Detected before the line ends: a line of endless zeros or extensions is never waited for.
        expectRefused(chunked(String(repeating: "0", count: 2000)), 400)
        expectRefused(chunked("1;" + String(repeating: "a", count: 5000)), 400, "chunk_line_too_long")
    }

    @Test func chunkedTotalOverLimitIs413BeforeTheData() throws {
        var limits = HTTPLimits()
        limits.maxBodyBytes = 10
        #expect(parse(chunked("5\r\nhello\r\n5\r\nworld\r\n0\r\n\r\n"), limits: limits).error == nil)
        var parser = HTTPRequestParser(limits: limits)
        parser.feed(bytes(chunked("5\r\nhello\r\n6\r\n")))
        guard case .head = try parser.next() else { throw Failure("no head") }
        #expect(try parser.next() == .body(bytes("hello")))
        #expect(throws: HTTPParseError(status: 413, code: "body_too_large", reason: "chunked body exceeds the 10-byte limit")) {
            try parser.next()
        }
    }

    @Test(arguments: ["Content-Length: 5", "transfer-encoding: chunked", "Host: evil.example", "HOST: a"])
    func forbiddenTrailers(line: String) {
        expectRefused(chunked("5\r\nhello\r\n0\r\n\(line)\r\n\r\n"), 400, "forbidden_trailer")
    }

    @Test func trailerFieldsAreValidatedLikeHeaders() {
        expectRefused(chunked("0\r\nX : y\r\n\r\n"), 400, "invalid_header_name")
        expectRefused(chunked("0\r\nX: y\r\n z\r\n\r\n"), 400, "obsolete_line_folding")
        expectRefused(chunked("0\r\nX: y\n\r\n"), 400, "bare_lf")
        expectRefused(bytes(chunked("0\r\nX: ")) + [0] + bytes("\r\n\r\n"), 400, "invalid_header_value")
        expectRefused(chunked("0\r\n\r\r\n"), 400, "bare_cr")
    }

    @Test func trailerLimits() {
        var limits = HTTPLimits()
        limits.maxTrailerBytes = 20
        // "X: 0123456789abcd\r\n" is 19 bytes, plus the final CRLF: 21.
        #expect(parse(chunked("0\r\nX: 0123456789abc\r\n\r\n"), limits: limits).error == nil)
        expectRefused(chunked("0\r\nX: 0123456789abcd\r\n\r\n"), 431, "trailers_too_large", limits: limits)
        limits = HTTPLimits()
        limits.maxHeaderCount = 3
        #expect(parse(chunked("0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"), limits: limits).error == nil)
        expectRefused(chunked("0\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n"), 431, "too_many_trailers", limits: limits)
    }

    @Test func bodyEventsArriveBeforeTheChunkEnds() throws {
        var parser = HTTPRequestParser()
        parser.feed(bytes(chunked("a\r\nhel")))
        guard case .head = try parser.next() else { throw Failure("no head") }
        #expect(try parser.next() == .body(bytes("hel")))
        #expect(try parser.next() == nil)
        parser.feed(bytes("lo worl"))
        #expect(try parser.next() == .body(bytes("lo worl")))
        parser.feed(bytes("\r\n0\r\n"))
        #expect(try parser.next() == nil)
        parser.feed(bytes("\r\n"))
        #expect(try parser.next() == .end(trailers: HTTPHeaders()))
        #expect(parser.isIdle)
    }
}
