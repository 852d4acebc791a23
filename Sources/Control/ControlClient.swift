// ControlClient: the blocking client side of the control socket, for bulkheadctl.
import CBulkhead
import Glibc
import JSON
import Posix
import Wire

public struct ControlClientError: Error, Sendable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable {
        /// The daemon refused the request (exit status 1).
        case refused(ErrorCode)
        /// Could not talk to the daemon at all (exit status 1 too, but a different message).
        case unreachable
        case protocolError
    }
    public let kind: Kind
    public let description: String
}

public enum ControlClient {
    private static func connect(_ path: String) throws(ControlClientError) -> FileDescriptor {
        do { return try Posix.connectUnix(path: path) } catch {
            let why: String
            switch error.code {
            case ENOENT, ECONNREFUSED: why = "bulkheadd is not running (no control socket at \(path))"
            case EACCES, EPERM: why = "permission denied on \(path): run as root or as a member of the admin group"
            default: why = "cannot connect to \(path): \(error)"
            }
            throw ControlClientError(kind: .unreachable, description: why)
        }
    }

    /// Sends `command` with `arguments` and returns the daemon's JSON answer. `descriptor`
    /// goes with the request (SCM_RIGHTS): a file opened here, with the caller's rights.
    public static func call(socket path: String, command: String, arguments: JSONObject, descriptor: Int32? = nil,
                            timeoutSeconds: Int32 = 30) throws(ControlClientError) -> JSONValue {
        let fd = try connect(path)
        var hello: [UInt8] = []
        Message.hello(Hello(pid: UInt32(getpid()), agent: "bulkheadctl")).encode(requestID: 0, into: &hello)
        var request: [UInt8] = []
        Message.request(Request(task: command, body: JSONValue.object(arguments).serialized())).encode(requestID: 1, into: &request)
        return try exchange(fd, hello, request, descriptor: descriptor, timeoutSeconds)
    }

    private static func exchange(_ fd: borrowing FileDescriptor, _ hello: [UInt8], _ request: [UInt8], descriptor: Int32?,
                                 _ timeoutSeconds: Int32) throws(ControlClientError) -> JSONValue {
        // MSG_NOSIGNAL: a daemon that refused us and closed is an answer to read, not a
        // SIGPIPE. Whatever it sent before closing (its ERROR) is read below.
        func send(_ out: [UInt8], from start: Int) {
            var sent = start
            while sent < out.count {
                let raw = fd.rawValue
                let n = out.withUnsafeBytes { Glibc.send(raw, $0.baseAddress! + sent, $0.count - sent, Int32(MSG_NOSIGNAL)) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                sent += n
            }
        }
        send(hello, from: 0)
        var sent = 0
        if let descriptor {
            // The descriptor rides on the request's own bytes: the daemon gives it to the
            // frame it came with.
            var fds = [descriptor]
            let raw = fd.rawValue
            let n = request.withUnsafeBytes { bh_send_with_fds(raw, $0.baseAddress, $0.count, &fds, 1) }
            guard n > 0 else { throw ControlClientError(kind: .unreachable, description: "cannot pass the file to bulkheadd") }
            sent = Int(n)
        }
        send(request, from: sent)
        var decoder = FrameDecoder(maxPayload: 64 << 20)
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        var greeted = false
        while true {
            var p = pollfd(fd: fd.rawValue, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, timeoutSeconds * 1000) == 1 else {
                throw ControlClientError(kind: .unreachable, description: "no answer from bulkheadd within \(timeoutSeconds)s")
            }
            let raw = fd.rawValue
            let n = buffer.withUnsafeMutableBytes { Glibc.read(raw, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ControlClientError(kind: .unreachable, description: "reading from the control socket: \(String(cString: strerror(errno)))")
            }
            if n == 0 { throw ControlClientError(kind: .unreachable, description: "the daemon closed the control connection") }
            buffer.withUnsafeBytes { decoder.feed(UnsafeRawBufferPointer(rebasing: $0[..<n])) }
            do {
                while let frame = try decoder.next() {
                    switch try Message(frame: frame) {
                    case .hello: greeted = true
                    case .error(let e): throw ControlClientError(kind: .refused(e.code), description: e.message)
                    case .response(let r) where greeted:
                        do { return try JSONParser.parse(r.body) } catch {
                            throw ControlClientError(kind: .protocolError, description: "the daemon's answer is not JSON")
                        }
                    default: throw ControlClientError(kind: .protocolError, description: "unexpected frame from the daemon")
                    }
                }
            } catch let e as ControlClientError { throw e } catch {
                throw ControlClientError(kind: .protocolError, description: "malformed frame from the daemon: \(error)")
            }
        }
    }
}
