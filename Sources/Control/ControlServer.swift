// ControlServer: the admin socket — a Unix socket (0660, root:admin group) on its own
// event loop; each peer is checked with SO_PEERCRED, then speaks HELLO and
// REQUEST(command, JSON arguments) → RESPONSE(JSON) | ERROR, in Wire frames. A request
// may come with one descriptor (SCM_RIGHTS): the file a backup is written to or a restore
// read from, opened by the admin with the admin's own permissions. Those commands run as
// jobs (ControlJobs), off the loop; their answer is sent when the job ends.
import CBulkhead
import EventLoop
import Glibc
import JSON
import Log
import Posix
import Wire

/// Who is on the other end of a control connection, from the kernel (SO_PEERCRED).
public struct ControlPeer: Sendable, Equatable, CustomStringConvertible {
    public let pid: Int32
    public let uid: UInt32
    public let gid: UInt32
    public var description: String { "uid \(uid) pid \(pid)" }
}

public enum ControlReply: Sendable {
    case ok(JSONValue)
    case refused(ErrorCode, String)
}

/// The daemon's answers to control commands. Called on the control loop's thread, and for
/// a job (a command the server was given in `jobs`) on that job's thread, while the loop
/// goes on calling it for other commands: it must be safe to call from both at once.
public protocol ControlHandler: AnyObject, Sendable {
    /// `descriptor`: the file the peer passed with a job's request (nil for other
    /// commands); closed once this returns.
    func handle(_ command: String, _ arguments: JSONObject, from peer: ControlPeer, descriptor: Int32?) -> ControlReply
    /// A peer that is neither root nor in the admin group tried to connect.
    func refused(_ peer: ControlPeer)
}

public final class ControlServer {
    private let loop: EventLoop
    private let listener: FileDescriptor
    private var listenerToken: LoopToken?
    private let adminGID: gid_t?
    private weak var handler: ControlHandler?
    private let log: Logger
    private var connections: [ObjectIdentifier: ControlConnection] = [:]
    private let jobs: ControlJobs

    /// Creates the socket at `path`, mode 0660, group `adminGroup` when that group exists
    /// (otherwise root only). `jobs`: the commands that take a descriptor and may run long;
    /// each runs on a thread of its own, one at a time (a second one is refused).
    public init(loop: EventLoop, path: String, adminGroup: String, handler: ControlHandler, jobs: Set<String> = [],
                log: Logger) throws(Errno) {
        self.loop = loop
        self.handler = handler
        self.jobs = ControlJobs(commands: jobs)
        self.log = log
        let gid: gid_t? = adminGroup.withCString { name in getgrnam(name).map { $0.pointee.gr_gid } }
        adminGID = gid
        let old = umask(0o177)  // no window in which the socket is wider than 0600
        let socket: FileDescriptor
        do { socket = try Posix.listenUnix(path: path) } catch {
            umask(old)
            throw error
        }
        umask(old)
        if let gid { _ = chown(path, 0, gid) }
        _ = chmod(path, 0o660)
        listener = socket
        listenerToken = try loop.register(fd: listener.rawValue, interest: .readable) { [weak self] _ in self?.acceptAll() }
    }

    /// Stops listening; open connections are closed.
    public func close() {
        if let token = listenerToken { loop.deregister(token, fd: listener.rawValue) }
        listenerToken = nil
        for c in connections.values { c.close() }
        connections.removeAll()
    }

    private func acceptAll() {
        while true {
            let accepted: FileDescriptor?
            do { accepted = try Posix.accept(listener) } catch {
                log.error("control_accept_failed", [("reason", .string(error.description))])
                return
            }
            guard let fd = accepted else { return }
            guard let cred = try? fd.peerCredentials() else { continue }
            let peer = ControlPeer(pid: cred.pid, uid: cred.uid, gid: cred.gid)
            guard isAdmin(peer) else {
                log.warning("control_peer_refused", [("uid", .of(peer.uid)), ("pid", .of(peer.pid))])
                handler?.refused(peer)
                var out: [UInt8] = []
                Message.error(ErrorMessage(code: .forbidden, message: "permission denied: uid \(peer.uid) is neither root nor in the admin group"))
                    .encode(requestID: 0, into: &out)
                _ = out.withUnsafeBytes { try? fd.send($0) }
                continue  // closing `fd` ends the connection
            }
            let connection = ControlConnection(fd: fd, peer: peer, loop: loop, server: self)
            guard connection.start() else { continue }
            connections[ObjectIdentifier(connection)] = connection
        }
    }

    /// Root, or a member of the admin group (primary or supplementary).
    private func isAdmin(_ peer: ControlPeer) -> Bool {
        if peer.uid == 0 { return true }
        guard let admin = adminGID else { return false }
        if peer.gid == admin { return true }
        guard let pw = getpwuid(peer.uid) else { return false }
        var groups = [gid_t](repeating: 0, count: 256)
        var count = Int32(groups.count)
        guard getgrouplist(pw.pointee.pw_name, peer.gid, &groups, &count) >= 0 else { return false }
        return groups.prefix(Int(count)).contains(admin)
    }

    /// Answers the request `id` on `connection`: at once, or when its job ends. Owns
    /// `descriptor`: only a job is given it, and it is closed once the job is over.
    func dispatch(_ command: String, _ body: [UInt8], from peer: ControlPeer, descriptor: Int32?,
                  to connection: ControlConnection, id: UInt64) {
        let isJob = jobs.commands.contains(command)
        var owned = descriptor
        defer { if let owned { Glibc.close(owned) } }
        if !isJob, let stray = owned {  // a descriptor this command does not take
            Glibc.close(stray)
            owned = nil
        }
        guard let handler else { return connection.send(.error(ErrorMessage(code: .internal, message: "shutting down")), id: id) }
        let arguments: JSONObject
        do {
            let value = try JSONParser.parse(body)
            guard let object = value.objectValue else {
                return connection.send(.error(ErrorMessage(code: .badRequest, message: "arguments must be a JSON object")), id: id)
            }
            arguments = object
        } catch {
            return connection.send(.error(ErrorMessage(code: .badRequest, message: "arguments are not valid JSON: \(error)")), id: id)
        }
        guard isJob else { return connection.send(Self.message(handler.handle(command, arguments, from: peer, descriptor: nil)), id: id) }
        // The answer comes back to this loop; the connection may be gone by then.
        let back = LoopBound(WeakConnection(connection), loop: loop)
        let loop = self.loop
        let file = owned
        let refusal = jobs.start(command) {
            let reply = handler.handle(command, arguments, from: peer, descriptor: file)
            if let file { Glibc.close(file) }  // let go of the admin's file before answering
            loop.execute { back.value.connection?.send(Self.message(reply), id: id) }
        }
        if let refusal { return connection.send(.error(ErrorMessage(code: .conflict, message: refusal)), id: id) }
        owned = nil  // the job closes it
    }

    private static func message(_ reply: ControlReply) -> Message {
        switch reply {
        case .ok(let value): return .response(Response(cpuMicros: 0, maxRSSKiB: 0, body: value.serialized()))
        case .refused(let code, let message): return .error(ErrorMessage(code: code, message: message))
        }
    }

    func closed(_ connection: ControlConnection) {
        connections[ObjectIdentifier(connection)] = nil
    }
}

private final class WeakConnection {
    weak var connection: ControlConnection?
    init(_ c: ControlConnection) { connection = c }
}

/// One admin's connection. A malformed frame ends it (only it).
final class ControlConnection {
    private let fd: FileDescriptor
    let peer: ControlPeer
    private unowned let loop: EventLoop
    private weak var server: ControlServer?
    private var token: LoopToken?
    private var decoder = FrameDecoder(maxPayload: 1 << 20)
    private var greeted = false
    private var outbox: [UInt8] = []
    /// Bytes received so far on this connection.
    private var offset = 0
    /// Descriptors received and not yet given to a frame (owned: closed at the end), each
    /// with the offset of the last byte it came with: the kernel hands a descriptor over
    /// with the bytes of the message it was sent with, so it belongs to the frame that
    /// holds that byte. A frame takes at most one; any other is closed.
    private var received: [(fd: Int32, at: Int)] = []

    init(fd: consuming FileDescriptor, peer: ControlPeer, loop: EventLoop, server: ControlServer) {
        self.fd = fd
        self.peer = peer
        self.loop = loop
        self.server = server
    }

    func start() -> Bool {
        token = try? loop.register(fd: fd.rawValue, interest: .readable) { [weak self] events in self?.ready(events) }
        return token != nil
    }

    func close() {
        if let token { loop.deregister(token, fd: fd.rawValue) }
        token = nil
        for d in received { Glibc.close(d.fd) }
        received.removeAll()
    }

    /// The descriptor that came with the frame ending at `end`, if any; others closed.
    private func descriptor(before end: Int) -> Int32? {
        let mine = received.filter { $0.at < end }
        received.removeAll { $0.at < end }
        for extra in mine.dropFirst() { Glibc.close(extra.fd) }
        return mine.first?.fd
    }

    private func ready(_ events: IOEvents) {
        if events.contains(.writable) { flush() }
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while token != nil {
            // One descriptor per message at most: the C side closes any more.
            var fds: [Int32] = [-1]
            var count: Int32 = 0
            let raw = fd.rawValue
            let got = buffer.withUnsafeMutableBytes { bh_recv_with_fds(raw, $0.baseAddress, $0.count, &fds, 1, &count) }
            if count > 0 { received.append((fds[0], offset + max(0, Int(got)) - 1)) }
            if got == -EAGAIN { return }
            guard got >= 0 else {
                finish()
                return
            }
            let n = Int(got)
            if n == 0 {
                finish()
                return
            }
            offset += n
            buffer.withUnsafeBytes { decoder.feed(UnsafeRawBufferPointer(rebasing: $0[..<n])) }
            do {
                while let frame = try decoder.next() {
                    let message = try Message(frame: frame)
                    try handle(message, id: frame.requestID, descriptor: descriptor(before: offset - decoder.bufferedByteCount))
                }
                // What is left came with the frame not complete yet, which takes only one.
                for extra in received.dropFirst() { Glibc.close(extra.fd) }
                received = Array(received.prefix(1))
            } catch {
                send(.error(ErrorMessage(code: .protocolError, message: "\(error)")), id: 0)
                finish()
                return
            }
        }
    }

    private struct Violation: Error {}

    /// `descriptor`: the one that came with this frame, owned; only a REQUEST takes one.
    private func handle(_ message: Message, id: UInt64, descriptor: Int32?) throws {
        if greeted, case .request(let request) = message {
            guard let server else {
                if let descriptor { Glibc.close(descriptor) }
                throw Violation()
            }
            return server.dispatch(request.task, request.body, from: peer, descriptor: descriptor, to: self, id: id)
        }
        if let descriptor { Glibc.close(descriptor) }
        switch (greeted, message) {
        case (false, .hello(let hello)):
            guard let v = Hello.negotiate(local: Wire.supportedVersions, remote: hello) else {
                send(.error(ErrorMessage(code: .versionUnsupported, message: "no common protocol version")), id: 0)
                throw Violation()
            }
            greeted = true
            send(.hello(Hello(minVersion: v, maxVersion: v, pid: UInt32(getpid()), agent: "bulkheadd")), id: 0)
        case (true, .ping(let nonce)):
            send(.pong(nonce: nonce), id: id)
        default:
            send(.error(ErrorMessage(code: .protocolError, message: "unexpected frame")), id: id)
            throw Violation()
        }
    }

    func send(_ message: Message, id: UInt64) {
        guard token != nil else { return }  // closed: a job's late answer has no one to go to
        message.encode(requestID: id, into: &outbox)
        flush()
    }

    private func flush() {
        var sent = 0
        while sent < outbox.count {
            let n: Int?
            do { n = try outbox.withUnsafeBytes { (raw) throws(Errno) -> Int? in try fd.send(UnsafeRawBufferPointer(rebasing: raw[sent...])) } } catch {
                outbox.removeAll()
                finish()
                return
            }
            guard let n else { break }
            sent += n
        }
        outbox.removeFirst(sent)
        if let token { try? loop.setInterest(token, fd: fd.rawValue, outbox.isEmpty ? .readable : [.readable, .writable]) }
    }

    private func finish() {
        close()
        server?.closed(self)
    }
}
