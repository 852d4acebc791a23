// Requests that must be accepted, and exactly what the parser makes of them.

import HTTPParser
import Testing

@Suite("Valid requests")
struct ValidRequestTests {
    @Test func simpleGet() throws {
        let outcome = parse("GET /index.html HTTP/1.1\r\nHost: example.com\r\nUser-Agent: t/1\r\nAccept: */*\r\n\r\n")
        #expect(outcome.error == nil)
        #expect(outcome.events.count == 2)
        let h = try #require(outcome.heads.first)
        #expect(h.method == .get)
        #expect(h.target == "/index.html")
        #expect(h.path == "/index.html")
        #expect(h.query == nil)
        #expect(h.version == .http1_1)
        #expect(h.host == "example.com")
        #expect(h.contentLength == nil)
        #expect(!h.isChunked)
        #expect(!h.hasBody)
        #expect(h.keepAlive)
        #expect(!h.expectsContinue)
        #expect(h.headers.count == 3)
        #expect(h.headers["user-agent"] == "t/1")
        #expect(h.headers["ACCEPT"] == "*/*")
        #expect(outcome.events.last == .end(trailers: HTTPHeaders()))
    }

    @Test func postWithContentLength() throws {
        let outcome = parse(request(headers: ["Content-Type: application/json", "Content-Length: 13"], body: "{\"task\":\"x\"}!"))
        #expect(outcome.error == nil)
        let h = try #require(outcome.heads.first)
        #expect(h.method == .post)
        #expect(h.contentLength == 13)
        #expect(h.hasBody)
        #expect(outcome.body == bytes("{\"task\":\"x\"}!"))
        #expect(outcome.events.count == 3)
        guard case .end(let trailers) = outcome.events.last else {
            Issue.record("no end")
            return
        }
        #expect(trailers.isEmpty)
    }

    @Test func contentLengthZeroAndLeadingZeros() throws {
        let zero = parse(request(headers: ["Content-Length: 0"]))
        #expect(zero.error == nil)
        #expect(zero.events.count == 2)
        #expect(zero.heads.first?.contentLength == 0)
        #expect(zero.heads.first?.hasBody == false)
        let padded = parse(request(headers: ["Content-Length: 005"], body: "hello"))
        #expect(padded.heads.first?.contentLength == 5)
        #expect(padded.body == bytes("hello"))
        // Leading and trailing OWS belong to the field syntax, not to the value.
        let spaced = parse(request(headers: ["Content-Length: \t 5 \t"], body: "hello"))
        #expect(spaced.heads.first?.contentLength == 5)
    }

    @Test func chunkedWithExtensionsAndTrailers() throws {
        let input = request(
            headers: ["Transfer-Encoding: chunked"],
            body: "5;name=value;q=\"quoted \\\" str\"\r\nhello\r\n6;flag\r\n world\r\n"
                + "000;last\r\nX-Checksum: abc\r\nX-Other:  1 \r\n\r\n")
        let outcome = parse(input)
        #expect(outcome.error == nil)
        let h = try #require(outcome.heads.first)
        #expect(h.isChunked)
        #expect(h.contentLength == nil)
        #expect(h.hasBody)
        #expect(outcome.body == bytes("hello world"))
        let trailers = try #require(outcome.trailers.first)
        #expect(trailers == ["X-Checksum": "abc", "x-other": "1"])
        #expect(trailers["x-checksum"] == "abc")
    }

    @Test func chunkedSizesInHexAnyCase() throws {
        let body = String(repeating: "a", count: 0x1A) + "\r\n"
        let outcome = parse(request(headers: ["Transfer-Encoding: Chunked"], body: "1a\r\n" + body + "0000000000000000\r\n\r\n"))
        #expect(outcome.error == nil)
        #expect(outcome.body.count == 26)
        let upper = parse(request(headers: ["transfer-encoding: CHUNKED"], body: "1A\r\n" + body + "0\r\n\r\n"))
        #expect(upper.body.count == 26)
    }

    @Test func chunkedEmptyBody() throws {
        let outcome = parse(request(headers: ["Transfer-Encoding: chunked"], body: "0\r\n\r\n"))
        #expect(outcome.error == nil)
        #expect(outcome.events.count == 2)
        #expect(outcome.trailers == [HTTPHeaders()])
    }

    @Test(arguments: [
        ("HTTP/1.1", nil, true), ("HTTP/1.1", "close", false), ("HTTP/1.1", "Close", false),
        ("HTTP/1.1", "keep-alive", true), ("HTTP/1.1", "Keep-Alive, Upgrade", true),
        ("HTTP/1.1", "upgrade, close", false), ("HTTP/1.1", "close, keep-alive", false),
        ("HTTP/1.1", " , close ,", false),
        ("HTTP/1.0", nil, false), ("HTTP/1.0", "keep-alive", true), ("HTTP/1.0", "KEEP-ALIVE", true),
        ("HTTP/1.0", "close", false), ("HTTP/1.0", "keep-alive, close", false), ("HTTP/1.0", "te", false),
    ] as [(String, String?, Bool)])
    func keepAliveRules(version: String, connection: String?, expected: Bool) throws {
        let h = try head(
            "GET / \(version)\r\nHost: a\r\n" + (connection.map { "Connection: \($0)\r\n" } ?? "") + "\r\n")
        #expect(h.keepAlive == expected)
        #expect(h.version == (version == "HTTP/1.0" ? .http1_0 : .http1_1))
    }

    @Test func connectionTokensFromSeveralHeaders() throws {
        let h = try head("GET / HTTP/1.0\r\nConnection: foo\r\nConnection: keep-alive\r\n\r\n")
        #expect(h.keepAlive)
        let c = try head("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive\r\nconnection: close\r\n\r\n")
        #expect(!c.keepAlive)
    }

    @Test func http10WithoutHost() throws {
        let h = try head("GET /x HTTP/1.0\r\n\r\n")
        #expect(h.host == "")
        #expect(h.version == .http1_0)
        #expect(!h.keepAlive)
        #expect(h.headers.isEmpty)
    }

    @Test func expectContinue() throws {
        let h = try head(request(headers: ["Expect: 100-continue", "Content-Length: 2"], body: "ok"))
        #expect(h.expectsContinue)
        let mixedCase = try head(request(headers: ["Expect: 100-Continue", "Transfer-Encoding: chunked"], body: "0\r\n\r\n"))
        #expect(mixedCase.expectsContinue)
        // Without a body there is nothing to wait for; HTTP/1.0 clients do not wait (RFC 9110 §10.1.1).
        let noBody = try head(request("GET", headers: ["Expect: 100-continue"]))
        #expect(!noBody.expectsContinue)
        let http10 = try head("POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\nx")
        #expect(!http10.expectsContinue)
    }

    @Test func absoluteFormTarget() throws {
        let h = try head("GET http://example.com:8080/a/b?x=1&y HTTP/1.1\r\nHost: example.com:8080\r\n\r\n")
        #expect(h.target == "http://example.com:8080/a/b?x=1&y")
        #expect(h.host == "example.com:8080")
        #expect(h.path == "/a/b")
        #expect(h.query == "x=1&y")
        let bare = try head("GET HTTPS://Example.COM HTTP/1.1\r\nHost: example.com\r\n\r\n")
        #expect(bare.path == "/")
        #expect(bare.query == nil)
        #expect(bare.host == "Example.COM")
        let queryOnly = try head("GET http://a?q HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(queryOnly.path == "/")
        #expect(queryOnly.query == "q")
        // HTTP/1.0 may omit Host: the target names it.
        let old = try head("GET http://b.example/x HTTP/1.0\r\n\r\n")
        #expect(old.host == "b.example")
        let ipv6 = try head("GET http://[::1]:80/ HTTP/1.1\r\nHost: [::1]:80\r\n\r\n")
        #expect(ipv6.host == "[::1]:80")
    }

    @Test func optionsAsterisk() throws {
        let h = try head("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(h.method == .options)
        #expect(h.target == "*")
        #expect(h.path == "*")
        #expect(h.query == nil)
    }

    @Test(arguments: [
        ("/search?q=a&b=c?d", "/search", "q=a&b=c?d"), ("/p?", "/p", ""), ("/?x", "/", "x"),
        ("/a/b/c", "/a/b/c", nil), ("//double/slash", "//double/slash", nil),
        ("/%20enc%2Fode?k=%FF", "/%20enc%2Fode", "k=%FF"), ("/~user/{x}|y", "/~user/{x}|y", nil),
    ] as [(String, String, String?)])
    func queryStrings(target: String, path: String, query: String?) throws {
        let h = try head("GET \(target) HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(h.target == target)
        #expect(h.path == path)
        #expect(h.query == query)
    }

    @Test func obsTextInValues() throws {
        var input = bytes("GET / HTTP/1.1\r\nHost: a\r\nX-Name: caf")
        input += [0xC3, 0xA9, 0x20, 0xFF, 0x80]
        input += bytes("\r\n\r\n")
        let outcome = parse(input)
        #expect(outcome.error == nil)
        let h = try #require(outcome.heads.first)
        #expect(h.headers["x-name"] == "café \u{FFFD}\u{FFFD}")
    }

    @Test func headerValueWhitespace() throws {
        let h = try head("GET / HTTP/1.1\r\nHost: a\r\nX-A:  a \t b \t \r\nX-B:\r\nX-C: \t \r\nX-D:v\r\n\r\n")
        #expect(h.headers["x-a"] == "a \t b")
        #expect(h.headers["x-b"] == "")
        #expect(h.headers["x-c"] == "")
        #expect(h.headers["x-d"] == "v")
    }

    @Test func headerOrderAndDuplicatesKept() throws {
        let h = try head("GET / HTTP/1.1\r\nHost: a\r\nAccept: 1\r\nX: y\r\naccept: 2\r\nACCEPT: 3\r\n\r\n")
        #expect(h.headers.values("Accept") == ["1", "2", "3"])
        #expect(h.headers["accept"] == "1")
        #expect(h.headers.map(\.name) == ["Host", "Accept", "X", "accept", "ACCEPT"])
        #expect(h.headers.contains("x"))
        #expect(!h.headers.contains("missing"))
        #expect(h.headers["missing"] == nil)
        #expect(h.headers.values("missing") == [])
    }

    @Test func leadingEmptyLinesIgnored() throws {
        let h = try head("\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(h.method == .get)
        expectRefused(String(repeating: "\r\n", count: 5) + "GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400, "invalid_request_line")
    }

    @Test(arguments: [
        ("GET", HTTPMethod.get), ("HEAD", .head), ("POST", .post), ("PUT", .put), ("DELETE", .delete),
        ("OPTIONS", .options), ("PATCH", .patch), ("TRACE", .other("TRACE")), ("get", .other("get")),
        ("PROPFIND", .other("PROPFIND")), ("M-SEARCH", .other("M-SEARCH")), ("!#$%&'*+-.^_`|~09", .other("!#$%&'*+-.^_`|~09")),
    ])
    func methods(token: String, method: HTTPMethod) throws {
        let h = try head("\(token) / HTTP/1.1\r\nHost: a\r\n\r\n")
        #expect(h.method == method)
        #expect(HTTPMethod(token) == method)
        #expect(method.name == token)
    }

    @Test(arguments: ["GET", "HEAD", "DELETE", "OPTIONS"])
    func bodiesOnAnyMethodWhenFramed(method: String) throws {
        let outcome = parse(request(method, headers: ["Content-Length: 3"], body: "abc"))
        #expect(outcome.error == nil)
        #expect(outcome.body == bytes("abc"))
    }

    @Test(arguments: ["a", "a.b-c_d~e", "example.com:443", "[::1]", "[2001:db8::1]:8443", "127.0.0.1:1", "xn--bcher-kva.example", ""])
    func validHosts(host: String) throws {
        let h = try head("GET / HTTP/1.1\r\nHost: \(host)\r\n\r\n")
        #expect(h.host == host)
    }

    @Test func pipelinedTenRequestsAtOnceAndBytewise() throws {
        var input: [UInt8] = []
        for i in 0..<10 {
            switch i % 3 {
            case 0: input += bytes("GET /r\(i) HTTP/1.1\r\nHost: a\r\n\r\n")
            case 1: input += bytes(request(headers: ["Content-Length: 4"], body: "b\(i)xy".prefix(4).description))
            default: input += bytes(request(headers: ["Transfer-Encoding: chunked"], body: "3\r\nc\(i)z\r\n0\r\nT: \(i)\r\n\r\n"))
            }
        }
        let whole = parse(input, pieces: { _ in Int.max })
        let bytewise = parse(input, pieces: { _ in 1 })
        let random = parse(input, pieces: { Int.random(in: 1...40, using: &$0) }, seed: 7)
        #expect(whole.error == nil)
        #expect(whole.heads.count == 10)
        #expect(whole.trailers.count == 10)
        #expect(whole == bytewise)
        #expect(whole == random)
        #expect(whole.heads.map(\.method) == [.get, .post, .post, .get, .post, .post, .get, .post, .post, .get])
        #expect(whole.trailers[2]["t"] == "2")
    }

    @Test func pipelinedEventsInterleaveCorrectly() throws {
        var parser = HTTPRequestParser()
        parser.feed(bytes(request(headers: ["Content-Length: 2"], body: "hi") + "GET /next HTTP/1.1\r\nHost: a\r\n\r\n"))
        guard case .head(let first) = try parser.next() else { throw Failure("no head") }
        #expect(first.method == .post)
        #expect(try parser.next() == .body(bytes("hi")))
        #expect(try parser.next() == .end(trailers: HTTPHeaders()))
        #expect(!parser.isIdle)
        guard case .head(let second) = try parser.next() else { throw Failure("no second head") }
        #expect(second.target == "/next")
        #expect(try parser.next() == .end(trailers: HTTPHeaders()))
        #expect(try parser.next() == nil)
        #expect(parser.isIdle)
        #expect(parser.bufferedByteCount == 0)
    }

    @Test func oneMiBBodyStreamsInOneKiBFeeds() throws {
        var rng = SplitMix64(seed: 42)
        let body = (0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        var parser = HTTPRequestParser()
        parser.feed(bytes(request(headers: ["Content-Length: \(body.count)"])))
        guard case .head(let h) = try parser.next() else { throw Failure("no head") }
        #expect(h.contentLength == body.count)
        #expect(try parser.next() == nil)
        var received: [UInt8] = []
        var offset = 0
        var ended = false
        while offset < body.count {
            parser.feed(Array(body[offset..<(offset + 1024)]))
            offset += 1024
            // Streaming: every feed yields its bytes at once, the buffer never grows.
            #expect(parser.bufferedByteCount <= 1024)
            while let event = try parser.next() {
                switch event {
                case .body(let b): received += b
                case .end: ended = true
                case .head: Issue.record("unexpected head")
                }
            }
            #expect(received.count == offset)
        }
        #expect(ended)
        #expect(received == body)
        #expect(parser.isIdle)
    }

    @Test func oneMiBChunkedBodyStreams() throws {
        var rng = SplitMix64(seed: 43)
        let body = (0..<(1 << 20)).map { _ in UInt8.random(in: 0...255, using: &rng) }
        var encoded = bytes(request(headers: ["Transfer-Encoding: chunked"]))
        var offset = 0
        while offset < body.count {
            let n = min(body.count - offset, Int.random(in: 1...9000, using: &rng))
            encoded += bytes(String(n, radix: 16) + "\r\n") + body[offset..<(offset + n)] + bytes("\r\n")
            offset += n
        }
        encoded += bytes("0\r\n\r\n")
        let outcome = parse(encoded, pieces: { _ in 1024 })
        #expect(outcome.error == nil)
        #expect(outcome.body == body)
        #expect(outcome.events.count == 3)
    }

    @Test func idleAndBufferedBytes() throws {
        var parser = HTTPRequestParser()
        #expect(parser.isIdle)
        #expect(try parser.next() == nil)
        parser.feed(bytes("G"))
        #expect(!parser.isIdle)
        #expect(try parser.next() == nil)
        #expect(parser.bufferedByteCount == 1)
        parser.feed(bytes("ET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nab"))
        guard case .head = try parser.next() else { throw Failure("no head") }
        #expect(!parser.isIdle)
        #expect(try parser.next() == .body(bytes("ab")))
        #expect(try parser.next() == nil)
        parser.feed(bytes("c"))
        #expect(try parser.next() == .body(bytes("c")))
        #expect(!parser.isIdle)
        #expect(try parser.next() == .end(trailers: HTTPHeaders()))
        #expect(parser.isIdle)
        #expect(parser.bufferedByteCount == 0)
    }

    @Test func feedFromRawBufferAndEmptyFeeds() throws {
        var parser = HTTPRequestParser()
        parser.feed([])
        let input = bytes("GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        input.withUnsafeBytes { parser.feed($0) }
        guard case .head(let h) = try parser.next() else { throw Failure("no head") }
        #expect(h.host == "a")
    }
}

struct Failure: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
