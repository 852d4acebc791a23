// The Redis backend: decisions made by RedisScript inside one shared Redis. It runs on
// an event loop of its own thread with one non-blocking hiredis connection: callers on
// the HTTP loops hand it a decision (an `execute`, which wakes the thread only when its
// queue was empty), every decision that arrives within one turn is written in one
// batch, and answers are matched in order. HTTP loops never touch the socket, so a slow
// Redis costs them nothing; a decision not answered within `timeout` fails, and so does
// the connection, which is made again with backoff.
import CBulkhead
import CHiredis
import EventLoop
import Glibc
import Log
import Synchronization

/// Where the shared Redis listens, and how to log in.
public struct RedisTarget: Sendable, Equatable {
    public enum Transport: Sendable, Equatable {
        case tcp(host: String, port: UInt16)
        case unix(path: String)
    }
    public var transport: Transport
    public var username: String?
    public var password: String?
    public var database: Int

    public init(transport: Transport, username: String? = nil, password: String? = nil, database: Int = 0) {
        self.transport = transport
        self.username = username
        self.password = password
        self.database = database
    }

    /// For logs: never the password.
    public var description: String {
        switch transport {
        case .tcp(let host, let port): "redis://\(host):\(port)/\(database)"
        case .unix(let path): "unix:\(path)"
        }
    }
}

public final class RedisBackend: RateBackend, @unchecked Sendable {  // loop state is touched on `loop` only
    public struct Settings: Sendable {
        public var target: RedisTarget
        /// How long a decision may wait for its answer.
        public var timeout: Duration
        /// Reconnect backoff: doubles from the first to the last.
        public var reconnectMin: Duration = .milliseconds(50)
        public var reconnectMax: Duration = .milliseconds(500)

        public init(target: RedisTarget, timeout: Duration) {
            self.target = target
            self.timeout = timeout
        }
    }

    private let settings: Settings
    private let log: Logger
    private let loop: EventLoop
    private let thread: LoopThread
    private let up = Atomic<Bool>(false)
    private let decisions = Atomic<Int>(0)

    // Loop-confined.
    private enum Waiting {
        case setup(String)          // AUTH, SELECT: an error reply fails the connection
        case scriptLoad
        case decision(args: [String], policies: Int, done: @Sendable (BackendResult) -> Void)
    }
    private struct InFlight {
        let waiting: Waiting
        let deadline: UInt64
    }
    private var context: UnsafeMutablePointer<redisContext>?
    private var token: LoopToken?
    private var connecting = false
    private var inflight: [InFlight] = []
    private var head = 0
    private var flushScheduled = false
    private var writePending = false
    private var deadlineTimer: LoopToken?
    /// A connection that is not ready (connected, logged in, script loaded) by then fails.
    private var connectTimer: LoopToken?
    private var backoff: Duration
    /// Whether the last state logged was "connected": transitions are logged, retries are not.
    private var wasUp: Bool?
    private var stopped = false

    public init(settings: Settings, log: Logger) throws {
        self.settings = settings
        self.log = log
        self.backoff = settings.reconnectMin
        loop = try EventLoop()
        thread = LoopThread(loop)
    }

    /// Starts the connection thread; decisions fail over to `on_backend_error` until the
    /// first connection is made.
    public func start() {
        let bound = LoopBound(self, loop: loop)
        loop.execute { bound.value.connect() }
        thread.start()
    }

    public func stop() {
        let bound = LoopBound(self, loop: loop)
        loop.execute { bound.value.stopped = true; bound.value.disconnect("stopping") }
        thread.stop()
    }

    /// Whether decisions go to Redis now (`/readyz`).
    public var isUp: Bool { up.load(ordering: .acquiring) }

    /// Decisions answered by Redis since the start.
    public var decided: Int { decisions.load(ordering: .relaxed) }

    public func decide(_ tenant: String, _ policies: [RatePolicy], _ done: @escaping @Sendable (BackendResult) -> Void) {
        guard isUp else { return done(.unavailable("redis is not connected")) }
        let args = RedisScript.arguments(tenant: tenant, policies: policies)
        let bound = LoopBound(self, loop: loop)
        let count = policies.count
        loop.execute { bound.value.send(.decision(args: args, policies: count, done: done)) }
    }

    // MARK: Loop side

    private func send(_ waiting: Waiting) {
        guard let c = context, !connecting else {
            if case .decision(_, _, let done) = waiting { done(.unavailable("redis is not connected")) }
            return
        }
        let args: [String]
        switch waiting {
        case .setup(let command): args = command.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
        case .scriptLoad: args = ["SCRIPT", "LOAD", RedisScript.source]
        case .decision(let a, _, _): args = a
        }
        Self.append(c, args)
        inflight.append(InFlight(waiting: waiting, deadline: loop.now &+ EventLoop.nanoseconds(settings.timeout)))
        if deadlineTimer == nil { armDeadline() }
        if !flushScheduled {
            flushScheduled = true
            loop.executeSoon { [self] in flushScheduled = false; flush() }
        }
    }

    private static func append(_ c: UnsafeMutablePointer<redisContext>, _ args: [String]) {
        // strdup'd C strings: hiredis copies them into its buffer before we free them.
        let cargs = args.map { strdup($0) }
        defer { cargs.forEach { free($0) } }
        var pointers = cargs.map { UnsafePointer($0) }
        var lengths = args.map { $0.utf8.count }
        _ = redisAppendCommandArgv(c, Int32(args.count), &pointers, &lengths)
    }

    private func flush() {
        guard let c = context, !connecting else { return }
        var done: Int32 = 0
        while done == 0 {
            if redisBufferWrite(c, &done) != REDIS_OK { return fail(Self.error(c)) }
            if done == 0 { break }  // EAGAIN: wait until writable
        }
        setWritable(done == 0)
    }

    private func setWritable(_ want: Bool) {
        guard want != writePending, let token, let c = context else { return }
        writePending = want
        try? loop.setInterest(token, fd: c.pointee.fd, want ? [.readable, .writable] : .readable)
    }

    private func readable() {
        guard let c = context else { return }
        if redisBufferRead(c) != REDIS_OK { return fail(Self.error(c)) }
        while true {
            var raw: UnsafeMutableRawPointer?
            if redisGetReplyFromReader(c, &raw) != REDIS_OK { return fail(Self.error(c)) }
            guard let raw else { break }
            let reply = raw.assumingMemoryBound(to: redisReply.self)
            defer { freeReplyObject(raw) }
            guard head < inflight.count else { return fail("redis sent an answer nobody asked for") }
            let item = inflight[head]
            head += 1
            handle(reply.pointee, item)
            if context == nil { return }  // the answer failed the connection
        }
        if head == inflight.count {
            inflight.removeAll(keepingCapacity: true)
            head = 0
        } else if head > 1024 && head * 2 > inflight.count {
            inflight.removeFirst(head)
            head = 0
        }
    }

    private func handle(_ reply: redisReply, _ item: InFlight) {
        let isError = reply.type == REDIS_REPLY_ERROR
        let text = reply.str.map { String(cString: $0) } ?? ""
        switch item.waiting {
        case .setup(let command):
            if isError { fail("\(command.split(separator: " ").first ?? ""): \(text)") }
        case .scriptLoad:
            if isError || text != RedisScript.sha1 { return fail("SCRIPT LOAD: \(isError ? text : "unexpected answer")") }
            if !isUp {
                backoff = settings.reconnectMin
                up.store(true, ordering: .releasing)
                log.info("ratelimit_redis_connected", [("redis", .string(settings.target.description))])
                wasUp = true
                connectTimer.map(loop.cancelTimer)
                connectTimer = nil
            }
        case .decision(let args, let count, let done):
            if isError && text.hasPrefix("NOSCRIPT") {
                // Redis lost the script: load it again and send the decision after it.
                send(.scriptLoad)
                send(.decision(args: args, policies: count, done: done))
                return
            }
            guard reply.type == REDIS_REPLY_ARRAY, let decision = RedisScript.decision(Self.integers(reply), policies: count) else {
                return done(.unavailable(isError ? "redis: \(text)" : "redis sent a malformed answer"))
            }
            decisions.add(1, ordering: .relaxed)
            done(.decided(decision))
        }
    }

    private static func integers(_ reply: redisReply) -> [Int64] {
        guard let element = reply.element else { return [] }
        var out: [Int64] = []
        out.reserveCapacity(reply.elements)
        for i in 0..<reply.elements {
            guard let e = element[i], e.pointee.type == REDIS_REPLY_INTEGER else { return [] }
            out.append(Int64(e.pointee.integer))
        }
        return out
    }

    private func armDeadline() {
        guard head < inflight.count else { return }
        deadlineTimer = loop.schedule(at: inflight[head].deadline) { [self] in
            deadlineTimer = nil
            guard head < inflight.count else { return }
            if inflight[head].deadline <= loop.now {
                fail("redis did not answer within \(EventLoop.nanoseconds(settings.timeout) / 1_000_000) ms")
            } else {
                armDeadline()
            }
        }
    }

    private func connect() {
        guard !stopped, context == nil else { return }
        let c: UnsafeMutablePointer<redisContext>?
        switch settings.target.transport {
        case .tcp(let host, let port): c = redisConnectNonBlock(host, Int32(port))
        case .unix(let path): c = redisConnectUnixNonBlock(path)
        }
        guard let c else { return retry("cannot allocate a connection") }
        if c.pointee.err != 0 {
            let reason = Self.error(c)
            redisFree(c)
            return retry(reason)
        }
        context = c
        connecting = true
        let connectLimit = max(settings.timeout, .seconds(1))
        connectTimer = loop.schedule(after: connectLimit) { [self] in
            connectTimer = nil
            if !isUp { fail("connecting took longer than \(EventLoop.nanoseconds(connectLimit) / 1_000_000) ms") }
        }
        _ = bh_set_cloexec(c.pointee.fd, 1)
        do {
            token = try loop.register(fd: c.pointee.fd, interest: .writable) { [self] events in
                if connecting { connected(events) } else {
                    if events.contains(.writable) { flush() }
                    if events.contains(.readable) || events.contains(.hangup) || events.contains(.error) { readable() }
                }
            }
        } catch {
            disconnect("epoll: \(error)")
            retry("epoll: \(error)")
        }
    }

    /// The non-blocking connect has finished: check how, then log in and load the script.
    private func connected(_ events: IOEvents) {
        guard let c = context, let token else { return }
        var err: Int32 = 0
        var len = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(c.pointee.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0 || err != 0 {
            return fail(String(cString: strerror(err == 0 ? errno : err)))
        }
        connecting = false
        writePending = false
        try? loop.setInterest(token, fd: c.pointee.fd, .readable)
        let t = settings.target
        if let password = t.password {
            // Sent as arguments, never logged; the failure message names the command only.
            Self.append(c, t.username.map { ["AUTH", $0, password] } ?? ["AUTH", password])
            inflight.append(InFlight(waiting: .setup("AUTH"), deadline: loop.now &+ EventLoop.nanoseconds(settings.timeout) &+ 1_000_000_000))
        }
        if t.database != 0 { send(.setup("SELECT \(t.database)")) }
        send(.scriptLoad)
        if deadlineTimer == nil { armDeadline() }
    }

    /// Everything waiting fails (`on_backend_error` decides), the connection is dropped,
    /// and another is tried after the backoff.
    private func fail(_ reason: String) {
        disconnect(reason)
        retry(reason)
    }

    private func disconnect(_ reason: String) {
        up.store(false, ordering: .releasing)
        if wasUp != false && !stopped {
            log.warning("ratelimit_redis_unavailable", [("redis", .string(settings.target.description)), ("reason", .string(reason))])
            wasUp = false
        }
        connectTimer.map(loop.cancelTimer)
        connectTimer = nil
        if let c = context {
            if let token { loop.deregister(token, fd: c.pointee.fd) }
            redisFree(c)
        }
        context = nil
        token = nil
        connecting = false
        writePending = false
        deadlineTimer.map(loop.cancelTimer)
        deadlineTimer = nil
        let waiting = inflight[head...]
        inflight = []
        head = 0
        for item in waiting {
            if case .decision(_, _, let done) = item.waiting { done(.unavailable(reason)) }
        }
    }

    private func retry(_ reason: String) {
        guard !stopped else { return }
        if wasUp == nil {
            log.warning("ratelimit_redis_unavailable", [("redis", .string(settings.target.description)), ("reason", .string(reason))])
            wasUp = false
        }
        let delay = backoff
        backoff = min(backoff * 2, settings.reconnectMax)
        _ = loop.schedule(after: delay) { [self] in connect() }
    }

    private static func error(_ c: UnsafeMutablePointer<redisContext>) -> String {
        let text = withUnsafeBytes(of: c.pointee.errstr) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return text.isEmpty ? "connection closed" : text
    }
}
