// Golden-file tests: the canonical frame of each type must match the bytes documented in docs/PROTOCOL.md.

import Foundation  // Bundle.module and Data, for loading the resources; the Wire module itself never imports it.
import Testing
import Wire

/// The canonical value of each frame type; Golden/<type>.bin was written from PROTOCOL.md's byte tables
/// by a script independent of this encoder.
private let canonical: [FrameType: (message: Message, requestID: UInt64)] = [
    .hello: (.hello(Hello(minVersion: 1, maxVersion: 1, pid: 4242, agent: "bulkhead-worker/1")), 0),
    .request: (.request(Request(task: "thumbnail.resize", body: Array(#"{"w":64}"#.utf8))), 7),
    .response: (.response(Response(cpuMicros: 1500, maxRSSKiB: 20480, body: Array("ok".utf8))), 7),
    .error: (.error(ErrorMessage(code: .taskFailed, message: "exit status 1")), 7),
    .ping: (.ping(nonce: 0x0102_0304_0506_0708), 0),
    .pong: (.pong(nonce: 0x0102_0304_0506_0708), 0),
    .cancel: (.cancel, 7),
    .goaway: (.goaway(GoAway(reason: .drain)), 0),
    .data: (.data(Array("ok".utf8), more: true), 7),
]

private func goldenBytes(_ type: FrameType) throws -> [UInt8] {
    let url = try #require(
        Bundle.module.url(forResource: "\(type)", withExtension: "bin", subdirectory: "Golden"),
        "missing Golden/\(type).bin")
    return [UInt8](try Data(contentsOf: url))
}

@Suite("Golden files")
struct GoldenTests {
    @Test("encode(value) == file and decode(file) == value", arguments: FrameType.allCases)
    func golden(type: FrameType) throws {
        let (message, requestID) = try #require(canonical[type])
        let bytes = try goldenBytes(type)

        #expect(message.frame(requestID: requestID).encoded == bytes)
        var direct: [UInt8] = []
        message.encode(requestID: requestID, into: &direct)
        #expect(direct == bytes)

        var decoder = FrameDecoder()
        decoder.feed(bytes)
        let frame = try #require(try decoder.next())
        #expect(frame.type == type)
        #expect(frame.requestID == requestID)
        #expect(try Message(frame: frame) == message)
        #expect(decoder.bufferedByteCount == 0)
    }

    @Test func requestBytesMatchTheProtocolDocument() throws {
        // The hex dump printed in docs/PROTOCOL.md, byte for byte.
        let documented: [UInt8] = [
            0x42, 0x48, 0x01, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07,
            0x00, 0x00, 0x00, 0x1A, 0x00, 0x10, 0x74, 0x68, 0x75, 0x6D, 0x62, 0x6E, 0x61, 0x69, 0x6C, 0x2E,
            0x72, 0x65, 0x73, 0x69, 0x7A, 0x65, 0x7B, 0x22, 0x77, 0x22, 0x3A, 0x36, 0x34, 0x7D,
        ]
        #expect(try goldenBytes(.request) == documented)
    }
}
