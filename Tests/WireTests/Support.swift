// Shared test fixtures: a deterministic PRNG, sample messages and decoding helpers.

import Testing
import Wire

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

    mutating func bytes(_ count: Int) -> [UInt8] {
        (0..<count).map { _ in UInt8.random(in: 0...255, using: &self) }
    }
}

/// A message plus the request id it travels with; the short name keeps test output readable even for
/// 1 MiB bodies.
struct Sample: Sendable, CustomTestStringConvertible {
    var name: String
    var message: Message
    var requestID: UInt64
    /// Large samples are skipped by the quadratic every-split-point tests.
    var isLarge = false

    var testDescription: String { name }
    var frame: Frame { message.frame(requestID: requestID) }
    var bytes: [UInt8] { frame.encoded }
}

enum Samples {
    static let oneMiB: [UInt8] = {
        var rng = SplitMix64(seed: 0x1_0000)
        return rng.bytes(1 << 20)
    }()

    /// 64 bytes using every allowed task character.
    static let maxTask = String(repeating: "abcdefghijklmnopqrstuvwxyz0123456789_.-", count: 2).prefix(64).description

    static let all: [Sample] = [
        Sample(name: "hello empty agent", message: .hello(Hello(pid: 0, agent: "")), requestID: 0),
        Sample(
            name: "hello canonical",
            message: .hello(Hello(minVersion: 1, maxVersion: 1, pid: 4242, agent: "bulkhead-worker/1")), requestID: 0),
        Sample(
            name: "hello wide range, max ASCII agent",
            message: .hello(Hello(minVersion: 0, maxVersion: 255, pid: .max, agent: String(repeating: "a", count: 255))),
            requestID: .max),
        Sample(
            name: "hello max multibyte agent",
            message: .hello(Hello(minVersion: 3, maxVersion: 3, pid: 1, agent: String(repeating: "✓", count: 85))),
            requestID: 1),
        Sample(name: "hello unicode agent", message: .hello(Hello(pid: 77, agent: "wörker-🦀/2")), requestID: 0),

        Sample(name: "request minimal", message: .request(Request(task: "a", body: [])), requestID: 1),
        Sample(
            name: "request json",
            message: .request(Request(task: "thumbnail.resize", body: Array(#"{"w":64}"#.utf8))), requestID: 7),
        Sample(name: "request max task", message: .request(Request(task: maxTask, body: [0, 255])), requestID: .max),
        Sample(
            name: "request 1 MiB body", message: .request(Request(task: "blob_store-v2", body: oneMiB)),
            requestID: 0xDEAD_BEEF, isLarge: true),

        Sample(name: "response empty", message: .response(Response(cpuMicros: 0, maxRSSKiB: 0, body: [])), requestID: 1),
        Sample(
            name: "response ok", message: .response(Response(cpuMicros: 1500, maxRSSKiB: 20480, body: Array("ok".utf8))),
            requestID: 7),
        Sample(
            name: "response max counters",
            message: .response(Response(cpuMicros: .max, maxRSSKiB: .max, body: [0x42, 0x48, 1, 2])), requestID: 2),
        Sample(
            name: "response 1 MiB body",
            message: .response(Response(cpuMicros: 123_456, maxRSSKiB: 65_536, body: oneMiB)), requestID: 3,
            isLarge: true),

        Sample(name: "error empty message", message: .error(ErrorMessage(code: .unknownTask, message: "")), requestID: 0),
        Sample(
            name: "error canonical", message: .error(ErrorMessage(code: .taskFailed, message: "exit status 1")),
            requestID: 7),
        Sample(
            name: "error unknown code", message: .error(ErrorMessage(code: ErrorCode(rawValue: 999), message: "newer peer")),
            requestID: 9),
        Sample(name: "error code 0", message: .error(ErrorMessage(code: ErrorCode(rawValue: 0))), requestID: 9),
        Sample(
            name: "error max message",
            message: .error(ErrorMessage(code: .internal, message: String(repeating: "é", count: 512))),
            requestID: .max),
        Sample(
            name: "error max code", message: .error(ErrorMessage(code: ErrorCode(rawValue: .max), message: "x")),
            requestID: 4),

        Sample(name: "ping zero", message: .ping(nonce: 0), requestID: 0),
        Sample(name: "ping max", message: .ping(nonce: .max), requestID: 0),
        Sample(name: "ping canonical", message: .ping(nonce: 0x0102_0304_0506_0708), requestID: 0),
        Sample(name: "pong zero", message: .pong(nonce: 0), requestID: 0),
        Sample(name: "pong max", message: .pong(nonce: .max), requestID: 5),
        Sample(name: "pong canonical", message: .pong(nonce: 0x0102_0304_0506_0708), requestID: 0),

        Sample(name: "data more", message: .data(Array("chunk".utf8), more: true), requestID: 7),
        Sample(name: "data last empty", message: .data([], more: false), requestID: 7),
        Sample(name: "request streamed", message: .request(Request(task: "files.put", body: [1, 2], streamed: true)), requestID: 3),
        Sample(name: "response streamed", message: .response(Response(cpuMicros: 1, maxRSSKiB: 2, body: [9], streamed: true)),
               requestID: 3),
        Sample(name: "cancel", message: .cancel, requestID: 7),
        Sample(name: "cancel max id", message: .cancel, requestID: .max),
    ] + GoAway.Reason.allCases.map {
        Sample(name: "goaway \($0)", message: .goaway(GoAway(reason: $0)), requestID: 0)
    } + ErrorCode.known.map {
        Sample(name: "error \($0.name)", message: .error(ErrorMessage(code: $0, message: $0.name)), requestID: 11)
    }

    static let small = all.filter { !$0.isLarge }
}

extension FrameDecoder {
    /// The error `next()` throws now, or nil if it returns (a frame or nil); keeps `#expect` free of closures.
    mutating func nextError() -> WireError? {
        do {
            _ = try next()
            return nil
        } catch {
            return error
        }
    }
}

/// The error decoding the whole of `bytes` ends with, or nil.
func decodeError(_ bytes: [UInt8]) -> WireError? {
    do {
        _ = try decodeAll(bytes)
        return nil
    } catch {
        return error
    }
}

/// Feeds `bytes` in `chunk`-sized pieces, draining frames after every feed.
func decodeAll(_ bytes: [UInt8], chunk: Int = .max, maxPayload: Int = Wire.defaultMaxPayload) throws(WireError) -> [Frame] {
    var decoder = FrameDecoder(maxPayload: maxPayload)
    var frames: [Frame] = []
    var start = 0
    repeat {
        let end = start + min(chunk, bytes.count - start)
        decoder.feed(Array(bytes[start..<end]))
        start = end
        while let frame = try decoder.next() {
            frames.append(frame)
        }
    } while start < bytes.count
    return frames
}

/// A header with arbitrary (possibly invalid) field values, for error tests.
func rawHeader(
    magic: (UInt8, UInt8) = (0x42, 0x48), version: UInt8 = 1, type: UInt8 = 5, flags: UInt16 = 0,
    reserved: (UInt8, UInt8) = (0, 0), requestID: UInt64 = 0, length: UInt32 = 0
) -> [UInt8] {
    var bytes: [UInt8] = [magic.0, magic.1, version, type, UInt8(flags >> 8), UInt8(flags & 0xFF), reserved.0, reserved.1]
    for shift in stride(from: 56, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: requestID >> UInt64(shift))) }
    for shift in stride(from: 24, through: 0, by: -8) { bytes.append(UInt8(truncatingIfNeeded: length >> UInt32(shift))) }
    return bytes
}
