// The byte classes and the eight-bytes-at-a-time scanners agree with the RFC grammar, byte for byte.

import Testing

@testable import HTTPParser

private let tchars = Set("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)
private let regName = Set("-._~%0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".utf8)

@Suite("Byte classes")
struct ByteClassTests {
    @Test func everyByte() {
        for v in 0...255 {
            let b = UInt8(v)
            #expect(ASCII.isTchar(b) == tchars.contains(b), "tchar \(b)")
            #expect(ASCII.isRegNameByte(b) == regName.contains(b), "reg-name \(b)")
            #expect(ASCII.isFieldValueByte(b) == (b == 0x09 || (b >= 0x20 && b != 0x7F)), "value \(b)")
            #expect(ASCII.isTargetByte(b) == (b >= 0x21 && b <= 0x7E && b != UInt8(ascii: "#")), "target \(b)")
            let hex = Array("0123456789abcdef".utf8).firstIndex(of: ASCII.lower(b)) ?? -1
            #expect(ASCII.hexValue(b) == hex, "hex \(b)")
            #expect(ASCII.lower(b) == (b >= 0x41 && b <= 0x5A ? b + 32 : b))
        }
    }

    @Test func wordAtATimeScannersMatchTheByteLoops() {
        var rng = SplitMix64(seed: 0x5_3A4)
        let common = Array("abcXYZ019 /?=&%-".utf8)
        for _ in 0..<20_000 {
            let n = Int.random(in: 0...40, using: &rng)
            var input = (0..<n).map { _ in common.randomElement(using: &rng)! }
            // Sprinkle in one or two bytes from anywhere in 0...255.
            for _ in 0..<Int.random(in: 0...2, using: &rng) where n > 0 {
                input[Int.random(in: 0..<n, using: &rng)] = UInt8.random(in: 0...255, using: &rng)
            }
            let from = Int.random(in: 0...n, using: &rng)
            input.withUnsafeBufferPointer { p in
                var value = from
                while value < n && ASCII.isFieldValueByte(p[value]) { value += 1 }
                #expect(ASCII.skipFieldValueBytes(p, from: from, to: n) == value, "\(input) from \(from)")
                var target = from
                while target < n && ASCII.isTargetByte(p[target]) { target += 1 }
                #expect(ASCII.skipTargetBytes(p, from: from, to: n) == target, "\(input) from \(from)")
            }
        }
    }

    @Test func escapingForReasons() {
        let input: [UInt8] = Array("ok \"q\" \\".utf8) + [0x00, 0x1F, 0x7F, 0x80, 0xFF]
        let quoted = input.withUnsafeBufferPointer { HTTPParseError.quoted($0) }
        #expect(quoted == "\"ok \\x22q\\x22 \\x5C\\x00\\x1F\\x7F\\x80\\xFF\"")
        let long = [UInt8](repeating: UInt8(ascii: "a"), count: 100)
        let truncated = long.withUnsafeBufferPointer { HTTPParseError.quoted($0) }
        #expect(truncated == "\"" + String(repeating: "a", count: 64) + "\"...")
    }
}
