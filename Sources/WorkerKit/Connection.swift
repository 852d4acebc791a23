// The worker's end of its socket (fd 3): blocking frame reads, buffered writes. The
// supervisor may pipeline requests; answers queue up and go out in one write when no
// more input is waiting (or the oldest has waited a millisecond).
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
    /// The largest payload of a frame, either way (`--max-frame`): the supervisor takes
    /// no larger one.
    let maxFrame: Int
    private var decoder: FrameDecoder
    private var buffer = [UInt8](repeating: 0, count: 64 * 1024)
    private var output: [UInt8] = []
    private var outputSince: UInt64 = 0
    private var cancelled: Set<UInt64> = []
    /// Frames read while a task ran (pipelined requests), handled next.
    private var inbox: [(Message, UInt64)] = []

    init(fd: Int32, maxFrame: Int) {
        self.fd = fd
        self.maxFrame = maxFrame
        decoder = FrameDecoder(maxPayload: maxFrame)
        output.reserveCapacity(64 * 1024)
    }

    /// Queues a frame; `flush` (or `receive`, before it blocks) writes it.
    func send(_ message: Message, requestID: UInt64) {
        if output.isEmpty { outputSince = Posix.monotonicNanoseconds() }
        message.encode(requestID: requestID, into: &output)
    }

    /// Writes what is queued if nothing else is waiting to be answered, or if the oldest
    /// queued answer is a millisecond old.
    func flushIfIdle() throws(ConnectionClosed) {
        guard !output.isEmpty else { return }
        if inbox.isEmpty && decoder.bufferedByteCount == 0 && !readable() { return try flush() }
        if Posix.monotonicNanoseconds() - outputSince > 1_000_000 { try flush() }
    }

    func flush() throws(ConnectionClosed) {
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
        output.removeAll(keepingCapacity: true)
    }

    /// The next frame; blocks (after writing everything queued) until one is there.
    func receive() throws(ConnectionClosed) -> (Message, UInt64) {
        if !inbox.isEmpty { return inbox.removeFirst() }
        return try receiveFromSocket()
    }

    private func receiveFromSocket() throws(ConnectionClosed) -> (Message, UInt64) {
        while true {
            if let next = try decodeNext() { return next }
            try flush()
            try fill()
        }
    }

    /// The next piece of request `id`'s streamed body (blocking), nil if the request was
    /// cancelled. Other frames that arrive meanwhile are handled as while busy.
    func nextBodyChunk(of id: UInt64) throws(ConnectionClosed) -> (bytes: [UInt8], more: Bool)? {
        while true {
            let (message, rid) = try receiveFromSocket()
            switch message {
            case .data(let bytes, let more) where rid == id: return (bytes, more)
            case .cancel where rid == id: return nil
            default: try handleWhileBusy(message, requestID: rid)
            }
        }
    }

    /// Whether request `id` was cancelled before it started.
    func wasCancelled(_ id: UInt64) -> Bool { cancelled.contains(id) }

    /// Whether request `id` was cancelled, reading whatever the supervisor sent meanwhile
    /// without blocking.
    func pollCancellation(of id: UInt64) -> Bool {
        do {
            // Frames that arrived with the request (already read, not yet decoded) first,
            // then whatever the socket has now.
            repeat {
                while let (message, rid) = try decodeNext() {
                    try handleWhileBusy(message, requestID: rid)
                }
                guard readable() else { break }
                try fill()
            } while true
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
        case .ping(let nonce): send(.pong(nonce: nonce), requestID: requestID)
        case .request, .goaway: inbox.append((message, requestID))  // in order, after this one
        case .data: break  // the rest of a body whose request already finished
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
        case .data: "DATA"
        }
    }
}
