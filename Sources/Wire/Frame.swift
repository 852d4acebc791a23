// The frame layer: protocol constants, the 20-byte header, frame types, `Frame` and its encoder.

/// Protocol-wide constants.
public enum Wire {
    /// The version this build writes into every header.
    public static let version: UInt8 = 1
    /// Versions this build can decode and negotiate.
    public static let supportedVersions: ClosedRange<UInt8> = 1...1
    /// Bytes in a frame header; the payload follows immediately.
    public static let headerSize = 20
    /// Default `FrameDecoder` payload limit (16 MiB).
    public static let defaultMaxPayload = 16 << 20
    /// Largest non-body part of any payload: a REQUEST's task length prefix plus a 64-byte task.
    public static let maxPayloadOverhead = 2 + Request.maxTaskBytes
    /// Largest payload a message without a body can need (ERROR with a 1024-byte message).
    public static let maxControlPayload = 2 + 2 + ErrorMessage.maxMessageBytes

    /// The decoder limit to use when request and response bodies may be up to `bodyBytes` long.
    /// Never below `maxControlPayload`, so HELLO and ERROR always fit; saturates instead of overflowing.
    public static func maxPayload(forBodyBytes bodyBytes: Int) -> Int {
        let (sum, overflow) = Swift.max(bodyBytes, 0).addingReportingOverflow(maxPayloadOverhead)
        return overflow ? Int.max : Swift.max(sum, maxControlPayload)
    }

    /// "BH", the first two bytes of every frame.
    static let magic0: UInt8 = 0x42
    static let magic1: UInt8 = 0x48
}

/// What a frame carries; the payload layout of each is defined in `Messages.swift` and docs/PROTOCOL.md.
public enum FrameType: UInt8, Sendable, CaseIterable {
    case hello = 1
    case request = 2
    case response = 3
    case error = 4
    case ping = 5
    case pong = 6
    case cancel = 7
    case goaway = 8
    /// A piece of a streamed request or response body (see `Frame.more`).
    case data = 9

    /// The flag bits this type may carry: `more` on the frames that can start or continue a
    /// streamed body, nothing on the others.
    var allowedFlags: UInt16 {
        switch self {
        case .request, .response, .data: Frame.more
        default: 0
        }
    }
}

/// One frame: header fields plus the raw payload. `Message` gives the payload its typed meaning.
public struct Frame: Sendable, Equatable {
    public var type: FrameType
    /// `Frame.more` on REQUEST, RESPONSE and DATA; a peer rejects any other set bit.
    public var flags: UInt16
    /// Which request this frame belongs to; 0 for connection-level frames.
    public var requestID: UInt64
    public var payload: [UInt8]

    /// Flag bit 0 on REQUEST, RESPONSE and DATA: the body goes on in DATA frames with the
    /// same request id; the DATA frame without it is the last.
    public static let more: UInt16 = 0x0001

    public init(type: FrameType, flags: UInt16 = 0, requestID: UInt64 = 0, payload: [UInt8] = []) {
        self.type = type
        self.flags = flags
        self.requestID = requestID
        self.payload = payload
    }

    /// Appends header and payload to `out`.
    /// - Precondition: `payload.count <= UInt32.max` (the length field cannot express more).
    public func encode(into out: inout [UInt8]) {
        out.reserveAppending(Wire.headerSize + payload.count)
        out.appendHeader(type: type, flags: flags, requestID: requestID, length: payloadLength(payload.count))
        out.append(contentsOf: payload)
    }

    /// The frame's wire bytes.
    public var encoded: [UInt8] {
        var out: [UInt8] = []
        encode(into: &out)
        return out
    }
}

/// The validated fixed fields of a header; internal because callers only ever see whole `Frame`s.
struct FrameHeader: Sendable, Equatable {
    var type: FrameType
    var flags: UInt16
    var requestID: UInt64
    var length: UInt32

    /// Parses and validates the 20 header bytes at `offset` in the order the fields appear,
    /// so the first bad field is the one reported.
    /// - Precondition: `bytes.count - offset >= Wire.headerSize` (checked by the caller).
    static func parse(_ bytes: [UInt8], at offset: Int) throws(WireError) -> FrameHeader {
        guard bytes[offset] == Wire.magic0, bytes[offset + 1] == Wire.magic1 else { throw .badMagic }
        let version = bytes[offset + 2]
        guard Wire.supportedVersions.contains(version) else { throw .unsupportedVersion(version) }
        let rawType = bytes[offset + 3]
        guard let type = FrameType(rawValue: rawType) else { throw .unknownType(rawType) }
        let flags = bytes.readUInt16(at: offset + 4)
        guard flags & ~type.allowedFlags == 0 else { throw .unknownFlags(flags) }
        guard bytes[offset + 6] == 0, bytes[offset + 7] == 0 else { throw .reservedNotZero }
        return FrameHeader(
            type: type, flags: flags,
            requestID: bytes.readUInt64(at: offset + 8),
            length: bytes.readUInt32(at: offset + 16))
    }
}

/// Converts a payload size to the header's length field.
@inline(__always)
func payloadLength(_ count: Int) -> UInt32 {
    // A frame longer than 4 GiB cannot be expressed; sending a wrong length would desynchronise the
    // stream, so this is a programmer error, not an input error.
    precondition(count >= 0 && count <= Int(UInt32.max), "Wire: payload of \(count) bytes does not fit a frame")
    return UInt32(truncatingIfNeeded: count)
}

// Big-endian appends and reads, by index, on plain byte arrays (the hot path: no Foundation, no formatting).
extension Array where Element == UInt8 {
    /// Makes room for `count` more bytes with one allocation at most. Grows at least geometrically:
    /// a bare `reserveCapacity(self.count + n)` allocates exactly, so appending many frames to one
    /// buffer would reallocate (and copy) on every frame.
    @inline(__always)
    mutating func reserveAppending(_ count: Int) {
        let needed = self.count + count
        if needed > capacity {
            reserveCapacity(Swift.max(needed, capacity &* 2))
        }
    }

    @inline(__always)
    mutating func appendBigEndian(_ value: UInt16) {
        append(UInt8(truncatingIfNeeded: value &>> 8))
        append(UInt8(truncatingIfNeeded: value))
    }

    @inline(__always)
    mutating func appendBigEndian(_ value: UInt32) {
        Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
    }

    @inline(__always)
    mutating func appendBigEndian(_ value: UInt64) {
        Swift.withUnsafeBytes(of: value.bigEndian) { append(contentsOf: $0) }
    }

    /// Appends the 20 header bytes; the caller has already reserved capacity.
    @inline(__always)
    mutating func appendHeader(type: FrameType, flags: UInt16, requestID: UInt64, length: UInt32) {
        append(Wire.magic0)
        append(Wire.magic1)
        append(Wire.version)
        append(type.rawValue)
        appendBigEndian(flags)
        append(0)
        append(0)
        appendBigEndian(requestID)
        appendBigEndian(length)
    }

    @inline(__always)
    func readUInt16(at i: Int) -> UInt16 {
        UInt16(self[i]) &<< 8 | UInt16(self[i + 1])
    }

    @inline(__always)
    func readUInt32(at i: Int) -> UInt32 {
        UInt32(self[i]) &<< 24 | UInt32(self[i + 1]) &<< 16 | UInt32(self[i + 2]) &<< 8 | UInt32(self[i + 3])
    }

    @inline(__always)
    func readUInt64(at i: Int) -> UInt64 {
        UInt64(readUInt32(at: i)) &<< 32 | UInt64(readUInt32(at: i + 4))
    }
}
