// Seeded random-input tests: garbage and mutated frames must always end in frames or a clean WireError.

import Testing
import Wire

/// Decodes `input` in random chunk sizes and checks the decoder's contract:
/// every returned frame re-encodes to exactly the next bytes of the input, nothing is returned after an
/// error, a poisoned decoder keeps throwing the same error, and any payload that parses as a message
/// re-encodes byte for byte.
private func checkDecoding(_ input: [UInt8], maxPayload: Int, rng: inout SplitMix64) -> (frames: Int, error: WireError?) {
    var decoder = FrameDecoder(maxPayload: maxPayload)
    var consumed = 0
    var fed = 0
    var frames = 0
    while fed < input.count {
        let chunk = Int.random(in: 1...max(1, min(64, input.count - fed)), using: &rng)
        let end = min(fed + chunk, input.count)
        decoder.feed(Array(input[fed..<end]))
        fed = end
        while true {
            let frame: Frame?
            do {
                frame = try decoder.next()
            } catch {
                #expect(decoder.nextError() == error, "poisoned decoder must rethrow")
                return (frames, error)
            }
            guard let frame else { break }
            frames += 1
            let bytes = frame.encoded
            guard consumed + bytes.count <= input.count, Array(input[consumed..<(consumed + bytes.count)]) == bytes else {
                Issue.record("decoded frame does not match the input at offset \(consumed)")
                return (frames, nil)
            }
            consumed += bytes.count
            #expect(frame.payload.count <= maxPayload)
            if let message = try? Message(frame: frame) {
                #expect(message.frame(requestID: frame.requestID) == frame, "accepted payload must re-encode identically")
            }
        }
    }
    #expect(decoder.bufferedByteCount == input.count - consumed)
    return (frames, nil)
}

@Suite("Fuzz")
struct FuzzTests {
    @Test("random garbage in random chunks", arguments: [UInt64(1), 0xB01C_4EAD, 0xFFFF_FFFF_FFFF_FFFF, 20_250_101])
    func randomGarbage(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        for _ in 0..<5_000 {
            var input = rng.bytes(Int.random(in: 0...200, using: &rng))
            // Half the buffers start with a valid magic and version so later header checks get reached too.
            if input.count >= 3, Bool.random(using: &rng) {
                input[0] = 0x42
                input[1] = 0x48
                input[2] = 1
                if input.count >= 8, Bool.random(using: &rng) {
                    input[3] = UInt8.random(in: 0...9, using: &rng)
                    input[4] = 0; input[5] = 0; input[6] = 0; input[7] = 0
                }
                if input.count >= 20, Bool.random(using: &rng) {
                    // A short, plausible length so payload parsing runs on random bytes.
                    input[16] = 0; input[17] = 0; input[18] = 0
                    input[19] = UInt8.random(in: 0...UInt8(min(input.count - 20, 255)), using: &rng)
                }
            }
            _ = checkDecoding(input, maxPayload: Bool.random(using: &rng) ? 64 : Wire.defaultMaxPayload, rng: &rng)
        }
    }

    @Test("valid frames with random bit flips", arguments: [UInt64(7), 42, 0x5EED])
    func mutatedFrames(seed: UInt64) {
        var rng = SplitMix64(seed: seed)
        let corpus = Samples.small.map(\.bytes)
        var outcomes = (frames: 0, errors: 0)
        for _ in 0..<2_000 {
            // One to three frames back to back, then one to eight bit flips anywhere.
            var input: [UInt8] = []
            for _ in 0..<Int.random(in: 1...3, using: &rng) { input += corpus.randomElement(using: &rng)! }
            for _ in 0..<Int.random(in: 1...8, using: &rng) {
                let bit = Int.random(in: 0..<(input.count * 8), using: &rng)
                input[bit / 8] ^= 1 << UInt8(bit % 8)
            }
            let result = checkDecoding(input, maxPayload: Wire.defaultMaxPayload, rng: &rng)
            outcomes.frames += result.frames
            if result.error != nil { outcomes.errors += 1 }
        }
        // Both paths were exercised.
        #expect(outcomes.frames > 0)
        #expect(outcomes.errors > 0)
    }

    @Test("random payloads for every frame type", arguments: FrameType.allCases)
    func randomPayloads(type: FrameType) {
        var rng = SplitMix64(seed: 0xC0FFEE &+ UInt64(type.rawValue))
        var accepted = 0
        for _ in 0..<1_000 {
            // Often very short, with a small first byte, so fixed-size payloads (goaway, cancel) hit too.
            var payload = rng.bytes(Int.random(in: Bool.random(using: &rng) ? 0...2 : 0...40, using: &rng))
            if !payload.isEmpty, Bool.random(using: &rng) { payload[0] = UInt8.random(in: 0...9, using: &rng) }
            // Small length prefixes where a string length might sit, so strings get parsed too.
            for offset in [0, 2, 6] where payload.count > offset + 1 && Bool.random(using: &rng) {
                payload[offset] = 0
                payload[offset + 1] = UInt8.random(in: 0...UInt8(payload.count - offset - 2), using: &rng)
            }
            let frame = Frame(type: type, requestID: rng.next(), payload: payload)
            do {
                let message = try Message(frame: frame)
                accepted += 1
                #expect(message.frame(requestID: frame.requestID) == frame)
            } catch {
                guard case .malformedPayload(let got, _) = error else {
                    Issue.record("unexpected \(error)")
                    continue
                }
                #expect(got == type)
            }
        }
        // Each type has random payloads that parse (cancel only when empty, goaway only in 1...4).
        #expect(accepted > 0)
    }
}
