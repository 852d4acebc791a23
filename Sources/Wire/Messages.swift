// Typed payloads for every frame type: their byte layouts, strict parsing and direct encoding.

/// A decoded frame payload. The request id stays on the frame, since it is routing, not content.
public enum Message: Sendable, Equatable {
    /// Both directions, the first frame on a connection.
    case hello(Hello)
    /// Supervisor → worker.
    case request(Request)
    /// Worker → supervisor.
    case response(Response)
    /// Either direction; the request id is the failed request (0 = connection-level).
    case error(ErrorMessage)
    /// Payload: an 8-byte nonce the peer echoes in a PONG.
    case ping(nonce: UInt64)
    case pong(nonce: UInt64)
    /// Empty payload; the frame's request id says which request to abandon.
    case cancel
    case goaway(GoAway)
    /// Both directions: the next piece of request `id`'s streamed body; `more` is false on the last.
    case data([UInt8], more: Bool)

    /// The frame type this message travels in.
    public var type: FrameType {
        switch self {
        case .hello: .hello
        case .request: .request
        case .response: .response
        case .error: .error
        case .ping: .ping
        case .pong: .pong
        case .cancel: .cancel
        case .goaway: .goaway
        case .data: .data
        }
    }

    /// The header's flags: `more` when a body goes on in DATA frames.
    public var flags: UInt16 {
        switch self {
        case .request(let r): r.streamed ? Frame.more : 0
        case .response(let r): r.streamed ? Frame.more : 0
        case .data(_, let more): more ? Frame.more : 0
        default: 0
        }
    }

    /// Parses `frame.payload` as the message for `frame.type`. Parsing is strict (exact lengths, no
    /// trailing bytes, valid UTF-8, limits enforced) so every accepted payload re-encodes to the same bytes.
    public init(frame: Frame) throws(WireError) {
        var reader = PayloadReader(frame.payload, type: frame.type)
        switch frame.type {
        case .hello:
            let minVersion = try reader.readUInt8("minVersion")
            let maxVersion = try reader.readUInt8("maxVersion")
            let pid = try reader.readUInt32("pid")
            let agent = try reader.readString("agent", maxBytes: Hello.maxAgentBytes)
            try reader.finish()
            guard minVersion <= maxVersion else {
                throw reader.malformed("minVersion \(minVersion) is greater than maxVersion \(maxVersion)")
            }
            self = .hello(Hello(minVersion: minVersion, maxVersion: maxVersion, pid: pid, agent: agent))

        case .request:
            let task = try reader.readTask()
            self = .request(Request(task: task, body: reader.readRest(), streamed: frame.flags & Frame.more != 0))

        case .response:
            let cpuMicros = try reader.readUInt64("cpuMicros")
            let maxRSSKiB = try reader.readUInt64("maxRSSKiB")
            self = .response(Response(cpuMicros: cpuMicros, maxRSSKiB: maxRSSKiB, body: reader.readRest(),
                                      streamed: frame.flags & Frame.more != 0))

        case .error:
            let code = ErrorCode(rawValue: try reader.readUInt16("code"))
            let message = try reader.readString("message", maxBytes: ErrorMessage.maxMessageBytes)
            try reader.finish()
            self = .error(ErrorMessage(code: code, message: message))

        case .ping, .pong:
            try reader.expectCount(8)
            let nonce = try reader.readUInt64("nonce")
            self = frame.type == .ping ? .ping(nonce: nonce) : .pong(nonce: nonce)

        case .cancel:
            try reader.expectCount(0)
            self = .cancel

        case .goaway:
            try reader.expectCount(1)
            let raw = try reader.readUInt8("reason")
            guard let reason = GoAway.Reason(rawValue: raw) else {
                throw reader.malformed("unknown goaway reason \(raw)")
            }
            self = .goaway(GoAway(reason: reason))

        case .data:
            self = .data(reader.readRest(), more: frame.flags & Frame.more != 0)
        }
    }

    /// This message as a frame.
    public func frame(requestID: UInt64) -> Frame {
        var payload: [UInt8] = []
        payload.reserveCapacity(payloadCount)
        appendPayload(to: &payload)
        return Frame(type: type, flags: flags, requestID: requestID, payload: payload)
    }

    /// Appends header and payload straight to `out`, with one capacity reservation and no intermediate
    /// `Frame` or payload array (the request hot path).
    ///
    /// Encoding does not validate: an agent or error message over its byte limit is cut at the last
    /// whole UTF-8 scalar that fits (both are informational text), and an invalid task is sent as-is
    /// so the peer rejects it with `malformedPayload`.
    /// - Precondition: the payload fits in a `UInt32` length (a body under 4 GiB).
    public func encode(requestID: UInt64, into out: inout [UInt8]) {
        let count = payloadCount
        let length = payloadLength(count)
        out.reserveAppending(Wire.headerSize + count)
        out.appendHeader(type: type, flags: flags, requestID: requestID, length: length)
        appendPayload(to: &out)
    }

    /// Exactly the number of bytes `appendPayload` writes; computed first so the header can
    /// go out first (and a sender can tell whether the frame fits its peer's limit).
    public var payloadCount: Int {
        switch self {
        case .hello(let hello):
            return 1 + 1 + 4 + 2 + utf8PrefixCount(hello.agent, maxBytes: Hello.maxAgentBytes)
        case .request(let request):
            return 2 + request.task.utf8.count + request.body.count
        case .response(let response):
            return Response.overheadBytes + response.body.count
        case .error(let error):
            return 2 + 2 + utf8PrefixCount(error.message, maxBytes: ErrorMessage.maxMessageBytes)
        case .ping, .pong:
            return 8
        case .cancel:
            return 0
        case .goaway:
            return 1
        case .data(let bytes, _):
            return bytes.count
        }
    }

    private func appendPayload(to out: inout [UInt8]) {
        switch self {
        case .hello(let hello):
            out.append(hello.minVersion)
            out.append(hello.maxVersion)
            out.appendBigEndian(hello.pid)
            out.appendString(hello.agent, maxBytes: Hello.maxAgentBytes)
        case .request(let request):
            let taskCount = request.task.utf8.count
            // Clamped, not truncated: a too-long task must stay too long (and be rejected by the peer),
            // never wrap around to a short length that would misparse the body.
            out.appendBigEndian(UInt16(clamping: taskCount))
            out.append(contentsOf: request.task.utf8)
            out.append(contentsOf: request.body)
        case .response(let response):
            out.appendBigEndian(response.cpuMicros)
            out.appendBigEndian(response.maxRSSKiB)
            out.append(contentsOf: response.body)
        case .error(let error):
            out.appendBigEndian(error.code.rawValue)
            out.appendString(error.message, maxBytes: ErrorMessage.maxMessageBytes)
        case .ping(let nonce), .pong(let nonce):
            out.appendBigEndian(nonce)
        case .cancel:
            break
        case .goaway(let goaway):
            out.append(goaway.reason.rawValue)
        case .data(let bytes, _):
            out.append(contentsOf: bytes)
        }
    }
}

/// HELLO: each side's supported version range and identity.
/// Payload: minVersion u8, maxVersion u8, pid u32, agent (u16 length + UTF-8, ≤ 255 bytes).
public struct Hello: Sendable, Equatable {
    public static let maxAgentBytes = 255

    public var minVersion: UInt8
    public var maxVersion: UInt8
    public var pid: UInt32
    /// Free-form software identification, e.g. "bulkhead-worker/1.0".
    public var agent: String

    public init(
        minVersion: UInt8 = Wire.supportedVersions.lowerBound,
        maxVersion: UInt8 = Wire.supportedVersions.upperBound,
        pid: UInt32, agent: String
    ) {
        self.minVersion = minVersion
        self.maxVersion = maxVersion
        self.pid = pid
        self.agent = agent
    }

    /// The highest version both `local` and `remote` support, or nil if the ranges do not overlap.
    public static func negotiate(local: ClosedRange<UInt8>, remote: Hello) -> UInt8? {
        guard remote.minVersion <= remote.maxVersion else { return nil }
        let low = Swift.max(local.lowerBound, remote.minVersion)
        let high = Swift.min(local.upperBound, remote.maxVersion)
        return low <= high ? high : nil
    }
}

/// REQUEST: run `task` on `body`.
/// Payload: task (u16 length + 1...64 bytes of [a-z0-9_.-]), then the body as all remaining bytes.
/// With `streamed` (flag `more`) the body goes on in DATA frames.
public struct Request: Sendable, Equatable {
    public static let maxTaskBytes = 64

    public var task: String
    public var body: [UInt8]
    public var streamed: Bool

    public init(task: String, body: [UInt8] = [], streamed: Bool = false) {
        self.task = task
        self.body = body
        self.streamed = streamed
    }

    /// Whether `task` is a name the decoder accepts (senders can check before encoding).
    public static func isValidTask(_ task: String) -> Bool {
        let utf8 = task.utf8
        return (1...maxTaskBytes).contains(utf8.count) && utf8.allSatisfy(isTaskByte)
    }

    /// [a-z0-9_.-]: safe as a file or metric name, and ASCII so it cannot carry invalid UTF-8.
    @inline(__always)
    static func isTaskByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "-"):
            return true
        default:
            return false
        }
    }
}

/// RESPONSE: the task's output and what it cost.
/// Payload: cpuMicros u64, maxRSSKiB u64, then the body as all remaining bytes.
/// With `streamed` (flag `more`) the body goes on in DATA frames.
public struct Response: Sendable, Equatable {
    /// A RESPONSE payload's bytes besides its body (cpuMicros, maxRSSKiB).
    public static let overheadBytes = 16

    public var cpuMicros: UInt64
    public var maxRSSKiB: UInt64
    public var body: [UInt8]
    public var streamed: Bool

    public init(cpuMicros: UInt64, maxRSSKiB: UInt64, body: [UInt8] = [], streamed: Bool = false) {
        self.cpuMicros = cpuMicros
        self.maxRSSKiB = maxRSSKiB
        self.body = body
        self.streamed = streamed
    }
}

/// ERROR: why a request (or, with request id 0, the connection) failed.
/// Payload: code u16, message (u16 length + UTF-8, ≤ 1024 bytes).
public struct ErrorMessage: Sendable, Equatable {
    public static let maxMessageBytes = 1024

    public var code: ErrorCode
    public var message: String

    public init(code: ErrorCode, message: String = "") {
        self.code = code
        self.message = message
    }
}

/// An error code. A struct rather than an enum so codes added by a newer peer decode and pass
/// through (named "error_<n>") instead of failing the whole frame.
public struct ErrorCode: RawRepresentable, Sendable, Hashable, CustomStringConvertible {
    public var rawValue: UInt16

    public init(rawValue: UInt16) {
        self.rawValue = rawValue
    }

    public static let unknownTask = ErrorCode(rawValue: 1)
    public static let badRequest = ErrorCode(rawValue: 2)
    public static let taskFailed = ErrorCode(rawValue: 3)
    public static let protocolError = ErrorCode(rawValue: 4)
    public static let versionUnsupported = ErrorCode(rawValue: 5)
    public static let cancelled = ErrorCode(rawValue: 6)
    public static let overloaded = ErrorCode(rawValue: 7)
    public static let payloadTooLarge = ErrorCode(rawValue: 8)
    public static let notFound = ErrorCode(rawValue: 9)
    public static let `internal` = ErrorCode(rawValue: 10)
    /// Control socket: the peer may not do this (not an admin, or not allowed).
    public static let forbidden = ErrorCode(rawValue: 11)
    /// Control socket: the target already exists or is in the wrong state.
    public static let conflict = ErrorCode(rawValue: 12)
    /// A write would take the tenant's volume past its storage quota.
    public static let storageQuotaExceeded = ErrorCode(rawValue: 13)

    /// Every code this version defines, in numeric order.
    public static let known: [ErrorCode] = [
        .unknownTask, .badRequest, .taskFailed, .protocolError, .versionUnsupported,
        .cancelled, .overloaded, .payloadTooLarge, .notFound, .internal, .forbidden, .conflict, .storageQuotaExceeded,
    ]

    /// snake_case name for logs and metrics; "error_<n>" for a code this version does not know.
    public var name: String {
        switch rawValue {
        case 1: "unknown_task"
        case 2: "bad_request"
        case 3: "task_failed"
        case 4: "protocol_error"
        case 5: "version_unsupported"
        case 6: "cancelled"
        case 7: "overloaded"
        case 8: "payload_too_large"
        case 9: "not_found"
        case 10: "internal"
        case 11: "forbidden"
        case 12: "conflict"
        case 13: "storage_quota_exceeded"
        default: "error_\(rawValue)"
        }
    }

    public var description: String { name }
}

/// GOAWAY (supervisor → worker): finish the current request, then exit 0.
/// Payload: reason u8.
public struct GoAway: Sendable, Equatable {
    public enum Reason: UInt8, Sendable, CaseIterable {
        /// The worker reached its request or age limit and is replaced.
        case recycle = 1
        /// The pool is shrinking or being reconfigured.
        case drain = 2
        /// The daemon is stopping.
        case shutdown = 3
        /// The worker sat idle past the idle timeout.
        case idle = 4
    }

    public var reason: Reason

    public init(reason: Reason) {
        self.reason = reason
    }
}

// MARK: - Parsing and encoding helpers

/// Reads payload fields by index; every failure becomes `malformedPayload` naming the field.
private struct PayloadReader {
    let bytes: [UInt8]
    let type: FrameType
    var index = 0

    init(_ bytes: [UInt8], type: FrameType) {
        self.bytes = bytes
        self.type = type
    }

    var remaining: Int { bytes.count - index }

    func malformed(_ reason: String) -> WireError {
        .malformedPayload(type, reason)
    }

    /// Makes sure `count` more bytes exist before a fixed-size read.
    func need(_ count: Int, _ field: String) throws(WireError) {
        guard remaining >= count else {
            throw malformed("truncated: \(field) needs \(count) bytes at offset \(index), \(remaining) left")
        }
    }

    mutating func readUInt8(_ field: String) throws(WireError) -> UInt8 {
        try need(1, field)
        defer { index += 1 }
        return bytes[index]
    }

    mutating func readUInt16(_ field: String) throws(WireError) -> UInt16 {
        try need(2, field)
        defer { index += 2 }
        return bytes.readUInt16(at: index)
    }

    mutating func readUInt32(_ field: String) throws(WireError) -> UInt32 {
        try need(4, field)
        defer { index += 4 }
        return bytes.readUInt32(at: index)
    }

    mutating func readUInt64(_ field: String) throws(WireError) -> UInt64 {
        try need(8, field)
        defer { index += 8 }
        return bytes.readUInt64(at: index)
    }

    /// A u16 length prefix (checked against `maxBytes` before anything else) and that many bytes.
    mutating func readLengthPrefixed(_ field: String, maxBytes: Int) throws(WireError) -> Range<Int> {
        let count = Int(try readUInt16("\(field) length"))
        guard count <= maxBytes else {
            throw malformed("\(field) length \(count) exceeds \(maxBytes) bytes")
        }
        try need(count, field)
        defer { index += count }
        return index..<(index + count)
    }

    mutating func readString(_ field: String, maxBytes: Int) throws(WireError) -> String {
        let range = try readLengthPrefixed(field, maxBytes: maxBytes)
        guard let string = String(validating: bytes[range], as: UTF8.self) else {
            throw malformed("\(field) is not valid UTF-8")
        }
        return string
    }

    mutating func readTask() throws(WireError) -> String {
        let range = try readLengthPrefixed("task", maxBytes: Request.maxTaskBytes)
        guard !range.isEmpty else { throw malformed("task is empty") }
        for i in range where !Request.isTaskByte(bytes[i]) {
            throw malformed("task byte \(bytes[i]) at offset \(i) is not in [a-z0-9_.-]")
        }
        // All ASCII, so decoding cannot repair anything and the String round-trips byte for byte.
        return String(decoding: bytes[range], as: UTF8.self)
    }

    mutating func readRest() -> [UInt8] {
        defer { index = bytes.count }
        return index == 0 ? bytes : Array(bytes[index...])
    }

    /// For payloads whose size is fixed by their type.
    func expectCount(_ count: Int) throws(WireError) {
        guard bytes.count == count else {
            throw malformed("expected exactly \(count) payload bytes, got \(bytes.count)")
        }
    }

    func finish() throws(WireError) {
        guard remaining == 0 else {
            throw malformed("\(remaining) trailing bytes after offset \(index)")
        }
    }
}

/// How many leading UTF-8 bytes of `string` to send: all of them, or the longest prefix of at most
/// `maxBytes` that ends on a scalar boundary.
private func utf8PrefixCount(_ string: String, maxBytes: Int) -> Int {
    let utf8 = string.utf8
    let count = utf8.count
    guard count > maxBytes else { return count }
    var cut = maxBytes
    var i = utf8.index(utf8.startIndex, offsetBy: cut)
    // Back up while the byte at the cut continues the previous scalar (0b10xxxxxx).
    while cut > 0, utf8[i] & 0xC0 == 0x80 {
        cut -= 1
        utf8.formIndex(before: &i)
    }
    return cut
}

extension Array where Element == UInt8 {
    /// u16 length + UTF-8 bytes, cut to `maxBytes` on a scalar boundary.
    fileprivate mutating func appendString(_ string: String, maxBytes: Int) {
        let count = utf8PrefixCount(string, maxBytes: maxBytes)
        appendBigEndian(UInt16(truncatingIfNeeded: count))
        if count == string.utf8.count {
            append(contentsOf: string.utf8)
        } else {
            append(contentsOf: string.utf8.prefix(count))
        }
    }
}
