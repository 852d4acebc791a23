// Shared test helpers: a deterministic PRNG and drivers that feed a parser in chosen pieces.

import HTTPParser
import Testing

/// SplitMix64: tiny, fast and fully deterministic, so every fuzz failure is reproducible from its seed.
struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z &>> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z &>> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z &>> 31)
    }
}

/// Everything a parser produced from one input: its events (consecutive bodies merged, since how a body
/// is split depends on how it was fed) and the error it ended with, if any.
struct Outcome: Equatable, CustomStringConvertible {
    var events: [HTTPEvent] = []
    var error: HTTPParseError?

    var heads: [HTTPRequestHead] {
        events.compactMap { if case .head(let h) = $0 { h } else { nil } }
    }

    var body: [UInt8] {
        var out: [UInt8] = []
        for case .body(let b) in events { out += b }
        return out
    }

    var trailers: [HTTPHeaders] {
        events.compactMap { if case .end(let t) = $0 { t } else { nil } }
    }

    var description: String {
        let names = events.map { e -> String in
            switch e {
            case .head(let h): "head(\(h.method) \(h.target))"
            case .body(let b): "body(\(b.count))"
            case .end(let t): "end(\(t.count))"
            }
        }
        return "\(names) error: \(error.map(String.init(describing:)) ?? "none")"
    }
}

func bytes(_ s: String) -> [UInt8] { Array(s.utf8) }

/// Feeds `input` in pieces of the given sizes (the last one repeats), draining `next()` after every feed,
/// and checks the parser's contract on the way: it never yields more body bytes than were fed, never an
/// empty body, never loops without progress, and rethrows the same error once it has failed.
func parse(
    _ input: [UInt8], limits: HTTPLimits = .init(), pieces: (inout SplitMix64) -> Int, seed: UInt64 = 1,
    sourceLocation: SourceLocation = #_sourceLocation
) -> Outcome {
    var parser = HTTPRequestParser(limits: limits)
    var rng = SplitMix64(seed: seed)
    var raw: [HTTPEvent] = []
    var fed = 0
    var bodyBytes = 0
    var error: HTTPParseError?
    outer: while fed < input.count {
        let n = min(max(1, pieces(&rng)), input.count - fed)
        input[fed..<(fed + n)].withUnsafeBytes { parser.feed($0) }
        fed += n
        var steps = 0
        while true {
            steps += 1
            guard steps < 10_000 else {
                Issue.record("next() keeps returning events without progress", sourceLocation: sourceLocation)
                break outer
            }
            do {
                guard let event = try parser.next() else { break }
                if case .body(let b) = event {
                    #expect(!b.isEmpty, "empty body event", sourceLocation: sourceLocation)
                    bodyBytes += b.count
                    #expect(bodyBytes <= fed, "more body bytes than fed", sourceLocation: sourceLocation)
                }
                raw.append(event)
            } catch let e {
                error = e
                break outer
            }
        }
    }
    if let error {
        // Poisoned: the same error again, and later bytes are dropped.
        parser.feed(bytes("GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
        #expect(parser.bufferedByteCount == 0, sourceLocation: sourceLocation)
        do {
            _ = try parser.next()
            Issue.record("a failed parser returned normally", sourceLocation: sourceLocation)
        } catch let again {
            #expect(again == error, sourceLocation: sourceLocation)
        }
    }
    var merged: [HTTPEvent] = []
    for event in raw {
        if case .body(let b) = event, case .body(let previous) = merged.last {
            merged[merged.count - 1] = .body(previous + b)
        } else {
            merged.append(event)
        }
    }
    return Outcome(events: merged, error: error)
}

/// The outcome of `input` fed in one piece, after checking that one byte at a time gives the same.
func parse(_ input: [UInt8], limits: HTTPLimits = .init(), sourceLocation: SourceLocation = #_sourceLocation)
    -> Outcome
{
    let whole = parse(input, limits: limits, pieces: { _ in Int.max }, sourceLocation: sourceLocation)
    if input.count <= 4096 {
        let bytewise = parse(input, limits: limits, pieces: { _ in 1 }, sourceLocation: sourceLocation)
        #expect(bytewise == whole, "one byte at a time differs from one piece", sourceLocation: sourceLocation)
    }
    return whole
}

func parse(_ input: String, limits: HTTPLimits = .init(), sourceLocation: SourceLocation = #_sourceLocation)
    -> Outcome
{
    parse(bytes(input), limits: limits, sourceLocation: sourceLocation)
}

/// Parses one complete request that must succeed, and returns its head.
func head(_ input: String, sourceLocation: SourceLocation = #_sourceLocation) throws -> HTTPRequestHead {
    let outcome = parse(input, sourceLocation: sourceLocation)
    #expect(outcome.error == nil, "unexpected \(outcome.error.map(String.init(describing:)) ?? "")", sourceLocation: sourceLocation)
    return try #require(outcome.heads.first, sourceLocation: sourceLocation)
}

/// Expects `input` to be refused with `status` (and `code`, when given), and returns the error.
@discardableResult
func expectRefused(
    _ input: String, _ status: Int, _ code: String? = nil, limits: HTTPLimits = .init(),
    sourceLocation: SourceLocation = #_sourceLocation
) -> HTTPParseError? {
    expectRefused(bytes(input), status, code, limits: limits, sourceLocation: sourceLocation)
}

@discardableResult
func expectRefused(
    _ input: [UInt8], _ status: Int, _ code: String? = nil, limits: HTTPLimits = .init(),
    sourceLocation: SourceLocation = #_sourceLocation
) -> HTTPParseError? {
    let outcome = parse(input, limits: limits, sourceLocation: sourceLocation)
    guard let error = outcome.error else {
        Issue.record("accepted: \(outcome)", sourceLocation: sourceLocation)
        return nil
    }
    #expect(error.status == status, "\(error)", sourceLocation: sourceLocation)
    if let code { #expect(error.code == code, "\(error)", sourceLocation: sourceLocation) }
    #expect(error.reason.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F }, "\(error)", sourceLocation: sourceLocation)
    return error
}

/// A minimal valid HTTP/1.1 request with extra header lines (each without CRLF) and a body.
func request(_ method: String = "POST", _ target: String = "/", headers: [String], body: String = "") -> String {
    "\(method) \(target) HTTP/1.1\r\nHost: example.com\r\n" + headers.map { $0 + "\r\n" }.joined() + "\r\n" + body
}
