// The chunked transfer coding (RFC 9112 §7.1): chunk-size lines, extensions and the CRLF after each chunk.

/// A byte-at-a-time state machine over the framing between chunks; chunk data itself is handed out by
/// the parser in bulk. Everything it needs is in its own fields, so framing bytes are consumed as soon
/// as they are seen and nothing is rescanned however the stream is split.
struct ChunkDecoder: Sendable {
    enum Phase: UInt8, Sendable {
        case size
        case extNameStart  // after ';'
        case extName
        case extValueStart  // after '='
        case extToken
        case extQuoted
        case extQuotedPair  // after '\' inside a quoted string
        case extAfterQuoted
        case lineLF  // after the CR ending a chunk-size line
        case data
        case dataCR
        case dataLF
        case trailers  // after the last chunk: the parser scans the trailer section
    }

    /// Hex digits a chunk size may have (64 bits).
    static let maxSizeDigits = 16

    private(set) var phase = Phase.size
    private var size = 0
    private var digits = 0
    private var lineBytes = 0
    /// Data bytes of the current chunk not yet handed out.
    var remaining = 0
    /// Decoded bytes so far, checked against `maxBodyBytes` before each chunk is read.
    private var total = 0

    mutating func reset() { self = ChunkDecoder() }

    /// `n` bytes of chunk data were handed out.
    mutating func consumed(_ n: Int) {
        remaining -= n
        if remaining == 0 { phase = .dataCR }
    }

    /// Consumes framing bytes from `p[start...]` until chunk data or the trailer section begins, or the
    /// input runs out; returns the index of the first byte not consumed.
    mutating func consumeFraming(_ p: UnsafeBufferPointer<UInt8>, from start: Int, limits: HTTPLimits)
        throws(HTTPParseError) -> Int
    {
        var i = start
        while i < p.count {
            let b = p[i]
            switch phase {
            case .data, .trailers:
                return i
            case .dataCR:
                guard b == ASCII.cr else {
                    throw .badRequest("invalid_chunk_framing", "chunk data not followed by CRLF")
                }
                phase = .dataLF
                i += 1
                continue
            case .dataLF:
                guard b == ASCII.lf else {
                    throw .badRequest("invalid_chunk_framing", "chunk data not followed by CRLF")
                }
                phase = .size
                size = 0
                digits = 0
                lineBytes = 0
                i += 1
                continue
            case .lineLF:
                guard b == ASCII.lf else { throw .bareCR(in: "chunk-size line") }
                i += 1
                if size == 0 {
                    phase = .trailers
                } else {
                    remaining = size
                    total += size
                    phase = .data
                }
                return i
            default:
                break
            }

            // A byte of the chunk-size line itself.
            if b == ASCII.cr {
                switch phase {
                case .size: try sizeComplete(limits)
                case .extName, .extToken, .extAfterQuoted: break
                case .extQuoted, .extQuotedPair: throw malformedExtension("unterminated quoted string")
                default: throw malformedExtension("extension ends early")
                }
                phase = .lineLF
                i += 1
                continue
            }
            lineBytes += 1
            guard lineBytes <= limits.maxChunkLineBytes else {
                throw .badRequest("chunk_line_too_long", "chunk-size line longer than \(limits.maxChunkLineBytes) bytes")
            }
            if b == ASCII.lf { throw .bareLF(in: "chunk-size line") }
            switch phase {
            case .size:
                let h = ASCII.hexValue(b)
                if h >= 0 {
                    guard digits < Self.maxSizeDigits else {
                        throw .badRequest("invalid_chunk_size", "chunk size longer than \(Self.maxSizeDigits) hex digits")
                    }
                    guard size <= Int.max >> 4 else {
                        throw .badRequest("invalid_chunk_size", "chunk size overflows 63 bits")
                    }
                    size = size << 4 | h
                    digits += 1
                } else if b == ASCII.semicolon && digits > 0 {
                    try sizeComplete(limits)
                    phase = .extNameStart
                } else {
                    throw .invalidByte(b, in: "chunk size", code: "invalid_chunk_size")
                }
            case .extNameStart:
                guard ASCII.isTchar(b) else { throw malformedExtension(byte: b) }
                phase = .extName
            case .extName:
                if b == ASCII.equals {
                    phase = .extValueStart
                } else if b == ASCII.semicolon {
                    phase = .extNameStart
                } else if !ASCII.isTchar(b) {
                    throw malformedExtension(byte: b)
                }
            case .extValueStart:
                if b == ASCII.quote {
                    phase = .extQuoted
                } else if ASCII.isTchar(b) {
                    phase = .extToken
                } else {
                    throw malformedExtension(byte: b)
                }
            case .extToken:
                if b == ASCII.semicolon {
                    phase = .extNameStart
                } else if !ASCII.isTchar(b) {
                    throw malformedExtension(byte: b)
                }
            case .extQuoted:
                if b == ASCII.quote {
                    phase = .extAfterQuoted
                } else if b == ASCII.backslash {
                    phase = .extQuotedPair
                } else if !ASCII.isQdtext(b) {
                    throw malformedExtension(byte: b)
                }
            case .extQuotedPair:
                guard ASCII.isQuotedPairByte(b) else { throw malformedExtension(byte: b) }
                phase = .extQuoted
            case .extAfterQuoted:
                guard b == ASCII.semicolon else { throw malformedExtension(byte: b) }
                phase = .extNameStart
            case .lineLF, .data, .dataCR, .dataLF, .trailers:
                preconditionFailure("framing phases are handled above")
            }
            i += 1
        }
        return i
    }

    /// The size digits are complete: refuse an empty size, or a chunk that would pass the body limit.
    private func sizeComplete(_ limits: HTTPLimits) throws(HTTPParseError) {
        guard digits > 0 else { throw .badRequest("invalid_chunk_size", "empty chunk size") }
        guard size <= limits.maxBodyBytes - total else {
            throw HTTPParseError(
                status: 413, code: "body_too_large", reason: "chunked body exceeds the \(limits.maxBodyBytes)-byte limit")
        }
    }

    private func malformedExtension(byte: UInt8) -> HTTPParseError {
        .invalidByte(byte, in: "chunk extension", code: "invalid_chunk_extension")
    }

    private func malformedExtension(_ what: String) -> HTTPParseError {
        .badRequest("invalid_chunk_extension", "malformed chunk extension: \(what)")
    }
}
