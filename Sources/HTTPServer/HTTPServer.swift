// HTTPServer: HTTP/1.1 on N event loops (one per core), each with its own SO_REUSEPORT
// listener, so both cores accept and parse; connection limits, timeouts and draining.
import CBulkhead
import EventLoop
import Glibc
import HTTPParser
import Log
import Posix
import Synchronization
import TLS

/// A request handed to the handler, and the way back to its connection.
///
/// `@unchecked Sendable`: `respond` may be called from any thread and hops to the
/// connection's loop; everything else is touched on that loop only.
public final class HTTPExchange: @unchecked Sendable {
    public let head: HTTPRequestHead
    /// The whole body, unless it streams (`bodyStream`).
    public let body: [UInt8]
    /// The body as it arrives, for a request whose handler takes it as a stream
    /// (`HTTPHandler.streamsBody`); the handler is called as soon as the head is in.
    public let bodyStream: ByteChannel?
    /// "ip:port" of the client, or "unix".
    public let peer: String
    public let loop: EventLoop
    /// Loop clock when the request was complete.
    public let receivedAt: UInt64
    /// Called on the loop if the client goes away before the response (cancel the work).
    public var onCancel: (() -> Void)?
    weak var connection: Connection?
    let sequence: UInt64
    private let answered = Atomic<Bool>(false)

    init(head: HTTPRequestHead, body: [UInt8], bodyStream: ByteChannel?, peer: String, loop: EventLoop,
         connection: Connection, sequence: UInt64) {
        self.head = head
        self.body = body
        self.bodyStream = bodyStream
        self.peer = peer
        self.loop = loop
        self.receivedAt = loop.now
        self.connection = connection
        self.sequence = sequence
    }

    /// Bytes of body received: all of `body`, or what has streamed in so far.
    public var bodyBytes: Int { bodyStream?.totalBytes ?? body.count }

    /// Answers the request; the first call wins. Safe from any thread. A streamed body's
    /// channel is told its length here, on the caller's thread: called where the producer
    /// runs (the supervisor's loop, at the worker's response head), it is known there
    /// before the first byte of the body is written.
    public func respond(_ response: HTTPResponse) {
        guard !answered.exchange(true, ordering: .acquiringAndReleasing) else { return }
        if let stream = response.stream { stream.channel.expect(length: stream.length) }
        if loop.inLoop {
            connection?.complete(sequence, response)
        } else {
            let bound = LoopBound(self, loop: loop)
            loop.execute { bound.value.connection?.complete(bound.value.sequence, response) }
        }
    }

}

public protocol HTTPHandler: AnyObject, Sendable {
    /// Called on the connection's loop; answer exactly once with `exchange.respond`.
    func handle(_ exchange: HTTPExchange)
    /// Whether this request's body is handed over as it arrives (`exchange.bodyStream`)
    /// rather than whole; such bodies may be up to `HTTPLimits.maxBodyBytes`, the others
    /// up to `HTTPServerSettings.maxBufferedBody`.
    func streamsBody(_ head: HTTPRequestHead) -> Bool
    /// The server answered a request itself with `status`, before `handle` saw it (bad
    /// framing, a body over the limit, a client too slow): for the request counters.
    func refused(status: Int)
}

extension HTTPHandler {
    public func streamsBody(_ head: HTTPRequestHead) -> Bool { false }
    public func refused(status: Int) {}
}

public enum HTTPListenAddress: Sendable, Equatable {
    case tcp(host: String, port: UInt16)
    /// HTTPS on TCP, with the server's TLS context (`setTLS`).
    case tls(host: String, port: UInt16)
    case unix(path: String)
    /// A socket already listening, passed by systemd (socket activation): every loop
    /// accepts from it; with `tls`, it speaks HTTPS (FileDescriptorName=https).
    case inherited(fd: Int32, name: String, tls: Bool)
}

public struct HTTPServerSettings: Sendable {
    public var limits: HTTPLimits
    public var headerTimeout: Duration
    public var bodyTimeout: Duration
    public var keepaliveTimeout: Duration
    public var maxConnections: Int
    public var eventLoops: Int
    /// Pipelined requests in flight on one connection before it stops reading.
    public var maxPipelined = 16
    /// Unsent response bytes on one connection before it stops reading (backpressure).
    public var maxBufferedOutput = 1 << 20
    /// Largest body held whole in memory; streamed bodies are bounded by `limits.maxBodyBytes`.
    public var maxBufferedBody = Int.max
    /// Body bytes a streamed request may have waiting for its consumer before reading stops.
    public var streamWindow = 1 << 20

    public init(limits: HTTPLimits = .init(), headerTimeout: Duration = .seconds(10), bodyTimeout: Duration = .seconds(60),
                keepaliveTimeout: Duration = .seconds(75), maxConnections: Int = 10_000, eventLoops: Int = 0) {
        self.limits = limits
        self.headerTimeout = headerTimeout
        self.bodyTimeout = bodyTimeout
        self.keepaliveTimeout = keepaliveTimeout
        self.maxConnections = maxConnections
        self.eventLoops = eventLoops
    }
}

public final class HTTPServer: @unchecked Sendable {  // loops own their state; `connections` is atomic
    /// The settings now in force; `reconfigure` changes the timeouts and limits live.
    public var settings: HTTPServerSettings { live.withLock { $0 } }
    private let live: Mutex<HTTPServerSettings>
    private(set) var handler: HTTPHandler!
    let log: Logger
    public private(set) var loops: [EventLoop] = []
    private var contexts: [LoopContext] = []
    private var threads: [pthread_t] = []
    let connections = Atomic<Int>(0)
    private let drainingFlag = Atomic<Bool>(false)
    /// The TCP port actually bound for each TCP listen address (for port 0 in tests).
    public private(set) var boundPorts: [UInt16] = []
    /// Certificate and key for the HTTPS listeners; replaced on reload, new connections
    /// take the new one.
    private let tlsContext = Mutex<TLSContext?>(nil)

    public func setTLS(_ context: TLSContext) { tlsContext.withLock { $0 = context } }
    /// Some listener speaks HTTPS (a context was set).
    public var usesTLS: Bool { currentTLS != nil }
    var currentTLS: TLSContext? { tlsContext.withLock { $0 } }

    /// Creates the event loops (not yet running), so other loop-confined services — the
    /// supervisor — can be placed on one of them before `start`.
    public init(settings: HTTPServerSettings, log: Logger) throws(Errno) {
        self.live = Mutex(settings)
        self.log = log
        let n = settings.eventLoops > 0 ? settings.eventLoops : max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN))))
        for _ in 0..<n { loops.append(try EventLoop()) }
    }

    /// Takes the timeouts, the connection limit and the buffered body limit of `new` (a
    /// reload); the loops, the parser's hard limits and the listeners stay as they are.
    public func reconfigure(_ new: HTTPServerSettings) {
        live.withLock {
            $0.headerTimeout = new.headerTimeout
            $0.bodyTimeout = new.bodyTimeout
            $0.keepaliveTimeout = new.keepaliveTimeout
            $0.maxConnections = new.maxConnections
            $0.maxBufferedBody = min(new.maxBufferedBody, $0.limits.maxBodyBytes)
        }
    }

    public var isDraining: Bool { drainingFlag.load(ordering: .relaxed) }
    public var openConnections: Int { connections.load(ordering: .relaxed) }

    /// Binds every address on every loop (TCP with SO_REUSEPORT; a Unix socket is served by
    /// the first loop) and starts the loop threads.
    public func start(_ addresses: [HTTPListenAddress], handler: HTTPHandler) throws(Errno) {
        self.handler = handler
        var ports: [UInt16] = []
        for (i, loop) in loops.enumerated() {
            let context = LoopContext(loop: loop, server: self)
            var tcpIndex = 0
            for address in addresses {
                switch address {
                case .tcp(let host, let port), .tls(let host, let port):
                    // The first loop picks the port (it may be 0); the others join it.
                    let p = i == 0 ? port : ports[tcpIndex]
                    let fd = try checked("listen(\(host):\(port))") { bh_tcp_listen(host, Int32(p), 1, 1024) }
                    if i == 0 { ports.append(UInt16(bh_local_port(fd))) }
                    tcpIndex += 1
                    var secure = false
                    if case .tls = address { secure = true }
                    try context.listen(FileDescriptor(adopting: fd), tls: secure)
                case .unix(let path):
                    if i == 0 {
                        let fd = try Posix.listenUnix(path: path, backlog: 1024)
                        _ = chmod(path, 0o666)
                        try context.listen(fd)
                    }
                case .inherited(let fd, _, let secure):
                    // Each loop accepts from its own duplicate of the one socket.
                    var listening: Int32 = 0
                    var size = socklen_t(MemoryLayout<Int32>.size)
                    guard getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size) == 0, listening == 1 else {
                        throw Errno(ENOTSOCK, call: "inherited listener \(fd)")
                    }
                    let copy = try checked("dup") { libc(fcntl(fd, F_DUPFD_CLOEXEC, 3)) }
                    let owned = FileDescriptor(adopting: copy)
                    try owned.setNonBlocking()
                    try context.listen(owned, tls: secure)
                }
            }
            contexts.append(context)
            if i == 0 { boundPorts = ports }
        }
        for context in contexts { threads.append(Self.startThread(context)) }
    }

    /// Stops accepting, answers the remaining requests with `Connection: close`, closes idle
    /// connections, and calls `done` once every connection is closed or `deadline` passed.
    public func drain(deadline: Duration, _ done: @escaping @Sendable () -> Void) {
        drainingFlag.store(true, ordering: .relaxed)
        let remaining = Atomic<Int>(contexts.count)
        let finished = Atomic<Bool>(false)
        let once: @Sendable () -> Void = {
            if !finished.exchange(true, ordering: .acquiringAndReleasing) { done() }
        }
        for context in contexts {
            let bound = LoopBound(context, loop: context.loop)
            context.loop.execute {
                bound.value.drain {
                    if remaining.subtract(1, ordering: .acquiringAndReleasing).newValue == 0 { once() }
                }
            }
        }
        if let first = contexts.first {
            let loop = first.loop
            loop.execute {
                loop.schedule(after: deadline) { once() }
            }
        }
    }

    /// Stops the loops and joins their threads.
    public func stop() {
        for loop in loops { loop.stop() }
        for t in threads { pthread_join(t, nil) }
        threads.removeAll()
    }

    private static func startThread(_ context: LoopContext) -> pthread_t {
        let box = Unmanaged.passRetained(context)
        var t = pthread_t()
        let r = pthread_create(&t, nil, { raw in
            let context = Unmanaged<LoopContext>.fromOpaque(raw!).takeRetainedValue()
            do { try context.loop.run() } catch { context.server?.log.error("event_loop_failed", [("reason", .string("\(error)"))]) }
            return nil
        }, box.toOpaque())
        precondition(r == 0, "pthread_create failed")
        return t
    }
}

/// One loop's share of the server: its listeners, its connections, its clock sweep.
final class LoopContext: @unchecked Sendable {  // confined to `loop`; handed to its thread once
    let loop: EventLoop
    weak var server: HTTPServer?
    /// An owned listening socket and its registration.
    final class Listener {
        let fd: FileDescriptor
        var token: LoopToken?
        let tls: Bool
        init(_ fd: consuming FileDescriptor, tls: Bool) {
            self.fd = fd
            self.tls = tls
        }
    }
    private var listeners: [Listener] = []
    var open: [ObjectIdentifier: Connection] = [:]
    var readBuffer = [UInt8](repeating: 0, count: 64 * 1024)
    private var sweepStarted = false
    private var drainDone: (() -> Void)?
    private var dateLine: [UInt8] = []
    private var dateSecond = -1

    init(loop: EventLoop, server: HTTPServer) {
        self.loop = loop
        self.server = server
    }

    func listen(_ fd: consuming FileDescriptor, tls: Bool = false) throws(Errno) {
        let listener = Listener(fd, tls: tls)
        let raw = listener.fd.rawValue
        listener.token = try loop.register(fd: raw, interest: .readable) { [unowned self] _ in self.acceptAll(raw, tls: tls) }
        listeners.append(listener)
        if !sweepStarted {
            sweepStarted = true
            scheduleSweep()
        }
    }

    private func acceptAll(_ listener: Int32, tls: Bool) {
        guard let server else { return }
        var peer = [CChar](repeating: 0, count: 64)
        while true {
            let fd = bh_accept_peer(listener, &peer, peer.count)
            if fd == -EAGAIN || fd == -EINTR || fd == -ECONNABORTED { return }
            if fd < 0 {
                // Out of descriptors: back off briefly instead of spinning on the listener.
                server.log.error("accept_failed", [("reason", .string(String(cString: strerror(-fd))))])
                pauseAccepting(listener)
                return
            }
            let descriptor = FileDescriptor(adopting: fd)
            if server.connections.load(ordering: .relaxed) >= server.settings.maxConnections {
                if !tls { Connection.refuseOverCapacity(descriptor) }  // a TLS client cannot read a plain answer
                continue
            }
            var session: TLSSession?
            if tls {
                guard let context = server.currentTLS, let s = try? TLSSession(context: context, fd: fd) else { continue }
                session = s
            }
            let name = peer.withUnsafeBufferPointer { b in String(decoding: b.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
            let connection = Connection(fd: descriptor, peer: name, context: self, tls: session)
            guard connection.start() else { continue }
            server.connections.add(1, ordering: .relaxed)
            open[ObjectIdentifier(connection)] = connection
        }
    }

    private func pauseAccepting(_ listener: Int32) {
        guard let i = listeners.firstIndex(where: { $0.fd.rawValue == listener }), let token = listeners[i].token else { return }
        try? loop.setInterest(token, fd: listener, [])
        loop.schedule(after: .milliseconds(100)) { [weak self] in
            guard let self, !(self.server?.isDraining ?? true) else { return }
            try? self.loop.setInterest(token, fd: listener, .readable)
        }
    }

    func closed(_ connection: Connection) {
        guard open.removeValue(forKey: ObjectIdentifier(connection)) != nil else { return }
        server?.connections.subtract(1, ordering: .relaxed)
        if open.isEmpty, let done = drainDone {
            drainDone = nil
            done()
        }
    }

    /// A cached `Date:` header line, rebuilt once a second.
    func date() -> [UInt8] {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        if ts.tv_sec != dateSecond {
            dateSecond = ts.tv_sec
            dateLine = Array("Date: \(httpDate(ts.tv_sec))\r\n".utf8)
        }
        return dateLine
    }

    /// Timeouts are checked by a sweep over this loop's connections, a few times per
    /// shortest timeout: no timer churn per request.
    private func scheduleSweep() {
        guard let server else { return }
        let shortest = min(server.settings.headerTimeout, server.settings.bodyTimeout, server.settings.keepaliveTimeout)
        let interval = min(max(EventLoop.nanoseconds(shortest) / 4, 5_000_000), 250_000_000)
        loop.schedule(at: loop.now + interval) { [weak self] in
            guard let self else { return }
            let now = self.loop.now
            for c in Array(self.open.values) { c.checkDeadline(now) }
            self.scheduleSweep()
        }
    }

    func drain(_ done: @escaping () -> Void) {
        for l in listeners { if let t = l.token { loop.deregister(t, fd: l.fd.rawValue) } }
        listeners.removeAll()
        for c in Array(open.values) { c.startDraining() }
        if open.isEmpty { done() } else { drainDone = done }
    }
}

/// RFC 9110 IMF-fixdate.
func httpDate(_ t: time_t) -> String {
    var time = t
    var tm = Glibc.tm()
    gmtime_r(&time, &tm)
    let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
    let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
    func p(_ v: Int32) -> String { v < 10 ? "0\(v)" : "\(v)" }
    return "\(days[Int(tm.tm_wday)]), \(p(tm.tm_mday)) \(months[Int(tm.tm_mon)]) \(tm.tm_year + 1900) \(p(tm.tm_hour)):\(p(tm.tm_min)):\(p(tm.tm_sec)) GMT"
}
