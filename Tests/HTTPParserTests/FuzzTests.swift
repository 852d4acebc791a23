// Seeded fuzzing: mutated valid requests must end in events or a typed error, the same however they are split.

import HTTPParser
import Testing

private let corpus: [[UInt8]] = [
    "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
    "GET /search?q=1&r=%20 HTTP/1.1\r\nHost: a.example:8080\r\nUser-Agent: fuzz/1\r\nAccept: */*\r\nConnection: keep-alive\r\n\r\n",
    "POST /v1/process HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"task\":\"echo\"}\n",
    "PUT /v1/dict/k HTTP/1.1\r\nHost: api\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n"
        + "5;ext=1\r\nhello\r\nA;q=\"x\\\"y\"\r\n0123456789\r\n0\r\nX-Sum: 9\r\n\r\n",
    "GET http://h.example/p?x HTTP/1.1\r\nHost: h.example\r\n\r\nOPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
    "POST / HTTP/1.0\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabcDELETE /x HTTP/1.1\r\nHost: b\r\nContent-Length: 0\r\n\r\n",
    "\r\nHEAD /h HTTP/1.1\r\nHost: [::1]:1\r\nX-Obs: caf\u{E9}\r\nConnection: close\r\n\r\n",
].map { Array($0.utf8) }

/// Bytes and fragments that sit on the parser's decision boundaries.
private let interestingBytes: [UInt8] = [0x00, 0x09, 0x0A, 0x0D, 0x20, 0x22, 0x2C, 0x3A, 0x3B, 0x3D, 0x5C, 0x7F, 0x80, 0xFF, 0x30, 0x46, 0x67]
private let fragments: [[UInt8]] = [
    "\r\n", "\n", "\r", " ", "\t", ":", ",", ";", "\r\n\r\n", "Content-Length: 5\r\n", "Content-Length: 0\r\n",
    "Transfer-Encoding: chunked\r\n", "Transfer-Encoding: gzip\r\n", "Host: x\r\n", "Expect: 100-continue\r\n",
    "Expect: nope\r\n", "Connection: close\r\n", "0\r\n\r\n", "FFFFFFFFFFFFFFFFF", "HTTP/1.1", "HTTP/2.0", " \r\n x",
    "CONNECT", "%00", "\u{FF}\u{FE}",
].map { Array($0.utf8) }

private func mutate(_ input: [UInt8], _ rng: inout SplitMix64) -> [UInt8] {
    var out = input
    for _ in 0..<Int.random(in: 1...4, using: &rng) {
        let at = Int.random(in: 0...out.count, using: &rng)
        switch Int.random(in: 0..<7, using: &rng) {
        case 0 where at < out.count: out[at] = UInt8.random(in: 0...255, using: &rng)
        case 1 where at < out.count: out[at] = interestingBytes.randomElement(using: &rng)!
        case 2: out.insert(interestingBytes.randomElement(using: &rng)!, at: at)
        case 3 where at < out.count: out.remove(at: at)
        case 4: out.insert(contentsOf: fragments.randomElement(using: &rng)!, at: at)
        case 5 where at < out.count:
            let end = min(out.count, at + Int.random(in: 1...16, using: &rng))
            out.insert(contentsOf: Array(out[at..<end]), at: at)
        case 6: out = Array(out.prefix(at))
        default: break
        }
    }
    return out
}

private let statuses: Set<Int> = [400, 413, 414, 417, 431, 501, 505]

@Suite("Fuzz")
struct FuzzTests {
    @Test func corpusIsValid() {
        for input in corpus {
            let outcome = parse(input)
            #expect(outcome.error == nil, "\(outcome)")
            #expect(!outcome.heads.isEmpty)
        }
    }

    @Test func mutatedRequestsAreConsistentWhateverTheSplit() {
        var rng = SplitMix64(seed: 0x4854_5450)
        var refusedByStatus: [Int: Int] = [:]
        var accepted = 0
        for iteration in 0..<20_000 {
            let input = mutate(corpus.randomElement(using: &rng)!, &rng)
            let seed = rng.next()
            let whole = parse(input, pieces: { _ in Int.max })
            let pieces = parse(input, pieces: { Int.random(in: 1...17, using: &$0) }, seed: seed)
            if whole != pieces {
                Issue.record("iteration \(iteration): split changes the outcome\n  whole: \(whole)\n  split: \(pieces)\n  input: \(input)")
                return
            }
            #expect(whole.body.count <= input.count)
            if let error = whole.error {
                #expect(statuses.contains(error.status), "\(error)")
                #expect(!error.code.isEmpty)
                #expect(error.reason.utf8.count <= 64 * 4 + 80, "\(error)")
                #expect(error.reason.utf8.allSatisfy { $0 >= 0x20 && $0 < 0x7F }, "\(error)")
                refusedByStatus[error.status, default: 0] += 1
            } else {
                accepted += 1
            }
        }
        // The mutations reach both sides of the parser's decisions.
        #expect(accepted > 1_000)
        #expect(refusedByStatus[400, default: 0] > 1_000)
        #expect(refusedByStatus.keys.count >= 4, "\(refusedByStatus)")
    }

    @Test func randomBytesNeverTrap() {
        var rng = SplitMix64(seed: 0xBAD_5EED)
        let alphabet = Array("GET /HTP1.:\r\n \tHost:a0;=\"chunkedContent-Length5".utf8) + [0x00, 0x80, 0xFF]
        for _ in 0..<2_000 {
            let n = Int.random(in: 0...300, using: &rng)
            let input = (0..<n).map { _ in alphabet.randomElement(using: &rng)! }
            let whole = parse(input, pieces: { _ in Int.max })
            let split = parse(input, pieces: { Int.random(in: 1...5, using: &$0) }, seed: rng.next())
            #expect(whole == split)
        }
    }

    @Test func everySplitPointOfAPipelinedPair() {
        let input = corpus[3] + corpus[5]
        let whole = parse(input, pieces: { _ in Int.max })
        #expect(whole.error == nil)
        #expect(whole.heads.count == 3)
        for cut in 1..<input.count {
            var first = true
            let split = parse(input, pieces: { _ in
                defer { first = false }
                return first ? cut : Int.max
            })
            #expect(split == whole, "cut at \(cut)")
        }
    }
}
