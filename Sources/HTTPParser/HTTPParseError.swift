// The parser's one error type: the HTTP status to answer with, a stable code, and a short reason.

/// Why a request was refused. After any error the parser is poisoned and the connection must be closed
/// (the byte stream can no longer be framed reliably).
///
/// Match on `status` and `code`, never on `reason`: the reason is human text for logs and error bodies.
/// It never echoes more than 64 bytes of input, and every byte outside printable ASCII is escaped, so it is
/// safe to log and to send back.
public struct HTTPParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// 400, 413, 414, 417, 431, 501 or 505.
    public var status: Int
    /// A stable snake_case identifier, for example `conflicting_framing` (docs/HTTP.md lists them all).
    public var code: String
    /// A short, precise explanation.
    public var reason: String

    public init(status: Int, code: String, reason: String) {
        self.status = status
        self.code = code
        self.reason = reason
    }

    public var description: String { "\(status) \(code): \(reason)" }
}

extension HTTPParseError {
    static func badRequest(_ code: String, _ reason: String) -> HTTPParseError {
        HTTPParseError(status: 400, code: code, reason: reason)
    }

    static func bareLF(in place: String) -> HTTPParseError {
        .badRequest("bare_lf", "bare LF in \(place); lines must end with CRLF")
    }

    static func bareCR(in place: String) -> HTTPParseError {
        .badRequest("bare_cr", "CR not followed by LF in \(place)")
    }

    static func invalidByte(_ byte: UInt8, in place: String, code: String) -> HTTPParseError {
        .badRequest(code, "invalid byte \(hex(byte)) in \(place)")
    }

    static let maxEcho = 64

    /// `bytes` between double quotes, at most `maxEcho` of them, printable ASCII kept and the rest as `\xHH`.
    static func quoted(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        var out = "\""
        for b in bytes.prefix(maxEcho) {
            if b >= 0x20 && b < 0x7F && b != UInt8(ascii: "\"") && b != UInt8(ascii: "\\") {
                out.unicodeScalars.append(Unicode.Scalar(b))
            } else {
                out += "\\x" + hexDigits(b)
            }
        }
        out += bytes.count > maxEcho ? "\"..." : "\""
        return out
    }

    static func hex(_ byte: UInt8) -> String { "0x" + hexDigits(byte) }

    private static func hexDigits(_ byte: UInt8) -> String {
        let digits = Array("0123456789ABCDEF".unicodeScalars)
        var s = ""
        s.unicodeScalars.append(digits[Int(byte >> 4)])
        s.unicodeScalars.append(digits[Int(byte & 0xF)])
        return s
    }
}
