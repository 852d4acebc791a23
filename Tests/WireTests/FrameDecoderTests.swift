// Frame-layer tests: header layout, incremental decoding, header validation and poisoning.

import Testing
import Wire

@Suite("Frame encoding")
struct FrameEncodingTests {
    @Test func constants() {
        #expect(Wire.version == 1)
        #expect(Wire.supportedVersions == 1...1)
        #expect(Wire.headerSize == 20)
        #expect(Wire.defaultMaxPayload == 16 * 1024 * 1024)
        #expect(FrameType.allCases.map(\.rawValue) == Array(1...9))
    }

    @Test func headerLayoutIsBigEndian() {
        let frame = Frame(type: .request, flags: 0, requestID: 0x0102_0304_0506_0708, payload: [0xAA, 0xBB, 0xCC])
        #expect(
            frame.encoded == [
                0x42, 0x48, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00,
                0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08,
                0x00, 0x00, 0x00, 0x03, 0xAA, 0xBB, 0xCC,
            ])
    }

    @Test func encodeAppendsWithoutClobbering() throws {
        var out: [UInt8] = [0xEE]
        Frame(type: .cancel, requestID: 1).encode(into: &out)
        Message.cancel.encode(requestID: 2, into: &out)
        #expect(out.count == 1 + 2 * Wire.headerSize)
        #expect(out[0] == 0xEE)
        #expect(try decodeAll(Array(out.dropFirst())) == [Frame(type: .cancel, requestID: 1), Frame(type: .cancel, requestID: 2)])
    }

    @Test func flagsAreEncodedAsGiven() {
        // Flags are reserved for future versions; the encoder writes what it is told and the peer judges.
        let bytes = Frame(type: .ping, flags: 0x8001, payload: []).encoded
        #expect(bytes[4] == 0x80 && bytes[5] == 0x01)
        #expect(decodeError(bytes) == .unknownFlags(0x8001))
    }

    @Test func maxPayloadForBodyBytes() {
        #expect(Wire.maxPayload(forBodyBytes: 1 << 20) == (1 << 20) + 66)
        #expect(Wire.maxPayload(forBodyBytes: 0) == 1028)
        #expect(Wire.maxPayload(forBodyBytes: -5) == 1028)
        #expect(Wire.maxPayload(forBodyBytes: .max) == .max)
    }
}

@Suite("FrameDecoder")
struct FrameDecoderTests {
    @Test("every split point: nil until complete, then exactly the frame", arguments: Samples.small)
    func everySplitPoint(sample: Sample) throws {
        let bytes = sample.bytes
        for cut in 0..<bytes.count {
            var decoder = FrameDecoder()
            decoder.feed(Array(bytes[..<cut]))
            #expect(try decoder.next() == nil, "prefix of \(cut) bytes")
            #expect(decoder.bufferedByteCount == cut)
            decoder.feed(Array(bytes[cut...]))
            #expect(try decoder.next() == sample.frame, "split at \(cut)")
            #expect(try decoder.next() == nil)
            #expect(decoder.bufferedByteCount == 0)
        }
    }

    @Test("one byte at a time yields exactly the frame", arguments: Samples.all)
    func oneByteAtATime(sample: Sample) throws {
        let bytes = sample.bytes
        var decoder = FrameDecoder()
        for (i, byte) in bytes.enumerated() {
            decoder.feed([byte])
            let frame = try decoder.next()
            if i < bytes.count - 1 {
                guard frame == nil else {
                    Issue.record("frame after only \(i + 1) of \(bytes.count) bytes")
                    return
                }
            } else {
                #expect(frame == sample.frame)
            }
        }
        #expect(try decoder.next() == nil)
        #expect(decoder.bufferedByteCount == 0)
    }

    @Test("many frames in one feed come out in order", arguments: [Int.max, 1, 7, 19, 20, 21, 4096])
    func concatenated(chunk: Int) throws {
        let stream = Samples.all.flatMap(\.bytes)
        let frames = try decodeAll(stream, chunk: chunk)
        #expect(frames == Samples.all.map(\.frame))
    }

    @Test func rawBufferFeedMatchesArrayFeed() throws {
        let stream = Samples.small.flatMap(\.bytes)
        // Raw memory bound to a different type: the decoder must copy bytes without assuming UInt8.
        var words = [UInt32](repeating: 0, count: (stream.count + 3) / 4)
        words.withUnsafeMutableBytes { $0.copyBytes(from: stream) }
        var decoder = FrameDecoder()
        var frames: [Frame] = []
        try words.withUnsafeBytes { raw in
            var start = 0
            while start < stream.count {
                let end = min(start + 13, stream.count)
                decoder.feed(UnsafeRawBufferPointer(rebasing: raw[start..<end]))
                start = end
                while let frame = try decoder.next() { frames.append(frame) }
            }
            decoder.feed(UnsafeRawBufferPointer(rebasing: raw[0..<0]))
        }
        #expect(frames == Samples.small.map(\.frame))
        #expect(decoder.bufferedByteCount == 0)
    }

    @Test func bufferedByteCountTracksUnreturnedBytes() throws {
        let a = Message.ping(nonce: 1).frame(requestID: 0).encoded
        let b = Message.cancel.frame(requestID: 3).encoded
        var decoder = FrameDecoder()
        decoder.feed(a + b.prefix(5))
        #expect(decoder.bufferedByteCount == a.count + 5)
        #expect(try decoder.next()?.type == .ping)
        #expect(decoder.bufferedByteCount == 5)
        #expect(try decoder.next() == nil)
        decoder.feed(Array(b.dropFirst(5)))
        #expect(try decoder.next() == Frame(type: .cancel, requestID: 3))
        #expect(decoder.bufferedByteCount == 0)
    }

    @Test func payloadOfExactlyMaxPayloadIsAccepted() throws {
        var decoder = FrameDecoder(maxPayload: 100)
        let frame = Frame(type: .response, requestID: 1, payload: [UInt8](repeating: 7, count: 100))
        decoder.feed(frame.encoded)
        #expect(try decoder.next() == frame)

        var empty = FrameDecoder(maxPayload: 0)
        empty.feed(Frame(type: .cancel).encoded)
        #expect(try empty.next() == Frame(type: .cancel))
    }

    @Test(
        "oversized length fails from the header alone",
        arguments: [(1024, UInt32(1025)), (Wire.defaultMaxPayload, UInt32(Wire.defaultMaxPayload + 1)),
                    (Wire.defaultMaxPayload, UInt32.max), (0, UInt32(1))])
    func frameTooLarge(maxPayload: Int, length: UInt32) {
        var decoder = FrameDecoder(maxPayload: maxPayload)
        decoder.feed(rawHeader(type: 2, requestID: 9, length: length))
        #expect(decoder.nextError() == .frameTooLarge(length: length, max: maxPayload))
        #expect(decoder.bufferedByteCount == 0)
    }

    @Test(
        "invalid header fields are reported precisely",
        arguments: [
            ("bad magic byte 0", rawHeader(magic: (0x00, 0x48)), WireError.badMagic),
            ("bad magic byte 1", rawHeader(magic: (0x42, 0x49)), .badMagic),
            ("swapped magic", rawHeader(magic: (0x48, 0x42)), .badMagic),
            ("version 0", rawHeader(version: 0), .unsupportedVersion(0)),
            ("version 2", rawHeader(version: 2), .unsupportedVersion(2)),
            ("version 255", rawHeader(version: 255), .unsupportedVersion(255)),
            ("type 0", rawHeader(type: 0), .unknownType(0)),
            ("type 10", rawHeader(type: 10), .unknownType(10)),
            ("more on PING", rawHeader(type: 5, flags: 0x0001), .unknownFlags(0x0001)),
            ("flag bit 1 on DATA", rawHeader(type: 9, flags: 0x0002), .unknownFlags(0x0002)),
            ("type 255", rawHeader(type: 255), .unknownType(255)),
            ("flag bit 0", rawHeader(flags: 0x0001), .unknownFlags(0x0001)),
            ("flag bit 15", rawHeader(flags: 0x8000), .unknownFlags(0x8000)),
            ("all flags", rawHeader(flags: 0xFFFF), .unknownFlags(0xFFFF)),
            ("reserved byte 6", rawHeader(reserved: (1, 0)), .reservedNotZero),
            ("reserved byte 7", rawHeader(reserved: (0, 0x80)), .reservedNotZero),
            // Fields are checked in wire order, so the first bad one wins.
            ("bad magic and version", rawHeader(magic: (0, 0), version: 9), .badMagic),
            ("bad version and type", rawHeader(version: 9, type: 0), .unsupportedVersion(9)),
            ("bad type and flags", rawHeader(type: 0, flags: 1), .unknownType(0)),
            ("bad flags and reserved", rawHeader(flags: 2, reserved: (1, 1)), .unknownFlags(2)),
            ("bad reserved and length", rawHeader(reserved: (1, 1), length: .max), .reservedNotZero),
        ] as [(String, [UInt8], WireError)])
    func headerErrors(name: String, header: [UInt8], expected: WireError) {
        var decoder = FrameDecoder()
        // Nineteen bytes are not a header yet: no verdict.
        decoder.feed(Array(header.prefix(19)))
        #expect(decoder.nextError() == nil)
        decoder.feed([header[19]])
        #expect(decoder.nextError() == expected)

        // Poisoned: the same error forever, whatever arrives afterwards.
        #expect(decoder.nextError() == expected)
        decoder.feed(Message.ping(nonce: 1).frame(requestID: 0).encoded)
        #expect(decoder.nextError() == expected)
        #expect(decoder.bufferedByteCount == 0)
    }

    @Test func errorAfterGoodFramesKeepsTheGoodOnes() throws {
        let good = Message.ping(nonce: 42).frame(requestID: 0)
        var decoder = FrameDecoder()
        decoder.feed(good.encoded + rawHeader(version: 2) + good.encoded)
        #expect(try decoder.next() == good)
        #expect(decoder.nextError() == .unsupportedVersion(2))
        #expect(decoder.nextError() == .unsupportedVersion(2))
    }

    @Test(.timeLimit(.minutes(1)))
    func decodingIsLinear() throws {
        // 200,000 frames (5.6 MB) encoded into one buffer and decoded from one feed: an encoder that
        // reserved exact capacity per frame, or a decoder that shifted its buffer per frame, would
        // copy hundreds of gigabytes here.
        let count = 200_000
        var stream: [UInt8] = []
        for i in 0..<count { Message.ping(nonce: UInt64(i)).encode(requestID: 1, into: &stream) }
        #expect(stream.count == count * (Wire.headerSize + 8))
        var decoder = FrameDecoder()
        decoder.feed(stream)
        var seen = 0
        while let frame = try decoder.next() {
            seen += 1
            if frame.payload.count != 8 { break }
        }
        #expect(seen == count)

        // And trickled in odd-sized chunks with frames straddling every boundary.
        var trickle = FrameDecoder()
        seen = 0
        var start = 0
        while start < stream.count {
            let end = min(start + 37, stream.count)
            trickle.feed(Array(stream[start..<end]))
            start = end
            while try trickle.next() != nil { seen += 1 }
        }
        #expect(seen == count)
        #expect(trickle.bufferedByteCount == 0)
    }
}

@Suite("WireError")
struct WireErrorTests {
    @Test func descriptionsAreOneLineAndPrecise() {
        let cases: [(WireError, String)] = [
            (.badMagic, "bad frame magic: expected 0x42 0x48 (\"BH\")"),
            (.unsupportedVersion(2), "unsupported protocol version 2 (supported 1...1)"),
            (.unknownType(9), "unknown frame type 9"),
            (.unknownFlags(0x0A01), "unknown frame flags 0x0a01"),
            (.unknownFlags(1), "unknown frame flags 0x0001"),
            (.reservedNotZero, "reserved header bytes 6..<8 are not zero"),
            (.frameTooLarge(length: 17, max: 16), "frame payload length 17 exceeds the maximum of 16 bytes"),
            (.malformedPayload(.request, "task is empty"), "malformed request payload: task is empty"),
        ]
        for (error, text) in cases {
            #expect(error.description == text)
            #expect(!error.description.contains("\n"))
        }
    }
}
