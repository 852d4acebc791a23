// The resumable scanner of a head (request line + header fields) or a trailer section.

/// Scans one block of CRLF-terminated lines, validating every byte once, and remembers where it
/// stopped so that a block arriving in many pieces is still scanned in linear time.
///
/// Positions are relative to the block's first byte (`base`), which stays put in the parser's buffer
/// until the block is complete, so compaction of the buffer does not invalidate them.
struct BlockScanner: Sendable {
    enum Kind: Sendable { case head, trailers }

    enum Phase: UInt8, Sendable {
        case emptyLineLF  // after the CR of an empty line before the request line
        case requestStart  // before the request line; a few empty lines are skipped
        case method
        case target
        case version
        case requestLineLF
        case fieldStart  // at the start of a field line or of the blank line ending the block
        case fieldName
        case valueStart  // after the colon, skipping OWS
        case value
        case fieldLF
        case endLF
        case done
    }

    /// Empty lines tolerated before a request line (RFC 9112 §2.2 asks for at least one).
    static let maxEmptyLines = 4

    private(set) var kind: Kind
    private(set) var phase: Phase
    /// Where scanning resumes.
    private(set) var pos = 0
    private var emptyLines = 0
    private(set) var methodStart = 0
    private(set) var methodEnd = 0
    private(set) var targetStart = 0
    private(set) var targetEnd = 0
    private var versionStart = 0
    private(set) var version = HTTPVersion.http1_1
    /// Start of the first field line (end of the request line).
    private(set) var fieldsStart = 0
    private var lineStart = 0
    private var nameEnd = 0
    private var valueStart = 0
    /// Completed fields; capacity is kept from one request to the next.
    private(set) var fields: [HTTPHeaders.Field] = []

    init(kind: Kind) {
        self.kind = kind
        phase = kind == .head ? .requestStart : .fieldStart
    }

    /// Nothing of a block has been seen yet.
    var isAtStart: Bool { pos == 0 && (phase == .requestStart || phase == .fieldStart) }

    mutating func reset(kind: Kind) {
        self.kind = kind
        phase = kind == .head ? .requestStart : .fieldStart
        pos = 0
        emptyLines = 0
        fieldsStart = 0
        fields.removeAll(keepingCapacity: fields.capacity <= 256)
    }

    /// Scans `p[base + pos ...]`; true once the block is complete (then `pos` is its length).
    ///
    /// `limit` caps the block length: reaching it unfinished throws 431 (the caller never needs to buffer
    /// more). The request-target is capped separately by `maxTarget` (414) as soon as it grows past it.
    mutating func scan(
        _ p: UnsafeBufferPointer<UInt8>, base: Int, limit: Int, maxFields: Int, maxTarget: Int
    ) throws(HTTPParseError) -> Bool {
        let end = p.count - base > limit ? base + limit : p.count
        var i = base + pos
        defer { pos = i - base }

        // Phases are in stream order and each falls through to the next, so a line that is all there
        // costs one dispatch; `break scan` means the input ran out, `continue scan` re-dispatches.
        scan: while i < end {
            switch phase {
            case .emptyLineLF:
                guard p[i] == ASCII.lf else { throw .bareCR(in: "request line") }
                i &+= 1
                emptyLines += 1
                guard emptyLines <= Self.maxEmptyLines else {
                    throw .badRequest(
                        "invalid_request_line", "more than \(Self.maxEmptyLines) empty lines before the request line")
                }
                phase = .requestStart
                continue scan

            case .requestStart:
                let b = p[i]
                if b == ASCII.cr {
                    phase = .emptyLineLF
                    i &+= 1
                    continue scan
                }
                if b == ASCII.lf { throw .bareLF(in: "request line") }
                methodStart = i - base
                phase = .method
                fallthrough

            case .method:
                while i < end && ASCII.isTchar(p[i]) { i &+= 1 }
                guard i < end else { break scan }
                let b = p[i]
                guard b == ASCII.sp else {
                    if b == ASCII.cr || b == ASCII.lf {
                        throw .badRequest("invalid_request_line", "request line must be 'method SP target SP version'")
                    }
                    throw .invalidByte(b, in: "method", code: "invalid_method")
                }
                guard i - base > methodStart else {
                    throw .badRequest("invalid_request_line", "empty method (request line starts with SP)")
                }
                methodEnd = i - base
                i &+= 1
                targetStart = i - base
                phase = .target
                fallthrough

            case .target:
                let start = base + targetStart
                // Stop one byte past the limit so an overlong target is refused before its end arrives.
                let stop = end - start > maxTarget ? start + maxTarget + 1 : end
                i = ASCII.skipTargetBytes(p, from: i, to: stop)
                if i - start > maxTarget {
                    throw HTTPParseError(
                        status: 414, code: "target_too_long", reason: "request target longer than \(maxTarget) bytes")
                }
                guard i < end else { break scan }
                let b = p[i]
                guard b == ASCII.sp else {
                    switch b {
                    case ASCII.cr: throw .badRequest("invalid_request_line", "request line without an HTTP version")
                    case ASCII.lf: throw .bareLF(in: "request line")
                    case ASCII.hash: throw .badRequest("invalid_target", "fragment ('#') in request target")
                    default: throw .invalidByte(b, in: "request target", code: "invalid_target")
                    }
                }
                guard i > start else {
                    throw .badRequest("invalid_request_line", "empty request target (more than one SP after the method)")
                }
                targetEnd = i - base
                i &+= 1
                versionStart = i - base
                phase = .version
                fallthrough

            case .version:
                let start = base + versionStart
                while i < end {
                    let b = p[i]
                    if b == ASCII.cr { break }
                    if b == ASCII.lf { throw .bareLF(in: "request line") }
                    // "HTTP/1.1" is 8 bytes; a 9th (a trailing space, say) is already wrong.
                    guard i - start < 8, b > 0x20, b < 0x7F else {
                        throw .badRequest(
                            "invalid_version",
                            "malformed HTTP version \(HTTPParseError.quoted(UnsafeBufferPointer(rebasing: p[start...i])))")
                    }
                    i &+= 1
                }
                guard i < end else { break scan }
                version = try Self.parseVersion(p, start, i)
                if ASCII.equals(p, base + methodStart, base + methodEnd, "CONNECT") {
                    throw HTTPParseError(
                        status: 501, code: "unsupported_method", reason: "CONNECT (tunnelling) is not supported")
                }
                i &+= 1
                phase = .requestLineLF
                fallthrough

            case .requestLineLF:
                guard i < end else { break scan }
                guard p[i] == ASCII.lf else { throw .bareCR(in: "request line") }
                i &+= 1
                fieldsStart = i - base
                phase = .fieldStart
                fallthrough

            case .fieldStart:
                guard i < end else { break scan }
                let b = p[i]
                if b == ASCII.cr {
                    i &+= 1
                    phase = .endLF
                    continue scan
                }
                if ASCII.isOWS(b) {
                    throw fields.isEmpty
                        ? .badRequest("obsolete_line_folding", "whitespace before the first \(fieldWord) field")
                        : .badRequest(
                            "obsolete_line_folding", "obsolete line folding (a \(fieldWord) line starts with whitespace)")
                }
                if b == ASCII.lf { throw .bareLF(in: "\(fieldWord) section") }
                guard fields.count < maxFields else {
                    throw HTTPParseError(
                        status: 431, code: kind == .head ? "too_many_headers" : "too_many_trailers",
                        reason: "more than \(maxFields) \(fieldWord) fields")
                }
                lineStart = i - base
                phase = .fieldName
                fallthrough

            case .fieldName:
                while i < end && ASCII.isTchar(p[i]) { i &+= 1 }
                guard i < end else { break scan }
                let b = p[i]
                guard b == ASCII.colon else {
                    switch b {
                    case ASCII.sp, ASCII.htab:
                        throw .badRequest("invalid_header_name", "whitespace between \(fieldWord) field name and colon")
                    case ASCII.cr: throw .badRequest("invalid_header_name", "\(fieldWord) line without a colon")
                    case ASCII.lf: throw .bareLF(in: "\(fieldWord) field")
                    default: throw .invalidByte(b, in: "\(fieldWord) field name", code: "invalid_header_name")
                    }
                }
                guard i - base > lineStart else {
                    throw .badRequest("invalid_header_name", "empty \(fieldWord) field name")
                }
                nameEnd = i - base
                i &+= 1
                phase = .valueStart
                fallthrough

            case .valueStart:
                while i < end && ASCII.isOWS(p[i]) { i &+= 1 }
                guard i < end else { break scan }
                valueStart = i - base
                phase = .value
                fallthrough

            case .value:
                i = ASCII.skipFieldValueBytes(p, from: i, to: end)
                guard i < end else { break scan }
                let b = p[i]
                guard b == ASCII.cr else {
                    if b == ASCII.lf { throw .bareLF(in: "\(fieldWord) field") }
                    throw .invalidByte(b, in: "\(fieldWord) value", code: "invalid_header_value")
                }
                var valueEnd = i
                while valueEnd > base + valueStart && ASCII.isOWS(p[valueEnd - 1]) { valueEnd -= 1 }
                fields.append(
                    HTTPHeaders.Field(
                        nameStart: lineStart, nameEnd: nameEnd, valueStart: valueStart, valueEnd: valueEnd - base))
                i &+= 1
                phase = .fieldLF
                fallthrough

            case .fieldLF:
                guard i < end else { break scan }
                guard p[i] == ASCII.lf else { throw .bareCR(in: "\(fieldWord) field") }
                i &+= 1
                phase = .fieldStart
                continue scan

            case .endLF:
                guard p[i] == ASCII.lf else { throw .bareCR(in: "\(fieldWord) section") }
                i &+= 1
                phase = .done
                return true

            case .done:
                return true
            }
        }
        if i - base == limit {
            throw kind == .head
                ? HTTPParseError(status: 431, code: "headers_too_large", reason: "header section larger than \(limit) bytes")
                : HTTPParseError(status: 431, code: "trailers_too_large", reason: "trailer section larger than \(limit) bytes")
        }
        return false
    }

    private var fieldWord: String { kind == .head ? "header" : "trailer" }

    /// `HTTP/DIGIT.DIGIT` exactly; 1.0 and 1.1 accepted, any other well-formed version is 505.
    private static func parseVersion(_ p: UnsafeBufferPointer<UInt8>, _ start: Int, _ end: Int) throws(HTTPParseError)
        -> HTTPVersion
    {
        guard end - start == 8, ASCII.equals(p, start, start + 5, "HTTP/"), ASCII.isDigit(p[start + 5]),
            p[start + 6] == UInt8(ascii: "."), ASCII.isDigit(p[start + 7])
        else {
            throw .badRequest(
                "invalid_version",
                "malformed HTTP version \(HTTPParseError.quoted(UnsafeBufferPointer(rebasing: p[start..<end])))")
        }
        let major = Int(p[start + 5] - 0x30)
        let minor = Int(p[start + 7] - 0x30)
        guard major == 1, minor <= 1 else {
            throw HTTPParseError(
                status: 505, code: "unsupported_version", reason: "HTTP/\(major).\(minor) is not supported (use HTTP/1.1)")
        }
        return HTTPVersion(major: major, minor: minor)
    }
}
