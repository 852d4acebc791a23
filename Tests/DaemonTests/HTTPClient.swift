// A deliberately small HTTP/1.1 client over a raw TCP socket, so tests can send exactly
// the bytes they mean (smuggling, trickling, pipelining) and read exactly what comes back.
import Foundation
import Glibc

struct HTTPReply {
    let status: Int
    let headers: [(String, String)]
    let body: [UInt8]
    func header(_ name: String) -> String? { headers.first { $0.0.lowercased() == name.lowercased() }?.1 }
    var text: String { String(decoding: body, as: UTF8.self) }
    var json: [String: Any] { (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] ?? [:] }
    var errorCode: String? { (json["error"] as? [String: Any])?["code"] as? String }
}

final class RawConnection: @unchecked Sendable {  // used by one thread at a time
    let fd: Int32
    private var buffer: [UInt8] = []

    init(port: UInt16) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = port.bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let r = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        guard r == 0 else {
            close(fd)
            throw TestFailure("connect to port \(port): \(String(cString: strerror(errno)))")
        }
    }

    deinit { close(fd) }

    func send(_ text: String) { send(Array(text.utf8)) }

    func send(_ bytes: [UInt8]) {
        var off = 0
        while off < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + off, $0.count - off, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { return }
            off += n
        }
    }

    /// Reads until `condition` holds on what has arrived, the peer closes, or `seconds` pass.
    @discardableResult
    private func fill(seconds: Double, until condition: ([UInt8]) -> Bool) -> Bool {
        let deadline = Date(timeIntervalSinceNow: seconds)
        var chunk = [UInt8](repeating: 0, count: 65536)
        while !condition(buffer) {
            let left = Int32(max(0, deadline.timeIntervalSinceNow * 1000))
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard left > 0, poll(&p, 1, left) == 1 else { return false }
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n <= 0 { return condition(buffer) }
            buffer += chunk[..<n]
        }
        return true
    }

    /// The next response (Content-Length framed), or nil on timeout or close.
    /// `noBody`: the answer to a HEAD request (its Content-Length describes no body here).
    func response(seconds: Double = 30, noBody: Bool = false) -> HTTPReply? {
        let marker: [UInt8] = [13, 10, 13, 10]
        guard fill(seconds: seconds, until: { $0.firstRange(of: marker) != nil }), let end = buffer.firstRange(of: marker) else { return nil }
        let head = String(decoding: buffer[..<end.lowerBound], as: UTF8.self)
        let lines = head.components(separatedBy: "\r\n")
        let parts = lines[0].split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else { return nil }
        let headers = lines.dropFirst().compactMap { line -> (String, String)? in
            guard let c = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<c]), line[line.index(after: c)...].trimmingCharacters(in: .whitespaces))
        }
        let length = Int(headers.first { $0.0.lowercased() == "content-length" }?.1 ?? "0") ?? 0
        let total = end.upperBound + (status == 100 || noBody ? 0 : length)
        guard fill(seconds: seconds, until: { $0.count >= total }) else { return nil }
        let body = Array(buffer[end.upperBound..<total])
        buffer.removeFirst(total)
        return HTTPReply(status: status, headers: headers, body: body)
    }

    /// The status and headers of the next response, leaving its body unread.
    func responseHead(seconds: Double = 30) -> HTTPReply? {
        let marker: [UInt8] = [13, 10, 13, 10]
        guard fill(seconds: seconds, until: { $0.firstRange(of: marker) != nil }), let end = buffer.firstRange(of: marker) else { return nil }
        let lines = String(decoding: buffer[..<end.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
        let parts = lines[0].split(separator: " ")
        guard parts.count >= 2, let status = Int(parts[1]) else { return nil }
        let headers = lines.dropFirst().compactMap { line -> (String, String)? in
            guard let c = line.firstIndex(of: ":") else { return nil }
            return (String(line[..<c]), line[line.index(after: c)...].trimmingCharacters(in: .whitespaces))
        }
        buffer.removeFirst(end.upperBound)
        return HTTPReply(status: status, headers: headers, body: [])
    }

    /// Reads until the server closes (or 30 s pass); the number of bytes that came.
    func drainUntilClosed() -> Int {
        var total = buffer.count
        buffer.removeAll()
        var chunk = [UInt8](repeating: 0, count: 65536)
        let deadline = Date(timeIntervalSinceNow: 30)
        while Date() < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&p, 1, 1000)
            if ready == 0 { continue }
            if ready < 0 { break }
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR) { break }
            if n > 0 { total += n }
        }
        return total
    }

    /// True once the server has closed the connection (read returns 0) within `seconds`.
    func closedByServer(seconds: Double = 10) -> Bool {
        let deadline = Date(timeIntervalSinceNow: seconds)
        var chunk = [UInt8](repeating: 0, count: 4096)
        while Date() < deadline {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, Int32(max(1, deadline.timeIntervalSinceNow * 1000))) == 1 else { return false }
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n == 0 || (n < 0 && errno == ECONNRESET) { return true }
            if n > 0 { buffer += chunk[..<n] }
        }
        return false
    }
}

/// A request with the given body and headers, as bytes.
func request(_ method: String = "POST", _ path: String = "/v1/process", key: String?, body: String? = nil,
             headers: [String] = []) -> String {
    var text = "\(method) \(path) HTTP/1.1\r\nHost: test\r\n"
    if let key { text += "Authorization: Bearer \(key)\r\n" }
    for h in headers { text += h + "\r\n" }
    if let body {
        text += "Content-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body
    } else {
        text += "\r\n"
    }
    return text
}

/// A TCP port that was free a moment ago.
func freePort() -> UInt16 {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    _ = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) } }
    return UInt16(bigEndian: addr.sin_port)
}
