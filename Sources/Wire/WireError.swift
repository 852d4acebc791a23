// The one error type every Wire failure is reported as; any of these means "close this connection".

public enum WireError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The first two header bytes are not "BH": the peer is not speaking this protocol (or we lost sync).
    case badMagic
    /// The header's version byte is outside `Wire.supportedVersions`.
    case unsupportedVersion(UInt8)
    /// The header's type byte is not a `FrameType` this version knows.
    case unknownType(UInt8)
    /// A flag bit is set that this version does not define for the frame's type.
    case unknownFlags(UInt16)
    /// Header bytes 6..<8 are not zero.
    case reservedNotZero
    /// The header announces a payload longer than the decoder's limit; detected before any payload is buffered.
    case frameTooLarge(length: UInt32, max: Int)
    /// The frame is well formed but its payload does not parse as its type's message.
    case malformedPayload(FrameType, String)

    public var description: String {
        switch self {
        case .badMagic:
            return "bad frame magic: expected 0x42 0x48 (\"BH\")"
        case .unsupportedVersion(let version):
            return "unsupported protocol version \(version) (supported \(Wire.supportedVersions.lowerBound)...\(Wire.supportedVersions.upperBound))"
        case .unknownType(let type):
            return "unknown frame type \(type)"
        case .unknownFlags(let flags):
            return "unknown frame flags 0x\(hex16(flags))"
        case .reservedNotZero:
            return "reserved header bytes 6..<8 are not zero"
        case .frameTooLarge(let length, let max):
            return "frame payload length \(length) exceeds the maximum of \(max) bytes"
        case .malformedPayload(let type, let reason):
            return "malformed \(type) payload: \(reason)"
        }
    }
}

/// Four lowercase hex digits, zero padded (the stdlib has no padding formatter and we avoid Foundation).
private func hex16(_ value: UInt16) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: 4 - digits.count) + digits
}
