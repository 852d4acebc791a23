// HTTPResponse: what a handler answers, and its serialisation onto the wire.
import CBulkhead
import EventLoop
import JSON
import Synchronization

public struct HTTPResponse: Sendable {
    public var status: Int
    public var headers: [(name: String, value: String)]
    public var body: [UInt8]
    /// Close the connection once this response is written.
    public var close: Bool
    /// A body that streams in after the head (instead of `body`), of exactly `length` bytes.
    public var stream: (channel: ByteChannel, length: Int)?

    public init(status: Int, headers: [(name: String, value: String)] = [], body: [UInt8] = [], close: Bool = false) {
        self.status = status
        self.headers = headers
        self.body = body
        self.close = close
    }

    /// SPEC §4's error body: `{"error": {"code": ..., "message": ...}}`.
    public static func error(_ status: Int, _ code: String, _ message: String,
                             headers: [(name: String, value: String)] = [], close: Bool = false) -> HTTPResponse {
        var body = Array(#"{"error":{"code":"#.utf8)
        appendJSONString(code, to: &body)
        body += Array(#","message":"#.utf8)
        appendJSONString(message, to: &body)
        body += Array("}}".utf8)
        return HTTPResponse(status: status, headers: [("Content-Type", "application/json")] + headers, body: body, close: close)
    }

    public static func json(_ status: Int, _ body: [UInt8], headers: [(name: String, value: String)] = []) -> HTTPResponse {
        HTTPResponse(status: status, headers: [("Content-Type", "application/json")] + headers, body: body)
    }

    /// Writes the status line, the headers (with Content-Length, Date and Connection
    /// added here) and the blank line into `out`; the body is written separately.
    func serializeHead(into out: inout [UInt8], date: [UInt8], closing: Bool) {
        out += Self.statusLines[status] ?? Array("HTTP/1.1 \(status) \(Self.reason(status))\r\n".utf8)
        for (name, value) in headers {
            out += name.utf8
            out += [0x3A, 0x20]
            out += value.utf8
            out += [0x0D, 0x0A]
        }
        if status != 204 && status != 304 && !(100..<200).contains(status) {
            out += Self.contentLength
            out += String(stream?.length ?? body.count).utf8
            out += [0x0D, 0x0A]
        }
        out += date
        if closing { out += Self.connectionClose }
        out += [0x0D, 0x0A]
    }

    static let contentLength = Array("Content-Length: ".utf8)
    static let connectionClose = Array("Connection: close\r\n".utf8)
    static let statusLines: [Int: [UInt8]] = {
        var t: [Int: [UInt8]] = [:]
        for code in [100, 200, 201, 204, 304, 400, 401, 403, 404, 405, 408, 411, 413, 414, 415, 417, 429, 431, 500, 501,
                     502, 503, 504, 505, 507] {
            t[code] = Array("HTTP/1.1 \(code) \(reason(code))\r\n".utf8)
        }
        return t
    }()

    public static func reason(_ status: Int) -> String {
        switch status {
        case 100: "Continue"
        case 200: "OK"
        case 201: "Created"
        case 204: "No Content"
        case 304: "Not Modified"
        case 400: "Bad Request"
        case 401: "Unauthorized"
        case 403: "Forbidden"
        case 404: "Not Found"
        case 405: "Method Not Allowed"
        case 408: "Request Timeout"
        case 411: "Length Required"
        case 413: "Content Too Large"
        case 414: "URI Too Long"
        case 415: "Unsupported Media Type"
        case 417: "Expectation Failed"
        case 429: "Too Many Requests"
        case 431: "Request Header Fields Too Large"
        case 500: "Internal Server Error"
        case 501: "Not Implemented"
        case 502: "Bad Gateway"
        case 503: "Service Unavailable"
        case 504: "Gateway Timeout"
        case 505: "HTTP Version Not Supported"
        case 507: "Insufficient Storage"
        default: "Status"
        }
    }
}

/// A JSON string literal (quotes and escapes) appended as bytes.
public func appendJSONString(_ s: String, to out: inout [UInt8]) {
    JSONValue.string(s).serialize(into: &out)
}

/// Request ids: "<random prefix>-<sequence>", unique per process start, no syscall per
/// request. Shared by the server's own error answers and the request-id stage.
public final class RequestIDGenerator: Sendable {
    public static let shared = RequestIDGenerator()
    private let prefix: String
    private let value = Atomic<UInt64>(0)

    init() {
        var bytes = [UInt8](repeating: 0, count: 6)
        _ = bytes.withUnsafeMutableBytes { bh_random($0.baseAddress, $0.count) }
        prefix = bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    public func next() -> String { prefix + "-" + String(value.add(1, ordering: .relaxed).newValue, radix: 16) }
}
