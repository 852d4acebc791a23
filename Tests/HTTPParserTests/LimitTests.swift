// Header size and count limits: enforced as bytes arrive, with bounded memory.

import HTTPParser
import Testing

@Suite("Limits")
struct LimitTests {
    @Test func defaults() {
        let l = HTTPLimits()
        #expect(l.maxHeaderBytes == 16_384)
        #expect(l.maxHeaderCount == 100)
        #expect(l.maxTargetBytes == 8_192)
        #expect(l.maxBodyBytes == 10_485_760)
        #expect(l.maxChunkLineBytes == 1_024)
        #expect(l.maxTrailerBytes == 8_192)
    }

    @Test func headerBlockLimitIsExact() {
        var limits = HTTPLimits()
        limits.maxHeaderBytes = 64
        let base = "GET / HTTP/1.1\r\nHost: a\r\nX: "  // then the value, CRLF, CRLF
        let room = 64 - base.utf8.count - 4
        let fits = base + String(repeating: "v", count: room) + "\r\n\r\n"
        #expect(fits.utf8.count == 64)
        #expect(parse(fits, limits: limits).error == nil)
        expectRefused(base + String(repeating: "v", count: room + 1) + "\r\n\r\n", 431, "headers_too_large", limits: limits)
    }

    @Test func oneMiBOfHeadersKeepsMemoryBounded() throws {
        let limits = HTTPLimits()
        var parser = HTTPRequestParser(limits: limits)
        parser.feed(bytes("GET / HTTP/1.1\r\nHost: a\r\n"))
        let feedSize = 4096
        let line = bytes("X-Padding: " + String(repeating: "p", count: 1000) + "\r\n")
        var piece: [UInt8] = []
        while piece.count < feedSize { piece += line }
        piece = Array(piece.prefix(feedSize))
        var fed = 0
        var refused: HTTPParseError?
        while fed < 1 << 20 {
            parser.feed(piece)
            fed += piece.count
            #expect(parser.bufferedByteCount <= limits.maxHeaderBytes + feedSize)
            do {
                #expect(try parser.next() == nil)
            } catch {
                refused = error
                break
            }
        }
        let error = try #require(refused)
        #expect(error.status == 431)
        #expect(error.code == "headers_too_large")
        #expect(fed <= limits.maxHeaderBytes + feedSize)
        #expect(parser.bufferedByteCount == 0)
        // Further bytes are dropped.
        parser.feed(piece)
        #expect(parser.bufferedByteCount == 0)
    }

    @Test func headerCountLimit() {
        let hundred = (1..<100).map { "X-\($0): v" }
        #expect(parse(request("GET", headers: hundred)).error == nil)
        expectRefused(request("GET", headers: hundred + ["X-100: v"]), 431, "too_many_headers")
        var limits = HTTPLimits()
        limits.maxHeaderCount = 1
        #expect(parse("GET / HTTP/1.1\r\nHost: a\r\n\r\n", limits: limits).error == nil)
        expectRefused("GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n\r\n", 431, "too_many_headers", limits: limits)
    }

    @Test func manyTinyHeadersFedBytewiseStayLinear() throws {
        // 900 fields fed one byte at a time: resumed scanning keeps this linear, with the same outcome.
        var limits = HTTPLimits()
        limits.maxHeaderCount = 1000
        limits.maxHeaderBytes = 1 << 20
        let input = bytes(request("GET", headers: (0..<900).map { "X\($0): \($0)" }))
        let whole = parse(input, limits: limits, pieces: { _ in Int.max })
        let bytewise = parse(input, limits: limits, pieces: { _ in 1 })
        #expect(whole.error == nil)
        #expect(whole == bytewise)
        #expect(whole.heads.first?.headers.count == 901)
    }

    @Test func negativeLimitsAreZero() {
        var limits = HTTPLimits()
        limits.maxHeaderBytes = -1
        expectRefused("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 431, "headers_too_large", limits: limits)
        limits = HTTPLimits()
        limits.maxBodyBytes = -5
        #expect(parse(request(headers: ["Content-Length: 0"]), limits: limits).error == nil)
        expectRefused(request(headers: ["Content-Length: 1"], body: "x"), 413, limits: limits)
    }

    @Test func hugeLimitsDoNotOverflow() {
        var limits = HTTPLimits()
        limits.maxHeaderBytes = .max
        limits.maxTargetBytes = .max
        limits.maxTrailerBytes = .max
        limits.maxBodyBytes = .max
        limits.maxChunkLineBytes = .max
        let outcome = parse(
            request(headers: ["Transfer-Encoding: chunked"], body: "7FFFFFFFFFFFFFFF\r\nabc"), limits: limits)
        #expect(outcome.error == nil)
        #expect(outcome.body == bytes("abc"))
        expectRefused(request(headers: ["Content-Length: 9223372036854775808"]), 413, limits: limits)
        #expect(parse(request(headers: ["Content-Length: 9223372036854775807"]), limits: limits).error == nil)
    }
}
