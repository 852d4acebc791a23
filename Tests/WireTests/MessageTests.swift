// Message-layer tests: round trips, strict payload parsing, limits, error codes and negotiation.

import Testing
import Wire

/// Wraps `payload` in a frame of `type` (so the header is consistent) and parses it as a message.
private func parse(_ type: FrameType, _ payload: [UInt8]) -> Result<Message, WireError> {
    Result { () throws(WireError) in try Message(frame: Frame(type: type, requestID: 1, payload: payload)) }
}

private func expectMalformed(
    _ type: FrameType, _ payload: [UInt8], _ comment: Comment? = nil, sourceLocation: SourceLocation = #_sourceLocation
) {
    switch parse(type, payload) {
    case .failure(.malformedPayload(let got, let reason)):
        #expect(got == type, comment, sourceLocation: sourceLocation)
        #expect(!reason.isEmpty, sourceLocation: sourceLocation)
    case let other:
        Issue.record("expected malformedPayload(\(type)), got \(other) \(comment.map { "\($0)" } ?? "")", sourceLocation: sourceLocation)
    }
}

private func lengthPrefixed(_ bytes: [UInt8]) -> [UInt8] {
    [UInt8(bytes.count >> 8), UInt8(bytes.count & 0xFF)] + bytes
}

@Suite("Messages")
struct MessageTests {
    @Test("encode → FrameDecoder → Message round trip", arguments: Samples.all)
    func roundTrip(sample: Sample) throws {
        var wire: [UInt8] = []
        sample.message.encode(requestID: sample.requestID, into: &wire)
        // The direct hot-path encoder and the Frame route produce identical bytes.
        #expect(wire == sample.frame.encoded)
        #expect(sample.frame.type == sample.message.type)

        let frames = try decodeAll(wire)
        try #require(frames.count == 1)
        #expect(frames[0].requestID == sample.requestID)
        #expect(frames[0].flags == sample.message.flags)
        #expect(try Message(frame: frames[0]) == sample.message)
    }

    @Test("cutting a payload inside its fixed fields is malformed", arguments: Samples.small)
    func payloadTruncation(sample: Sample) {
        let payload = sample.frame.payload
        // REQUEST and RESPONSE bodies are "the rest", so only cuts before the body can be detected.
        let structured: Int
        switch sample.message {
        case .request(let request): structured = payload.count - request.body.count
        case .response(let response): structured = payload.count - response.body.count
        case .data: structured = 0  // all body
        default: structured = payload.count
        }
        for cut in 0..<structured {
            expectMalformed(sample.frame.type, Array(payload[..<cut]), "cut at \(cut) of \(payload.count)")
        }
    }

    @Test("trailing bytes are malformed", arguments: Samples.small.filter {
        switch $0.message {
        case .request, .response, .data: false
        default: true
        }
    })
    func trailingGarbage(sample: Sample) {
        for extra in [[0x00], [0xFF], [0x42, 0x48, 0x01]] as [[UInt8]] {
            expectMalformed(sample.frame.type, sample.frame.payload + extra)
        }
    }

    @Test func moreIsOnlyOnStreamedFrames() throws {
        #expect(Message.request(Request(task: "t")).flags == 0)
        #expect(Message.request(Request(task: "t", streamed: true)).flags == Frame.more)
        #expect(Message.data([1], more: false).flags == 0)
        #expect(Message.data([1], more: true).flags == Frame.more)
        // `more` on a frame that cannot stream is refused by the decoder.
        for type in FrameType.allCases where ![.request, .response, .data].contains(type) {
            var decoder = FrameDecoder()
            decoder.feed(Frame(type: type, flags: Frame.more, payload: []).encoded)
            #expect(decoder.nextError() == .unknownFlags(Frame.more))
        }
    }

    @Test func bodiesTakeTrailingBytes() throws {
        // For REQUEST and RESPONSE the body is everything after the fixed part, so appended bytes are body.
        let request = Message.request(Request(task: "t", body: [1])).frame(requestID: 1)
        #expect(try Message(frame: Frame(type: .request, payload: request.payload + [2])) == .request(Request(task: "t", body: [1, 2])))
    }

    // MARK: HELLO

    @Test func helloValidation() throws {
        let agent = Array("w".utf8)
        let good: [UInt8] = [1, 1, 0, 0, 0, 1] + lengthPrefixed(agent)
        #expect(try parse(.hello, good).get() == .hello(Hello(pid: 1, agent: "w")))
        expectMalformed(.hello, [2, 1, 0, 0, 0, 1] + lengthPrefixed(agent), "min > max")
        expectMalformed(.hello, [1, 1, 0, 0, 0, 1] + lengthPrefixed([UInt8](repeating: 0x61, count: 256)), "agent 256 bytes")
        expectMalformed(.hello, [1, 1, 0, 0, 0, 1] + lengthPrefixed([0xC3]), "truncated UTF-8")
        expectMalformed(.hello, [1, 1, 0, 0, 0, 1] + lengthPrefixed([0xFF, 0xFE]), "invalid UTF-8")
        expectMalformed(.hello, [1, 1, 0, 0, 0, 1] + lengthPrefixed([0xED, 0xA0, 0x80]), "UTF-8 surrogate")
        expectMalformed(.hello, [1, 1, 0, 0, 0, 1, 0xFF, 0xFF], "length far beyond payload")
        #expect(try parse(.hello, [1, 1, 0, 0, 0, 1] + lengthPrefixed([UInt8](repeating: 0x61, count: 255))).get()
            == .hello(Hello(pid: 1, agent: String(repeating: "a", count: 255))))
    }

    @Test func helloEncodingCutsOverlongAgentOnAScalarBoundary() throws {
        // 254 ASCII bytes then a 2-byte scalar would make 256: the whole scalar goes, not half of it.
        let agent = String(repeating: "a", count: 254) + "é" + "tail"
        let frame = Message.hello(Hello(pid: 1, agent: agent)).frame(requestID: 0)
        #expect(frame.payload.count == 8 + 254)
        #expect(try Message(frame: frame) == .hello(Hello(pid: 1, agent: String(repeating: "a", count: 254))))
    }

    @Test(
        "version negotiation picks the highest common version",
        arguments: [
            (1...1, 1, 1, UInt8?.some(1)), (1...3, 2, 5, 3), (1...3, 0, 2, 2), (2...4, 0, 1, nil),
            (2...4, 5, 9, nil), (1...1, 2, 2, nil), (0...255, 7, 7, 7), (1...5, 3, 1, nil),
        ] as [(ClosedRange<UInt8>, UInt8, UInt8, UInt8?)])
    func negotiate(local: ClosedRange<UInt8>, remoteMin: UInt8, remoteMax: UInt8, expected: UInt8?) {
        let remote = Hello(minVersion: remoteMin, maxVersion: remoteMax, pid: 1, agent: "")
        #expect(Hello.negotiate(local: local, remote: remote) == expected)
    }

    @Test func helloDefaultsToSupportedVersions() {
        let hello = Hello(pid: 1, agent: "x")
        #expect(hello.minVersion == Wire.supportedVersions.lowerBound)
        #expect(hello.maxVersion == Wire.supportedVersions.upperBound)
        #expect(Hello.negotiate(local: Wire.supportedVersions, remote: hello) == Wire.version)
    }

    // MARK: REQUEST

    @Test(
        "task names", arguments: [
            ("a", true), ("thumbnail.resize", true), ("a-b_c.d9", true), (String(repeating: "z", count: 64), true),
            ("", false), (String(repeating: "z", count: 65), false), ("Upper", false), ("with space", false),
            ("slash/", false), ("é", false), ("nul\u{0}", false), ("tab\t", false), ("plus+", false),
        ])
    func taskNames(task: String, valid: Bool) throws {
        #expect(Request.isValidTask(task) == valid)
        let payload = lengthPrefixed(Array(task.utf8)) + [9, 9]
        if valid {
            #expect(try parse(.request, payload).get() == .request(Request(task: task, body: [9, 9])))
        } else {
            expectMalformed(.request, payload, "task \(task.debugDescription)")
        }
    }

    @Test func overlongTaskNeverWrapsIntoAShortLength() {
        // 65,537 bytes would wrap a u16 to 1 and misparse as task "a"; the encoder clamps, the peer rejects.
        let frame = Message.request(Request(task: String(repeating: "a", count: 65_537), body: [])).frame(requestID: 1)
        #expect(frame.payload.count == 2 + 65_537)
        #expect(frame.payload.prefix(2) == [0xFF, 0xFF])
        expectMalformed(.request, frame.payload)
    }

    @Test func requestTaskLengthBeyondPayload() {
        expectMalformed(.request, [0x00, 0x05, 0x61, 0x62])
        expectMalformed(.request, [0x00, 0x00])
        expectMalformed(.request, [])
    }

    // MARK: ERROR

    @Test func errorCodeNames() {
        let names = ErrorCode.known.map(\.name)
        #expect(names == [
            "unknown_task", "bad_request", "task_failed", "protocol_error", "version_unsupported",
            "cancelled", "overloaded", "payload_too_large", "not_found", "internal", "forbidden", "conflict",
            "storage_quota_exceeded",
        ])
        #expect(ErrorCode.known.map(\.rawValue) == Array(1...13))
        #expect(ErrorCode.internal.rawValue == 10)
        #expect(ErrorCode(rawValue: 0).name == "error_0")
        #expect(ErrorCode(rawValue: 4242).name == "error_4242")
        #expect("\(ErrorCode.cancelled)" == "cancelled")
        #expect(ErrorCode(rawValue: 6) == .cancelled)
    }

    @Test func unknownErrorCodesSurvive() throws {
        let message = try parse(.error, [0x12, 0x34] + lengthPrefixed(Array("later".utf8))).get()
        #expect(message == .error(ErrorMessage(code: ErrorCode(rawValue: 0x1234), message: "later")))
    }

    @Test func errorMessageLimits() throws {
        let max = [UInt8](repeating: 0x78, count: 1024)
        #expect(try parse(.error, [0, 3] + lengthPrefixed(max)).get()
            == .error(ErrorMessage(code: .taskFailed, message: String(repeating: "x", count: 1024))))
        expectMalformed(.error, [0, 3] + lengthPrefixed(max + [0x78]), "1025 bytes")
        expectMalformed(.error, [0, 3] + lengthPrefixed([0x80]), "bare continuation byte")
        expectMalformed(.error, [0, 3] + lengthPrefixed([0xF4, 0x90, 0x80, 0x80]), "beyond U+10FFFF")
        expectMalformed(.error, [0, 3] + lengthPrefixed([0xC0, 0x80]), "overlong encoding")
    }

    @Test func errorEncodingCutsOverlongMessage() throws {
        // 1023 bytes + a 4-byte scalar: the scalar is dropped whole.
        let text = String(repeating: "m", count: 1023) + "🦀" + String(repeating: "m", count: 100)
        let frame = Message.error(ErrorMessage(code: .internal, message: text)).frame(requestID: 3)
        #expect(frame.payload.count == 4 + 1023)
        #expect(try Message(frame: frame) == .error(ErrorMessage(code: .internal, message: String(repeating: "m", count: 1023))))
    }

    // MARK: PING, PONG, CANCEL, GOAWAY

    @Test(arguments: [FrameType.ping, .pong])
    func nonceMustBeExactlyEightBytes(type: FrameType) throws {
        for count in [0, 1, 7, 9, 16] {
            expectMalformed(type, [UInt8](repeating: 1, count: count), "\(count) bytes")
        }
        let nonce = try parse(type, [0, 0, 0, 0, 0, 0, 1, 0]).get()
        #expect(nonce == (type == .ping ? .ping(nonce: 256) : .pong(nonce: 256)))
    }

    @Test func cancelMustBeEmpty() throws {
        #expect(try parse(.cancel, []).get() == .cancel)
        expectMalformed(.cancel, [0])
    }

    @Test func goawayReasons() throws {
        for reason in GoAway.Reason.allCases {
            #expect(try parse(.goaway, [reason.rawValue]).get() == .goaway(GoAway(reason: reason)))
        }
        #expect(GoAway.Reason.allCases.map(\.rawValue) == [1, 2, 3, 4])
        for raw: UInt8 in [0, 5, 255] {
            expectMalformed(.goaway, [raw], "reason \(raw)")
        }
        expectMalformed(.goaway, [])
        expectMalformed(.goaway, [1, 1])
    }

    @Test func messageTypes() {
        #expect(Message.hello(Hello(pid: 0, agent: "")).type == .hello)
        #expect(Message.request(Request(task: "a")).type == .request)
        #expect(Message.response(Response(cpuMicros: 0, maxRSSKiB: 0)).type == .response)
        #expect(Message.error(ErrorMessage(code: .badRequest)).type == .error)
        #expect(Message.ping(nonce: 0).type == .ping)
        #expect(Message.pong(nonce: 0).type == .pong)
        #expect(Message.cancel.type == .cancel)
        #expect(Message.goaway(GoAway(reason: .idle)).type == .goaway)
    }
}
