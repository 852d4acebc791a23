// The parser's public value types: limits, method, version, request head and events.

/// Resource limits; each is enforced while bytes arrive, so no more than the limit is ever buffered.
/// Negative values are treated as 0.
public struct HTTPLimits: Sendable, Equatable {
    /// Request line plus header fields plus the blank line that ends them. Over it: 431.
    public var maxHeaderBytes = 16_384
    /// Header fields in one request (and trailer fields after a chunked body). Over it: 431.
    public var maxHeaderCount = 100
    /// The request-target. Over it: 414, as soon as the target grows past the limit.
    public var maxTargetBytes = 8_192
    /// Content-Length, or the decoded size of a chunked body. Over it: 413, before the excess is read.
    public var maxBodyBytes = 10_485_760
    /// One chunk-size line (size and extensions, without CRLF). Over it: 400.
    public var maxChunkLineBytes = 1_024
    /// The trailer section of a chunked body, including its final blank line. Over it: 431.
    public var maxTrailerBytes = 8_192

    public init() {}

    var sanitized: HTTPLimits {
        var l = self
        l.maxHeaderBytes = max(0, l.maxHeaderBytes)
        l.maxHeaderCount = max(0, l.maxHeaderCount)
        l.maxTargetBytes = max(0, l.maxTargetBytes)
        l.maxBodyBytes = max(0, l.maxBodyBytes)
        l.maxChunkLineBytes = max(0, l.maxChunkLineBytes)
        l.maxTrailerBytes = max(0, l.maxTrailerBytes)
        return l
    }
}

/// The request method. Methods are case-sensitive tokens: `get` is `.other("get")`.
/// CONNECT never gets here (the parser refuses it with 501); TRACE and any other token arrive as
/// `.other(...)` for the caller's 405/501 decision.
public enum HTTPMethod: Sendable, Equatable, Hashable, CustomStringConvertible {
    case get, head, post, put, delete, options, patch
    case other(String)

    /// The method for a token, normalised: `HTTPMethod("GET") == .get`.
    public init(_ token: String) {
        switch token {
        case "GET": self = .get
        case "HEAD": self = .head
        case "POST": self = .post
        case "PUT": self = .put
        case "DELETE": self = .delete
        case "OPTIONS": self = .options
        case "PATCH": self = .patch
        default: self = .other(token)
        }
    }

    public var name: String {
        switch self {
        case .get: "GET"
        case .head: "HEAD"
        case .post: "POST"
        case .put: "PUT"
        case .delete: "DELETE"
        case .options: "OPTIONS"
        case .patch: "PATCH"
        case .other(let token): token
        }
    }

    public var description: String { name }
}

/// HTTP/1.0 or HTTP/1.1, the only versions the parser accepts.
public struct HTTPVersion: Sendable, Equatable, Hashable, CustomStringConvertible {
    public let major: Int
    public let minor: Int

    public init(major: Int, minor: Int) {
        self.major = major
        self.minor = minor
    }

    public static let http1_0 = HTTPVersion(major: 1, minor: 0)
    public static let http1_1 = HTTPVersion(major: 1, minor: 1)

    public var description: String { "HTTP/\(major).\(minor)" }
}

/// A validated request line and header section, with its framing decided.
public struct HTTPRequestHead: Sendable, Equatable {
    public var method: HTTPMethod
    /// The raw request-target: origin-form (`/a?b`), asterisk-form (`*`, OPTIONS only) or absolute-form
    /// (`http://host/a`).
    public var target: String
    /// The path of the target (`/` for an absolute-form target without one, `*` for asterisk-form).
    public var path: String
    /// What follows the first `?` of the target, nil without a `?`.
    public var query: String?
    public var version: HTTPVersion
    public var headers: HTTPHeaders
    /// The body length; nil when there is no body or it is chunked.
    public var contentLength: Int?
    public var isChunked: Bool
    /// Whether the connection may carry another request after this one.
    public var keepAlive: Bool
    /// The client waits for `100 Continue` before sending the body (HTTP/1.1 requests with a body only).
    public var expectsContinue: Bool
    /// The authority of an absolute-form target, else the Host header; "" for HTTP/1.0 without Host.
    public var host: String

    public init(
        method: HTTPMethod, target: String, path: String, query: String?, version: HTTPVersion,
        headers: HTTPHeaders, contentLength: Int?, isChunked: Bool, keepAlive: Bool, expectsContinue: Bool,
        host: String
    ) {
        self.method = method
        self.target = target
        self.path = path
        self.query = query
        self.version = version
        self.headers = headers
        self.contentLength = contentLength
        self.isChunked = isChunked
        self.keepAlive = keepAlive
        self.expectsContinue = expectsContinue
        self.host = host
    }

    /// Whether a body follows the head.
    public var hasBody: Bool { isChunked || (contentLength ?? 0) > 0 }
}

/// What the parser yields, in order: one `.head`, zero or more `.body`, one `.end`, then the next request.
public enum HTTPEvent: Sendable, Equatable {
    case head(HTTPRequestHead)
    /// Decoded body bytes (chunked framing removed), never empty, as they arrive.
    case body([UInt8])
    /// The request is complete; trailers are empty unless a chunked body carried some.
    case end(trailers: HTTPHeaders)
}
