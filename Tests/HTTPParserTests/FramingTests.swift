// Request smuggling defences: every ambiguous or unsupported body framing is refused before the body.

import HTTPParser
import Testing

@Suite("Framing and smuggling")
struct FramingTests {
    @Test func transferEncodingWithContentLength() {
        expectRefused(request(headers: ["Transfer-Encoding: chunked", "Content-Length: 5"], body: "0\r\n\r\n"), 400, "conflicting_framing")
        expectRefused(request(headers: ["Content-Length: 5", "Transfer-Encoding: chunked"], body: "0\r\n\r\n"), 400, "conflicting_framing")
        expectRefused(request(headers: ["Content-Length: 0", "Transfer-Encoding: gzip"]), 400, "conflicting_framing")
    }

    @Test func duplicateContentLength() {
        expectRefused(request(headers: ["Content-Length: 5", "Content-Length: 5"], body: "hello"), 400, "invalid_content_length")
        expectRefused(request(headers: ["Content-Length: 5", "content-length: 6"], body: "hello!"), 400, "invalid_content_length")
        expectRefused(request(headers: ["Content-Length: 0", "Content-Length: 0"]), 400, "invalid_content_length")
    }

    @Test(arguments: ["5, 5", "5,5", "5,", ",5", "+5", "-5", "-0", "0x5", "5 0", "5\t0", "5.0", "5e1", "", "five", "\u{FF15}"])
    func malformedContentLength(value: String) {
        expectRefused(request(headers: ["Content-Length: \(value)"], body: "hello"), 400, "invalid_content_length")
    }

    @Test func contentLengthOverTheLimitIs413BeforeTheBody() throws {
        var parser = HTTPRequestParser()
        parser.feed(bytes(request(headers: ["Content-Length: 10485761"])))
        #expect(throws: HTTPParseError.self) { try parser.next() }
        do {
            _ = try parser.next()
        } catch {
            #expect(error.status == 413)
            #expect(error.code == "body_too_large")
        }
        expectRefused(request(headers: ["Content-Length: 99999999999999999999999999999999"]), 413, "body_too_large")
        expectRefused(request(headers: ["Content-Length: 9223372036854775808"]), 413, "body_too_large")
        var limits = HTTPLimits()
        limits.maxBodyBytes = 4
        #expect(parse(request(headers: ["Content-Length: 4"], body: "abcd"), limits: limits).error == nil)
        expectRefused(request(headers: ["Content-Length: 5"], body: "abcde"), 413, "body_too_large", limits: limits)
    }

    @Test(arguments: ["gzip", "identity", "xchunked", "chunkedx", "gzip, chunked", "deflate,chunked", "chunked, gzip", "compress"])
    func unknownTransferCodingIs501(value: String) {
        expectRefused(request(headers: ["Transfer-Encoding: \(value)"], body: "0\r\n\r\n"), 501, "unsupported_transfer_encoding")
    }

    @Test(arguments: [
        "chunked, chunked", "chunked,chunked", "chunked;x", "chunked;q=1", "chunked; a=\"b\"", "chunked,", ",chunked",
        "chunked , , chunked", "", "\"chunked\"", "chunked;", "chunked;=1", "chunked;a=", "gzip;a=\"b",
    ])
    func malformedTransferEncodingIs400(value: String) {
        expectRefused(request(headers: ["Transfer-Encoding: \(value)"], body: "0\r\n\r\n"), 400, "invalid_transfer_encoding")
    }

    @Test func transferEncodingHeaderTwice() {
        expectRefused(
            request(headers: ["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"], body: "0\r\n\r\n"), 400,
            "invalid_transfer_encoding")
        expectRefused(
            request(headers: ["Transfer-Encoding: gzip", "Transfer-Encoding: chunked"], body: "0\r\n\r\n"), 400,
            "invalid_transfer_encoding")
    }

    @Test func transferEncodingInHTTP10() {
        expectRefused("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, "invalid_transfer_encoding")
    }

    @Test func lookalikeFieldNamesDoNotFrame() throws {
        // Not the framing fields, so not framing: the body bytes are the next "request".
        let outcome = parse(request(headers: ["Transfer_Encoding: chunked", "Content-Length_: 5"]))
        #expect(outcome.error == nil)
        #expect(outcome.heads.first?.hasBody == false)
        expectRefused(request(headers: ["Content-Length : 5"], body: "hello"), 400, "invalid_header_name")
        expectRefused(request(headers: ["Transfer-Encoding\t: chunked"], body: "0\r\n\r\n"), 400, "invalid_header_name")
    }

    @Test func classicSmugglingPayloads() {
        // CL.TE: a front end using Content-Length would forward "0\r\n\r\nGET /admin..." as the body.
        expectRefused(
            request(headers: ["Content-Length: 30", "Transfer-Encoding: chunked"], body: "0\r\n\r\nGET /admin HTTP/1.1\r\nX: y"),
            400, "conflicting_framing")
        // TE.TE with an obfuscated second header.
        expectRefused(
            request(headers: ["Transfer-Encoding: chunked", "Transfer-encoding: x"], body: "0\r\n\r\n"), 400,
            "invalid_transfer_encoding")
        // A chunk size some parsers truncate to 32 bits.
        expectRefused(request(headers: ["Transfer-Encoding: chunked"], body: "100000005\r\nhello\r\n0\r\n\r\n"), 413, "body_too_large")
        // A value folded onto a second line.
        expectRefused(request(headers: ["Transfer-Encoding:", " chunked"], body: "0\r\n\r\n"), 400, "obsolete_line_folding")
    }
}
