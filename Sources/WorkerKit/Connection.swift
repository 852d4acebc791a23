// The worker's end of its socket (fd 3): blocking frame reads and writes.
import Glibc
import Posix
import Wire

/// The supervisor side broke the protocol or went away: the worker exits.
struct ConnectionClosed: Error {
    let reason: String
    let clean: Bool
}

final class Connection {
    private let fd: Int32
    private var decoder: FrameDecoder
    private var buffer = [UInt8](repeating: 0, count: 64 * 1024)
    private var output: [UInt8] = []
    /// A GOAWAY arrived while a task ran: exit once it is answered.
    var goingAway = false
    private var cancelled: Set<UInt64> = []

    init(fd: Int32, maxFrame: Int) {
        self.fd = fd
        decoder = FrameDecoder(maxPayload: maxFrame)
        output.reserveCapacity(64 * 1024)
    }

    func send(_ message: Message, requestID: UInt64) throws(ConnectionClosed) {
        output.removeAll(keepingCapacity: true)
        message.encode(requestID: requestID, into: &output)
        var offset = 0
        while offset < output.count {
            let n = output.withUnsafeBytes { raw in
                Glibc.send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
            }
            if n < 0 {
                if errno == EINTR { continue }
                throw ConnectionClosed(reason: "write: \(String(cString: strerror(errno)))", clean: false)
            }
            offset += n
        }
    }

    /// Blocks until a whole frame is there.
    func receive() throws(ConnectionClosed) -> (Message, UInt64) {
        while true {
            if let next = try decodeNext() { return next }
            try fill()
        }
    }

    /// Whether request `id` was cancelled, reading whatever the supervisor sent meanwhile
    /// without blocking.
    func pollCancellation(of id: UInt64) -> Bool {
        do {
            while readable() {
                try fill()
                while let (message, rid) = try decodeNext() {
                    try handleWhileBusy(message, requestID: rid)
                }
            }
        } catch {
            // The supervisor is gone or spoke garbage: nobody waits for this answer.
            Glibc.exit(error.clean ? 0 : 1)
        }
        return cancelled.contains(id)
    }

    /// Control frames that can arrive while a task runs.
    func handleWhileBusy(_ message: Message, requestID: UInt64) throws(ConnectionClosed) {
        switch message {
        case .cancel: cancelled.insert(requestID)
        case .ping(let nonce): try send(.pong(nonce: nonce), requestID: requestID)
        case .goaway: goingAway = true
        default: throw ConnectionClosed(reason: "unexpected \(message.kind) frame while busy", clean: false)
        }
    }

    func finished(_ id: UInt64) { cancelled.remove(id) }

    private func decodeNext() throws(ConnectionClosed) -> (Message, UInt64)? {
        do {
            guard let frame = try decoder.next() else { return nil }
            return (try Message(frame: frame), frame.requestID)
        } catch {
            throw ConnectionClosed(reason: "protocol error: \(error)", clean: false)
        }
    }

    private func fill() throws(ConnectionClosed) {
        while true {
            let n = buffer.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n > 0 {
                buffer.withUnsafeBytes { decoder.feed(UnsafeRawBufferPointer(rebasing: $0[..<n])) }
                return
            }
            if n == 0 { throw ConnectionClosed(reason: "supervisor closed the connection", clean: true) }
            if errno == EINTR { continue }
            throw ConnectionClosed(reason: "read: \(String(cString: strerror(errno)))", clean: false)
        }
    }

    private func readable() -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        return poll(&p, 1, 0) > 0
    }
}

extension Message {
    var kind: String {
        switch self {
        case .hello: "HELLO"
        case .request: "REQUEST"
        case .response: "RESPONSE"
        case .error: "ERROR"
        case .ping: "PING"
        case .pong: "PONG"
        case .cancel: "CANCEL"
        case .goaway: "GOAWAY"
        }
    }
}
