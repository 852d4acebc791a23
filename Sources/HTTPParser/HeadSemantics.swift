// What a scanned head means: method, target form, Host, framing (the smuggling defences), Connection, Expect.

/// How the body of a request is delimited.
enum BodyFraming: Sendable {
    case none
    case length(Int)
    case chunked
}

enum HeadSemantics {
    /// Builds the request head from a complete block scanned at `p[base...]`, refusing anything ambiguous.
    static func makeHead(
        _ p: UnsafeBufferPointer<UInt8>, base: Int, scanner s: BlockScanner, limits: HTTPLimits
    ) throws(HTTPParseError) -> (HTTPRequestHead, BodyFraming) {
        let version = s.version
        let fields = s.fields

        // One pass over the fields for the ones that matter to framing and connection handling.
        var hostCount = 0
        var host = HTTPHeaders.Field(nameStart: 0, nameEnd: 0, valueStart: 0, valueEnd: 0)
        var lengthCount = 0
        var length = host
        var codingCount = 0
        var coding = host
        var close = false
        var keepAliveToken = false
        var expectsContinue = false
        var badExpectation: HTTPHeaders.Field?
        for f in fields {
            let ns = base + f.nameStart
            let ne = base + f.nameEnd
            let vs = base + f.valueStart
            let ve = base + f.valueEnd
            switch ne - ns {
            case 4 where ASCII.equalsLowercase(p, ns, ne, "host"):
                hostCount += 1
                if hostCount == 1 { host = f }
            case 6 where ASCII.equalsLowercase(p, ns, ne, "expect"):
                if ASCII.equalsLowercase(p, vs, ve, "100-continue") {
                    expectsContinue = true
                } else if badExpectation == nil {
                    badExpectation = f
                }
            case 10 where ASCII.equalsLowercase(p, ns, ne, "connection"):
                try parseConnection(p, vs, ve, close: &close, keepAlive: &keepAliveToken)
            case 14 where ASCII.equalsLowercase(p, ns, ne, "content-length"):
                lengthCount += 1
                if lengthCount == 1 { length = f }
            case 17 where ASCII.equalsLowercase(p, ns, ne, "transfer-encoding"):
                codingCount += 1
                if codingCount == 1 { coding = f }
            default:
                break
            }
        }

        guard hostCount <= 1 else { throw .badRequest("duplicate_host", "more than one Host header") }
        if hostCount == 0 && version.minor == 1 {
            throw .badRequest("missing_host", "HTTP/1.1 request without a Host header")
        }
        if hostCount == 1 && !isValidHost(p, base + host.valueStart, base + host.valueEnd, allowEmpty: true) {
            throw .badRequest(
                "invalid_host",
                "invalid Host header \(HTTPParseError.quoted(UnsafeBufferPointer(rebasing: p[(base + host.valueStart)..<(base + host.valueEnd)])))"
            )
        }

        // Framing. Every combination a front end and a back end could read differently is refused.
        var framing = BodyFraming.none
        if codingCount > 0 {
            guard version.minor == 1 else {
                throw .badRequest("invalid_transfer_encoding", "Transfer-Encoding in an HTTP/1.0 request")
            }
            guard lengthCount == 0 else {
                throw .badRequest("conflicting_framing", "both Transfer-Encoding and Content-Length")
            }
            guard codingCount == 1 else {
                throw .badRequest("invalid_transfer_encoding", "more than one Transfer-Encoding header")
            }
            try checkTransferEncoding(p, base + coding.valueStart, base + coding.valueEnd)
            framing = .chunked
        } else if lengthCount > 0 {
            guard lengthCount == 1 else {
                throw .badRequest("invalid_content_length", "more than one Content-Length header")
            }
            let n = try parseContentLength(p, base + length.valueStart, base + length.valueEnd, max: limits.maxBodyBytes)
            if n > 0 { framing = .length(n) }
        }

        // The target: origin-form, asterisk-form (OPTIONS only) or absolute-form with a host.
        let ts = base + s.targetStart
        let te = base + s.targetEnd
        let method = makeMethod(p, base + s.methodStart, base + s.methodEnd)
        let target = ASCII.string(p, ts, te)
        var path: String
        var query: String?
        var hostString: String
        switch p[ts] {
        case ASCII.slash:
            (path, query) = splitPath(p, ts, te, whole: target)
            hostString = hostCount == 1 ? ASCII.string(p, base + host.valueStart, base + host.valueEnd) : ""
        case ASCII.star:
            guard te - ts == 1, method == .options else {
                throw .badRequest("invalid_target", "asterisk-form target is only allowed for OPTIONS *")
            }
            path = "*"
            query = nil
            hostString = hostCount == 1 ? ASCII.string(p, base + host.valueStart, base + host.valueEnd) : ""
        default:
            var schemeEnd = ts
            if ASCII.equalsLowercase(p, ts, min(te, ts + 7), "http://") {
                schemeEnd = ts + 7
            } else if ASCII.equalsLowercase(p, ts, min(te, ts + 8), "https://") {
                schemeEnd = ts + 8
            } else {
                throw .badRequest(
                    "invalid_target", "request target must be origin-form ('/...'), absolute-form (http://...) or '*'")
            }
            var authorityEnd = schemeEnd
            while authorityEnd < te && p[authorityEnd] != ASCII.slash && p[authorityEnd] != ASCII.question {
                authorityEnd += 1
            }
            guard isValidHost(p, schemeEnd, authorityEnd, allowEmpty: false) else {
                throw .badRequest("invalid_target", "absolute-form target without a valid host (userinfo is refused)")
            }
            if hostCount == 1
                && !ASCII.equalsIgnoringCase(
                    p, schemeEnd, authorityEnd, p, base + host.valueStart, base + host.valueEnd)
            {
                throw .badRequest("host_mismatch", "Host header differs from the host of the absolute-form target")
            }
            hostString = ASCII.string(p, schemeEnd, authorityEnd)
            if authorityEnd == te {
                path = "/"
                query = nil
            } else if p[authorityEnd] == ASCII.question {
                path = "/"
                query = ASCII.string(p, authorityEnd + 1, te)
            } else {
                (path, query) = splitPath(p, authorityEnd, te, whole: nil)
            }
        }

        if let f = badExpectation {
            throw HTTPParseError(
                status: 417, code: "unsupported_expectation",
                reason: "unsupported expectation \(HTTPParseError.quoted(UnsafeBufferPointer(rebasing: p[(base + f.valueStart)..<(base + f.valueEnd)])))"
            )
        }

        let contentLength: Int?
        let isChunked: Bool
        switch framing {
        case .none: (contentLength, isChunked) = (lengthCount > 0 ? 0 : nil, false)
        case .length(let n): (contentLength, isChunked) = (n, false)
        case .chunked: (contentLength, isChunked) = (nil, true)
        }
        let hasBody = isChunked || (contentLength ?? 0) > 0

        let headers = makeHeaders(p, base: base + s.fieldsStart, rebase: s.fieldsStart, fields: fields)
        let head = HTTPRequestHead(
            method: method, target: target, path: path, query: query, version: version, headers: headers,
            contentLength: contentLength, isChunked: isChunked,
            keepAlive: version.minor == 1 ? !close : keepAliveToken && !close,
            // RFC 9110 §10.1.1: 100-continue is ignored in HTTP/1.0, and pointless without a body.
            expectsContinue: expectsContinue && hasBody && version.minor == 1,
            host: hostString)
        return (head, framing)
    }

    /// Copies the field bytes of a block into an `HTTPHeaders` (one byte array, one offset array).
    static func makeHeaders(
        _ p: UnsafeBufferPointer<UInt8>, base: Int, rebase: Int, fields: [HTTPHeaders.Field]
    ) -> HTTPHeaders {
        guard let last = fields.last else { return HTTPHeaders() }
        let bytes = Array(UnsafeBufferPointer(rebasing: p[base..<(base + last.valueEnd - rebase)]))
        let shifted = [HTTPHeaders.Field](unsafeUninitializedCapacity: fields.count) { out, count in
            for (k, f) in fields.enumerated() {
                (out.baseAddress! + k).initialize(
                    to: HTTPHeaders.Field(
                        nameStart: f.nameStart - rebase, nameEnd: f.nameEnd - rebase,
                        valueStart: f.valueStart - rebase, valueEnd: f.valueEnd - rebase))
            }
            count = fields.count
        }
        return HTTPHeaders(bytes: bytes, fields: shifted)
    }

    /// Trailers may not carry framing or routing fields: a back end could otherwise be told something
    /// after the head that contradicts it.
    static func checkTrailers(_ p: UnsafeBufferPointer<UInt8>, base: Int, fields: [HTTPHeaders.Field])
        throws(HTTPParseError)
    {
        for f in fields {
            let ns = base + f.nameStart
            let ne = base + f.nameEnd
            if ASCII.equalsLowercase(p, ns, ne, "content-length")
                || ASCII.equalsLowercase(p, ns, ne, "transfer-encoding")
                || ASCII.equalsLowercase(p, ns, ne, "host")
            {
                throw .badRequest(
                    "forbidden_trailer",
                    "\(HTTPParseError.quoted(UnsafeBufferPointer(rebasing: p[ns..<ne]))) is not allowed in trailers")
            }
        }
    }

    private static func makeMethod(_ p: UnsafeBufferPointer<UInt8>, _ s: Int, _ e: Int) -> HTTPMethod {
        switch e - s {
        case 3:
            if ASCII.equals(p, s, e, "GET") { return .get }
            if ASCII.equals(p, s, e, "PUT") { return .put }
        case 4:
            if ASCII.equals(p, s, e, "POST") { return .post }
            if ASCII.equals(p, s, e, "HEAD") { return .head }
        case 5:
            if ASCII.equals(p, s, e, "PATCH") { return .patch }
        case 6:
            if ASCII.equals(p, s, e, "DELETE") { return .delete }
        case 7:
            if ASCII.equals(p, s, e, "OPTIONS") { return .options }
        default:
            break
        }
        return .other(ASCII.string(p, s, e))
    }

    /// Path and query of `p[s..<e]`; `whole` is the same bytes as a String, reused when there is no query.
    private static func splitPath(_ p: UnsafeBufferPointer<UInt8>, _ s: Int, _ e: Int, whole: String?)
        -> (String, String?)
    {
        var q = s
        while q < e && p[q] != ASCII.question { q += 1 }
        if q == e { return (whole ?? ASCII.string(p, s, e), nil) }
        return (ASCII.string(p, s, q), ASCII.string(p, q + 1, e))
    }

    /// Content-Length = 1*DIGIT, nothing else: no sign, no spaces inside, no list (even "5, 5"), no hex.
    private static func parseContentLength(_ p: UnsafeBufferPointer<UInt8>, _ s: Int, _ e: Int, max: Int)
        throws(HTTPParseError) -> Int
    {
        guard s < e else { throw .badRequest("invalid_content_length", "empty Content-Length") }
        for i in s..<e where !ASCII.isDigit(p[i]) {
            if p[i] == ASCII.comma {
                throw .badRequest("invalid_content_length", "Content-Length must be a single value, not a list")
            }
            throw .badRequest(
                "invalid_content_length",
                "Content-Length must be decimal digits only, got \(HTTPParseError.quoted(UnsafeBufferPointer(rebasing: p[s..<e])))"
            )
        }
        var n = 0
        for i in s..<e {
            let (tens, o1) = n.multipliedReportingOverflow(by: 10)
            let (next, o2) = tens.addingReportingOverflow(Int(p[i] &- 0x30))
            guard !o1 && !o2 && next <= max else {
                throw HTTPParseError(
                    status: 413, code: "body_too_large", reason: "Content-Length exceeds the \(max)-byte body limit")
            }
            n = next
        }
        return n
    }

    /// Transfer-Encoding must be exactly `chunked`. Other well-formed codings are 501, malformed lists 400,
    /// and `chunked` twice or with parameters 400.
    private static func checkTransferEncoding(_ p: UnsafeBufferPointer<UInt8>, _ s: Int, _ e: Int)
        throws(HTTPParseError)
    {
        if ASCII.equalsLowercase(p, s, e, "chunked") { return }
        let malformed = HTTPParseError.badRequest(
            "invalid_transfer_encoding",
            "malformed Transfer-Encoding \(HTTPParseError.quoted(UnsafeBufferPointer(rebasing: p[s..<e])))")
        var i = s
        var chunkedCount = 0
        var chunkedHasParameters = false
        var unknown: (Int, Int)?
        func skipOWS() { while i < e && ASCII.isOWS(p[i]) { i += 1 } }
        func token() -> (Int, Int) {
            let start = i
            while i < e && ASCII.isTchar(p[i]) { i += 1 }
            return (start, i)
        }
        while true {
            skipOWS()
            let (cs, ce) = token()
            guard ce > cs else { throw malformed }
            let isChunked = ASCII.equalsLowercase(p, cs, ce, "chunked")
            if isChunked { chunkedCount += 1 } else if unknown == nil { unknown = (cs, ce) }
            skipOWS()
            while i < e && p[i] == ASCII.semicolon {
                i += 1
                skipOWS()
                let (ns, ne) = token()
                guard ne > ns else { throw malformed }
                skipOWS()
                guard i < e && p[i] == ASCII.equals else { throw malformed }
                i += 1
                skipOWS()
                if i < e && p[i] == ASCII.quote {
                    guard skipQuotedString(p, &i, e) else { throw malformed }
                } else {
                    let (vs, ve) = token()
                    guard ve > vs else { throw malformed }
                }
                if isChunked { chunkedHasParameters = true }
                skipOWS()
            }
            if i == e { break }
            guard p[i] == ASCII.comma else { throw malformed }
            i += 1
        }
        if let (us, ue) = unknown {
            throw HTTPParseError(
                status: 501, code: "unsupported_transfer_encoding",
                reason: "unsupported transfer coding \(HTTPParseError.quoted(UnsafeBufferPointer(rebasing: p[us..<ue])))")
        }
        if chunkedCount > 1 {
            throw .badRequest("invalid_transfer_encoding", "chunked applied more than once")
        }
        if chunkedHasParameters {
            throw .badRequest("invalid_transfer_encoding", "chunked takes no parameters")
        }
        throw malformed  // unreachable: a single plain "chunked" took the fast path
    }

    /// Skips a quoted-string starting at `p[i]` (a `"`); false if it is malformed or unterminated.
    private static func skipQuotedString(_ p: UnsafeBufferPointer<UInt8>, _ i: inout Int, _ e: Int) -> Bool {
        i += 1
        while i < e {
            let b = p[i]
            if b == ASCII.quote {
                i += 1
                return true
            } else if b == ASCII.backslash {
                guard i + 1 < e, ASCII.isQuotedPairByte(p[i + 1]) else { return false }
                i += 2
            } else if ASCII.isQdtext(b) {
                i += 1
            } else {
                return false
            }
        }
        return false
    }

    /// Connection = #token; "close" and "keep-alive" are recognised (any case), empty elements tolerated.
    private static func parseConnection(
        _ p: UnsafeBufferPointer<UInt8>, _ s: Int, _ e: Int, close: inout Bool, keepAlive: inout Bool
    ) throws(HTTPParseError) {
        var i = s
        while i < e {
            while i < e && (ASCII.isOWS(p[i]) || p[i] == ASCII.comma) { i += 1 }
            let ts = i
            while i < e && ASCII.isTchar(p[i]) { i += 1 }
            if ASCII.equalsLowercase(p, ts, i, "close") {
                close = true
            } else if ASCII.equalsLowercase(p, ts, i, "keep-alive") {
                keepAlive = true
            }
            while i < e && ASCII.isOWS(p[i]) { i += 1 }
            guard i == e || p[i] == ASCII.comma else {
                throw .badRequest(
                    "invalid_connection",
                    "malformed Connection header \(HTTPParseError.quoted(UnsafeBufferPointer(rebasing: p[s..<e])))")
            }
        }
    }

    /// uri-host [ ":" port ], where uri-host is a bracketed IP literal or a reg-name of letters, digits
    /// and `-._~%` (stricter than RFC 3986: sub-delims and userinfo are refused), and port is 1–5 digits
    /// up to 65535.
    static func isValidHost(_ p: UnsafeBufferPointer<UInt8>, _ s: Int, _ e: Int, allowEmpty: Bool) -> Bool {
        if s == e { return allowEmpty }
        var i = s
        if p[i] == UInt8(ascii: "[") {
            i += 1
            while i < e && (ASCII.hexValue(p[i]) >= 0 || p[i] == ASCII.colon || p[i] == UInt8(ascii: ".")) { i += 1 }
            guard i < e, p[i] == UInt8(ascii: "]"), i > s + 1 else { return false }
            i += 1
        } else {
            while i < e && ASCII.isRegNameByte(p[i]) { i += 1 }
            guard i > s else { return false }
        }
        if i == e { return true }
        guard p[i] == ASCII.colon else { return false }
        i += 1
        let portStart = i
        var port = 0
        while i < e && ASCII.isDigit(p[i]) && i - portStart < 5 {
            port = port * 10 + Int(p[i] - 0x30)
            i += 1
        }
        return i == e && i > portStart && port <= 65_535
    }
}
