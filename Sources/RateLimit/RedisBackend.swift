// The Redis backend: decisions made by RedisScript inside one shared Redis. Each event
// loop that makes decisions has its own non-blocking hiredis connection, driven by that
// loop like any other socket: a decision is queued, all the decisions of one loop turn
// are written at the end of the turn (those of one tenant in one script call), and the
// answers come back on the same loop, matched in order. No thread hop, no blocking call:
// a slow Redis delays only the requests that wait for it. A decision not answered within
// `timeout` fails alone; a connection that answers nothing for longer than
// `deadAfter` fails as a whole and is made again with backoff.
import CBulkhead
import CHiredis
import Config
import Dispatch
import EventLoop
import Glibc
import Log
import Synchronization

extension RedisEndpoint {
    /// For logs: never the password.
    var logDescription: String {
        switch transport {
        case .tcp(let host, let port): "redis://\(host):\(port)/\(database)"
        case .unix(let path): "unix:\(path)"
        }
    }
}

public final class RedisBackend: RateBackend, Sendable {
    public struct Settings: Sendable {
        public var target: RedisEndpoint
        /// How long a decision may wait for its answer.
        public var timeout: Duration
        /// Reconnect backoff: doubles from the first to the last.
        public var reconnectMin: Duration = .milliseconds(50)
        public var reconnectMax: Duration = .milliseconds(500)

        public init(target: RedisEndpoint, timeout: Duration) {
            self.target = target
            self.timeout = timeout
        }

        /// A connection that has answered nothing for this long is given up.
        var deadAfter: Duration { max(timeout * 4, .seconds(1)) }
    }

    private let connections: [LoopBound<RedisConnection>]
    /// The same connections, for their atomics (read from any thread).
    private let states: [RedisConnection]
    /// With no loops given, the backend runs one connection on a thread of its own.
    private let thread: LoopThread?
    private let next = Atomic<Int>(0)

    /// One connection per loop in `loops` (the HTTP loops: decisions made on them never
    /// leave them), or, if `loops` is empty, one on a loop thread of the backend's own.
    public init(settings: Settings, log: Logger, loops: [EventLoop] = []) throws {
        var loops = loops
        if loops.isEmpty {
            let own = try EventLoop()
            thread = LoopThread(own)
            loops = [own]
        } else {
            thread = nil
        }
        states = loops.enumerated().map { i, loop in RedisConnection(settings: settings, log: log, loop: loop, index: i) }
        connections = zip(states, loops).map { LoopBound($0, loop: $1) }
    }

    /// Connects; decisions fail over to `on_backend_error` until a connection is ready.
    public func start() {
        for c in connections { c.loop.execute { c.value.connect() } }
        thread?.start()
    }

    public func stop() {
        for c in connections { c.loop.execute { c.value.stop() } }
        thread?.stop()
    }

    /// Whether every connection decides through Redis now (`/readyz`).
    public var isUp: Bool { states.allSatisfy(\.isUp) }

    /// Decisions answered by Redis since the start.
    public var decided: Int { states.reduce(0) { $0 + $1.decided } }

    public func decide(_ tenant: String, _ policies: [RatePolicy], _ done: @escaping @Sendable (BackendResult) -> Void) {
        // On a loop with a connection of its own: straight onto it.
        if let c = connections.first(where: { $0.loop.inLoop }) {
            return c.value.decide(tenant, policies, done)
        }
        let i = next.add(1, ordering: .relaxed).newValue % connections.count
        let c = connections[i]
        guard states[i].isUp else { return done(.unavailable("redis is not connected")) }
        c.loop.execute { c.value.decide(tenant, policies, done) }
    }
}

/// One hiredis connection, driven by one event loop; every method but `isUp` and
/// `decided` runs on that loop.
final class RedisConnection: @unchecked Sendable {  // loop-confined state, atomics for the rest
    private let settings: RedisBackend.Settings
    private let log: Logger
    private let loop: EventLoop
    private let index: Int
    private let up = Atomic<Bool>(false)
    private let decisions = Atomic<Int>(0)

    typealias Done = @Sendable (BackendResult) -> Void

    /// What an answer in the pipe is for, in the order the commands were written.
    private enum Waiting {
        case setup(String)          // AUTH, SELECT: an error answer fails the connection
        case scriptLoad
        /// One script call deciding `dones.count` requests of one tenant, in order.
        case decisions(args: [String], policies: Int, dones: [Done])
    }
    private struct InFlight {
        let waiting: Waiting
        let deadline: UInt64
        let sentAt: UInt64
        /// The callers were told it timed out; the late answer is dropped.
        var expired = false
    }
    private var context: UnsafeMutablePointer<redisContext>?
    private var token: LoopToken?
    private var connecting = false
    private var inflight: [InFlight] = []
    private var head = 0
    /// Decisions of this loop turn, by tenant and policies, written at its end.
    private var batch: [[String]: [Done]] = [:]
    private var batchOrder: [[String]] = []
    private var flushScheduled = false
    private var writePending = false
    private var deadlineTimer: LoopToken?
    private var connectTimer: LoopToken?
    private var backoff: Duration
    /// Whether the last state logged was "connected": transitions are logged, retries are not.
    private var wasUp: Bool?
    private var stopped = false
    /// A host name is being resolved off the loop.
    private var resolving = false

    init(settings: RedisBackend.Settings, log: Logger, loop: EventLoop, index: Int) {
        self.settings = settings
        self.log = log
        self.loop = loop
        self.index = index
        backoff = settings.reconnectMin
    }

    var isUp: Bool { up.load(ordering: .acquiring) }
    var decided: Int { decisions.load(ordering: .relaxed) }

    func stop() {
        stopped = true
        disconnect("stopping")
    }

    func decide(_ tenant: String, _ policies: [RatePolicy], _ done: @escaping Done) {
        guard isUp, context != nil else { return done(.unavailable("redis is not connected")) }
        let args = RedisScript.arguments(tenant: tenant, policies: policies)
        if batch[args] == nil { batchOrder.append(args) }
        batch[args, default: []].append(done)
        scheduleFlush()
    }

    // MARK: Writing

    private func scheduleFlush() {
        guard !flushScheduled else { return }
        flushScheduled = true
        loop.executeSoon { [self] in
            flushScheduled = false
            writeBatch()
            flush()
        }
    }

    private func writeBatch() {
        let order = batchOrder, groups = batch
        batchOrder.removeAll(keepingCapacity: true)
        batch.removeAll(keepingCapacity: true)
        for args in order {
            guard let dones = groups[args] else { continue }
            send(.decisions(args: args, policies: RedisScript.policyCount(args), dones: dones))
        }
    }

    private func send(_ waiting: Waiting) {
        guard let c = context, !connecting else {
            if case .decisions(_, _, let dones) = waiting { dones.forEach { $0(.unavailable("redis is not connected")) } }
            return
        }
        switch waiting {
        case .setup(let command): Self.append(c, command.split(separator: " ").map(String.init))
        case .scriptLoad: Self.append(c, ["SCRIPT", "LOAD", RedisScript.source])
        case .decisions(let args, _, let dones): Self.append(c, RedisScript.call(args, requests: dones.count))
        }
        let now = loop.now
        inflight.append(InFlight(waiting: waiting, deadline: now &+ EventLoop.nanoseconds(settings.timeout), sentAt: now))
        if deadlineTimer == nil { armDeadline() }
        scheduleFlush()
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
        if redisBufferWrite(c, &done) != REDIS_OK { return fail(Self.error(c)) }
        setWritable(done == 0)  // the rest when the socket has room
    }

    private func setWritable(_ want: Bool) {
        guard want != writePending, let token, let c = context else { return }
        writePending = want
        try? loop.setInterest(token, fd: c.pointee.fd, want ? [.readable, .writable] : .readable)
    }

    // MARK: Reading

    private func readable() {
        guard let c = context else { return }
        if redisBufferRead(c) != REDIS_OK { return fail(Self.error(c)) }
        while true {
            var raw: UnsafeMutableRawPointer?
            if redisGetReplyFromReader(c, &raw) != REDIS_OK { return fail(Self.error(c)) }
            guard let raw else { break }
            defer { freeReplyObject(raw) }
            guard head < inflight.count else { return fail("redis sent an answer nobody asked for") }
            let item = inflight[head]
            head += 1
            handle(raw.assumingMemoryBound(to: redisReply.self).pointee, item)
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
                connectTimer.map(loop.cancelTimer)
                connectTimer = nil
                log.info("ratelimit_redis_connected", [("redis", .string(settings.target.logDescription)), ("connection", .of(index))])
                wasUp = true
            }
        case .decisions(let args, let count, let dones):
            if isError && text.hasPrefix("NOSCRIPT") {
                // Redis lost the script: load it again and ask again after it.
                send(.scriptLoad)
                if !item.expired { send(.decisions(args: args, policies: count, dones: dones)) }
                return
            }
            guard !item.expired else { return }
            guard reply.type == REDIS_REPLY_ARRAY,
                  let decisions = RedisScript.decisions(Self.integers(reply), policies: count, requests: dones.count) else {
                let reason = isError ? "redis: \(text)" : "redis sent a malformed answer"
                return dones.forEach { $0(.unavailable(reason)) }
            }
            self.decisions.add(dones.count, ordering: .relaxed)
            for (done, d) in zip(dones, decisions) { done(.decided(d)) }
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

    // MARK: Deadlines

    /// Decisions past their deadline fail alone (their late answers are dropped); a
    /// connection whose oldest question is older than `deadAfter` fails as a whole.
    private func armDeadline() {
        guard let first = inflight[head...].firstIndex(where: { !$0.expired }) else { return }
        deadlineTimer = loop.schedule(at: inflight[first].deadline) { [self] in
            deadlineTimer = nil
            let now = loop.now
            if head < inflight.count, now &- inflight[head].sentAt >= EventLoop.nanoseconds(settings.deadAfter) {
                return fail("redis answered nothing for \(EventLoop.nanoseconds(settings.deadAfter) / 1_000_000) ms")
            }
            let reason = "redis did not answer within \(EventLoop.nanoseconds(settings.timeout) / 1_000_000) ms"
            var i = head
            while i < inflight.count, inflight[i].deadline <= now {
                if !inflight[i].expired {
                    inflight[i].expired = true
                    if case .decisions(_, _, let dones) = inflight[i].waiting { dones.forEach { $0(.unavailable(reason)) } }
                }
                i += 1
            }
            if i < inflight.count {
                armDeadline()
            } else if head < inflight.count {
                // Only expired questions are left: check on the connection once more.
                deadlineTimer = loop.schedule(at: inflight[head].sentAt &+ EventLoop.nanoseconds(settings.deadAfter)) { [self] in
                    deadlineTimer = nil
                    if head < inflight.count { fail("redis answered nothing for \(EventLoop.nanoseconds(settings.deadAfter) / 1_000_000) ms") }
                }
            }
        }
    }

    // MARK: Connection

    func connect() {
        guard !stopped, context == nil, !resolving else { return }
        switch settings.target.transport {
        case .unix(let path):
            open(redisConnectUnixNonBlock(path))
        case .tcp(let host, let port) where Self.isNumeric(host):
            open(redisConnectNonBlock(host, Int32(port)))
        case .tcp(let host, let port):
            // getaddrinfo can wait on DNS for seconds: never on the loop.
            resolving = true
            let bound = LoopBound(self, loop: loop)
            DispatchQueue.global().async {
                let address = Self.resolve(host)
                bound.loop.execute {
                    let me = bound.value
                    me.resolving = false
                    guard !me.stopped else { return }
                    if let address { me.open(redisConnectNonBlock(address, Int32(port))) } else { me.retry("cannot resolve \(host)") }
                }
            }
        }
    }

    static func isNumeric(_ host: String) -> Bool {
        var v4 = in_addr(), v6 = in6_addr()
        return inet_pton(AF_INET, host, &v4) == 1 || inet_pton(AF_INET6, host, &v6) == 1
    }

    /// The first address of `host`, as text.
    static func resolve(_ host: String) -> String? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0, let first = list else { return nil }
        defer { freeaddrinfo(list) }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        switch first.pointee.ai_family {
        case AF_INET:
            var a = first.pointee.ai_addr.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { $0.pointee.sin_addr }
            guard inet_ntop(AF_INET, &a, &text, socklen_t(text.count)) != nil else { return nil }
        case AF_INET6:
            var a = first.pointee.ai_addr.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { $0.pointee.sin6_addr }
            guard inet_ntop(AF_INET6, &a, &text, socklen_t(text.count)) != nil else { return nil }
        default:
            return nil
        }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private func open(_ made: UnsafeMutablePointer<redisContext>?) {
        guard let c = made else { return retry("cannot allocate a connection") }
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
            inflight.append(InFlight(waiting: .setup("AUTH"), deadline: loop.now &+ EventLoop.nanoseconds(settings.deadAfter),
                                     sentAt: loop.now))
        }
        if t.database != 0 { send(.setup("SELECT \(t.database)")) }
        send(.scriptLoad)
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
            log.warning("ratelimit_redis_unavailable", [("redis", .string(settings.target.logDescription)), ("connection", .of(index)),
                                                        ("reason", .string(reason))])
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
        for item in waiting where !item.expired {
            if case .decisions(_, _, let dones) = item.waiting { dones.forEach { $0(.unavailable(reason)) } }
        }
        let queued = batch
        batch.removeAll()
        batchOrder.removeAll()
        for dones in queued.values { dones.forEach { $0(.unavailable(reason)) } }
    }

    private func retry(_ reason: String) {
        guard !stopped else { return }
        if wasUp == nil {
            log.warning("ratelimit_redis_unavailable", [("redis", .string(settings.target.logDescription)), ("connection", .of(index)),
                                                        ("reason", .string(reason))])
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
