// Request-parsing cost on the hot path: ns per request for a typical POST, alone and pipelined.
// Run: swift build -c release && .build/release/bulkhead-bench-http [iterations]

import HTTPParser

/// A 250-byte POST with a 30-byte JSON body, as an API client would send it.
let typicalPost: [UInt8] = Array(
    ("POST /v1/process HTTP/1.1\r\n" + "Host: api.bulkhead.example\r\n" + "User-Agent: curl/8.5.0\r\n"
        + "Accept: */*\r\n" + "Authorization: Bearer bk_live_4f9a1c2e7b3d5a6f8e\r\n"
        + "Content-Type: application/json\r\n" + "X-Request-Id: 7d0f1a2b\r\n" + "Content-Length: 30\r\n\r\n"
        + "{\"task\":\"echo\",\"data\":\"hello\"}").utf8)

enum HTTPParseBenchmark {
    static func main() {
        let iterations = CommandLine.arguments.dropFirst().first.flatMap { Int($0) } ?? 1_000_000
        precondition(typicalPost.count == 250, "typical request is \(typicalPost.count) bytes")
        let pipelined = Array([[UInt8]](repeating: typicalPost, count: 10).joined())
        print("request: \(typicalPost.count) bytes (30-byte body); iterations: \(iterations)")
        _ = run(typicalPost, requestsPerFeed: 1, iterations: iterations / 10)  // warm-up
        report("one request per feed", run(typicalPost, requestsPerFeed: 1, iterations: iterations))
        report("10 pipelined requests in one feed", run(pipelined, requestsPerFeed: 10, iterations: iterations / 10))
        report("new parser per request", runFresh(typicalPost, iterations: iterations))
    }

    static func report(_ name: String, _ nsPerRequest: Double) {
        let whole = Int(nsPerRequest)
        let tenth = Int((nsPerRequest - Double(whole)) * 10)
        print("\(name): \(whole).\(tenth) ns/request (\(Int(1e9 / nsPerRequest)) requests/s on one core)")
    }

    /// One long-lived parser, as on a keep-alive connection: feed, then drain every event.
    static func run(_ input: [UInt8], requestsPerFeed: Int, iterations: Int) -> Double {
        var parser = HTTPRequestParser()
        var sink = 0
        let start = ContinuousClock.now
        for _ in 0..<iterations {
            parser.feed(input)
            sink &+= drain(&parser)
        }
        let elapsed = ContinuousClock.now - start
        precondition(sink == iterations * requestsPerFeed * (30 + 8), "unexpected events")
        return nanoseconds(elapsed) / Double(iterations * requestsPerFeed)
    }

    static func runFresh(_ input: [UInt8], iterations: Int) -> Double {
        var sink = 0
        let start = ContinuousClock.now
        for _ in 0..<iterations {
            var parser = HTTPRequestParser()
            parser.feed(input)
            sink &+= drain(&parser)
        }
        let elapsed = ContinuousClock.now - start
        precondition(sink == iterations * (30 + 8), "unexpected events")
        return nanoseconds(elapsed) / Double(iterations)
    }

    /// Drains the parser; returns body bytes plus header counts so the work cannot be optimised away.
    @inline(never)
    static func drain(_ parser: inout HTTPRequestParser) -> Int {
        var n = 0
        do {
            while let event = try parser.next() {
                switch event {
                case .head(let head): n += head.headers.count + (head.contentLength == 30 ? 1 : 0)
                case .body(let bytes): n += bytes.count
                case .end: break
                }
            }
        } catch {
            fatalError("benchmark request refused: \(error)")
        }
        return n
    }

    static func nanoseconds(_ d: Duration) -> Double {
        let (seconds, attoseconds) = d.components
        return Double(seconds) * 1e9 + Double(attoseconds) / 1e9
    }
}

HTTPParseBenchmark.main()
