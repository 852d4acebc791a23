// WorkerProcess: one spawned worker as the supervisor sees it — its pidfd, its socket
// (frames in and out, non-blocking, on the loop), its stderr (logged line by line, within
// its tenant's budget) and its CPU clock.
import EventLoop
import Glibc
import Posix
import Wire

final class WorkerProcess {
    enum State: String { case starting, idle, busy, draining }

    /// A request sent to the worker and not answered yet.
    struct InFlight {
        let ticket: UInt64
        /// Nil once called: a streamed response is handed over at its head, its body follows.
        var completion: WorkerCompletion?
        /// When it times out (loop clock); a streamed body moves it on with each piece.
        var deadline: UInt64
        /// The request body still streaming from the client into the worker.
        var upload: ByteChannel?
        /// Where a streamed response body goes, if the caller takes one.
        var download: ByteChannel?
        /// When it was handed to the worker (loop clock).
        var startedAt: UInt64 = 0
        /// The response head came with `more`: DATA frames follow.
        var responding = false
        var cancelSent = false
        /// Its streamed response waits for the client to take some (`deadline` is then
        /// the stream's stall bound, not request_timeout).
        var waitingForReader = false
        /// Its body streams one way or the other: nothing else goes to the worker until it
        /// is answered.
        let streamed: Bool
    }

    let tenant: TenantIdentity
    let pid: Int32
    let startedAt: UInt64
    var state = State.starting
    /// When it last became idle (loop clock), for idle_timeout.
    var idleSince: UInt64 = 0
    /// It completed its jail and said HELLO at some point.
    var wasReady = false
    var served = 0
    /// The supervisor's settings generation it was started under.
    var generation = 0
    /// Requests handed to it so far (recycling counts these, so none is sent past the limit).
    var assigned = 0
    /// Sent and unanswered, oldest first: the worker answers in order.
    var inflight: [InFlight] = []
    /// CPU time of the worker already attributed to its tenant (ns).
    var cpuAccounted: UInt64 = 0
    /// The worker's process CPU clock (all its threads); nil once it is reaped, when the
    /// pid may name another process.
    private var cpuClock: clockid_t?
    /// We asked it to go (GOAWAY) or killed it on purpose: its exit is not a crash.
    var expectingExit = false
    /// Spawn, idle or exit-grace timer, whichever applies to the current state.
    var lifecycleTimer: LoopToken?
    /// The last line it wrote to stderr: the reason a failed jail gives.
    var lastStderrLine: String { String(decoding: lastLine, as: UTF8.self) }
    /// Its tenant's allowance for stderr, shared by the tenant's workers.
    let stderrBudget: StderrBudget

    private let child: ChildProcess
    private let socket: FileDescriptor
    private let stderrPipe: FileDescriptor
    private unowned let loop: EventLoop
    private weak var owner: Supervisor?
    private var decoder: FrameDecoder
    private var outbox: [UInt8] = []
    private var outboxSent = 0
    private var socketToken: LoopToken?
    /// Where its stderr stands: watched; set aside while its tenant is over budget (the
    /// pipe fills and the worker's writes block, not the loop); or at its end.
    private enum StderrState { case watching(LoopToken), waiting, closed }
    private var stderrState = StderrState.closed
    private var exitToken: LoopToken?
    private var stderrPartial: [UInt8] = []
    private var lastLine: [UInt8] = []
    private var wantsWrite = false
    /// Reading is paused while a streamed response's consumer is behind.
    private var readPaused = false
    /// Run once when everything queued has been written (an upload waits for room).
    var whenFlushed: (() -> Void)?
    /// Bytes queued for the worker and not yet written.
    var outboxBytes: Int { outbox.count - outboxSent }
    /// A request with a streamed body in flight: nothing else is sent meanwhile, until
    /// it is answered.
    var streaming: Bool { inflight.contains { $0.streamed } }

    /// Longest stderr line logged; the rest of a longer one is dropped.
    private static let maxStderrLine = 1024
    /// Most stderr read at one readiness event: the loop serves every tenant.
    static let stderrReadBytes = 64 * 1024

    /// The kernel's count of the CPU time the whole worker has run so far (ns): every
    /// thread, those that ended too (clock_gettime on its process CPU clock; root may read
    /// another uid's). Nil once it is reaped: its rusage then has the rest, its children
    /// included.
    func cpuNanoseconds() -> UInt64? {
        guard let clock = cpuClock else { return nil }
        var ts = timespec()
        guard clock_gettime(clock, &ts) == 0 else { return nil }
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// Resident set size in KiB, from /proc/PID/statm (pages × page size); 0 if unreadable.
    func residentKiB() -> Int {
        guard let fd = try? Posix.open("/proc/\(pid)/statm", O_RDONLY) else { return 0 }
        var buf = [UInt8](repeating: 0, count: 128)
        let n = buf.withUnsafeMutableBytes { read(fd.rawValue, $0.baseAddress, $0.count) }
        guard n > 0 else { return 0 }
        let fields = buf[..<n].split(separator: 0x20)
        guard fields.count > 1, let pages = Int(String(decoding: fields[1], as: UTF8.self)) else { return 0 }
        return pages * Int(sysconf(Int32(_SC_PAGESIZE))) / 1024
    }

    /// Spawns a worker for `tenant` whose root will be `volume`.
    /// Forked by the zygote when there is one (falling back to posix_spawn if it fails).
    static func spawn(tenant: TenantIdentity, volume: String, settings: SupervisorSettings, zygote: Zygote?,
                      devNull: borrowing FileDescriptor, loop: EventLoop, owner: Supervisor,
                      stderrBudget: StderrBudget) throws(Errno) -> WorkerProcess {
        let pair = try Posix.socketPair()
        let errPipe = try Posix.pipe()
        let l = settings.limits
        var args = [
            settings.executable,
            "--tenant", tenant.id, "--uid", String(tenant.uid), "--gid", String(tenant.gid), "--root", volume,
            "--parent", String(getpid()), "--memory", String(l.memoryBytes), "--cpu", String(l.cpuSeconds),
            "--nproc", String(l.processes), "--nofile", String(l.openFiles), "--fsize", String(l.fileSizeBytes),
            "--max-frame", String(settings.maxFramePayload),
        ]
        if let policy = settings.seccompPolicyFile { args += ["--seccomp", policy] }
        var forked: ChildProcess? = nil
        if let zygote {
            do {
                forked = try zygote.spawn(arguments: args, socket: pair.second, stderr: errPipe.second)
            } catch {
                owner.zygoteFailed(zygote, error)
            }
        }
        let child: ChildProcess
        switch consume forked {
        case .some(let c): child = c
        case .none:
            child = try ChildProcess.spawn(path: settings.executable, arguments: args, stdin: devNull, stdout: devNull,
                                           stderr: errPipe.second, fd3: pair.second)
        }
        // The child's ends close here, when `pair` and `errPipe` go: only the child keeps them.
        let ours = pair.first
        let errRead = errPipe.first
        try ours.setNonBlocking()
        try errRead.setNonBlocking()
        let worker = WorkerProcess(tenant: tenant, child: child, socket: ours, stderr: errRead, loop: loop,
                                   owner: owner, maxFrame: settings.maxFramePayload, stderrBudget: stderrBudget)
        do {
            try worker.watch()
        } catch {
            worker.kill()
            throw error
        }
        return worker
    }

    private init(tenant: TenantIdentity, child: consuming ChildProcess, socket: consuming FileDescriptor,
                 stderr: consuming FileDescriptor, loop: EventLoop, owner: Supervisor, maxFrame: Int, stderrBudget: StderrBudget) {
        self.tenant = tenant
        self.pid = child.pid
        self.stderrBudget = stderrBudget
        var clock = clockid_t()
        if clock_getcpuclockid(child.pid, &clock) == 0 { cpuClock = clock }
        self.child = child
        self.socket = socket
        self.stderrPipe = stderr
        self.loop = loop
        self.owner = owner
        self.decoder = FrameDecoder(maxPayload: maxFrame)
        self.startedAt = loop.now
    }

    private func watch() throws(Errno) {
        socketToken = try loop.register(fd: socket.rawValue, interest: .readable) { [weak self] events in
            self?.socketReady(events)
        }
        try watchStderr()
        exitToken = try loop.watchExit(pidfd: child.pidfd.rawValue) { [weak self] in
            self?.exited()
        }
    }

    // MARK: Commands from the supervisor

    /// Queues a frame; all frames queued in one loop turn go out in one write.
    func send(_ message: Message, requestID: UInt64) {
        guard socketToken != nil else { return }
        message.encode(requestID: requestID, into: &outbox)
        if !flushScheduled {
            flushScheduled = true
            loop.executeSoon { [weak self] in
                self?.flushScheduled = false
                self?.flush()
            }
        }
    }

    private var flushScheduled = false

    /// SIGKILL through the pidfd: never a recycled pid.
    func kill() {
        expectingExit = true
        child.signal(SIGKILL)
    }

    // MARK: Events

    private func socketReady(_ events: IOEvents) {
        if events.contains(.writable) { flush() }
        // Its end closed while we are not reading: the kernel says so every turn until the
        // socket goes, and the worker can take nothing more anyway.
        if readPaused && (events.contains(.hangup) || events.contains(.error)) { return lost("closed its socket") }
        if events.contains(.readable) || events.contains(.hangup) || events.contains(.error) { drainSocket() }
    }

    /// Stops taking frames from the worker (its socket buffer then fills and its writes
    /// block) until `resumeReading`.
    func pauseReading() {
        guard !readPaused else { return }
        readPaused = true
        updateInterest()
    }

    func resumeReading() {
        guard readPaused else { return }
        readPaused = false
        updateInterest()
        drainSocket()
    }

    /// Reads everything the worker has sent. Returns at would-block or end of stream.
    private func drainSocket() {
        guard socketToken != nil else { return }
        guard decodeFrames() else { return }
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while socketToken != nil && !readPaused {
            let n: Int?
            do {
                n = try buffer.withUnsafeMutableBytes { (raw) throws(Errno) -> Int? in try socket.read(into: raw) }
            } catch {
                lost("read from its socket: \(error)")
                return
            }
            guard let n else { return }
            if n == 0 {
                lost("closed its socket")
                return
            }
            buffer.withUnsafeBytes { decoder.feed(UnsafeRawBufferPointer(rebasing: $0[..<n])) }
            guard decodeFrames() else { return }
        }
    }

    /// Hands over the frames already received; false if the connection is gone.
    private func decodeFrames() -> Bool {
        while socketToken != nil && !readPaused {
            do {
                guard let frame = try decoder.next() else { break }
                let message = try Message(frame: frame)
                owner?.worker(self, said: message, requestID: frame.requestID)
            } catch {
                lost("protocol error: \(error)")
                return false
            }
        }
        return socketToken != nil
    }

    private func flush() {
        while outboxSent < outbox.count {
            let n: Int?
            do {
                n = try outbox.withUnsafeBytes { (raw) throws(Errno) -> Int? in
                    try socket.send(UnsafeRawBufferPointer(rebasing: raw[outboxSent...]))
                }
            } catch {
                lost("write to its socket: \(error)")
                return
            }
            guard let n else {
                setWriteInterest(true)
                return
            }
            outboxSent += n
        }
        outbox.removeAll(keepingCapacity: outbox.capacity <= 1 << 20)
        outboxSent = 0
        setWriteInterest(false)
        if let next = whenFlushed {
            whenFlushed = nil
            next()
        }
    }

    private func setWriteInterest(_ on: Bool) {
        guard on != wantsWrite else { return }
        wantsWrite = on
        updateInterest()
    }

    private func updateInterest() {
        guard let token = socketToken else { return }
        var interest: IOEvents = readPaused ? [] : .readable
        if wantsWrite { interest.insert(.writable) }
        try? loop.setInterest(token, fd: socket.rawValue, interest)
    }

    /// The socket is unusable or the worker broke the protocol: it is killed (a malformed
    /// message from the less-trusted side is fatal to that peer) and reaped by `exited`.
    private func lost(_ reason: String) {
        if let token = socketToken {
            loop.deregister(token, fd: socket.rawValue)
            socketToken = nil
        }
        let wasExpected = expectingExit
        child.signal(SIGKILL)
        owner?.worker(self, lost: reason, expected: wasExpected)
    }

    private func watchStderr() throws(Errno) {
        stderrState = .watching(try loop.register(fd: stderrPipe.rawValue, interest: .readable) { [weak self] _ in
            self?.readStderr()
        })
    }

    /// Its tenant's stderr budget has refilled: read on.
    func resumeStderr() {
        guard case .waiting = stderrState else { return }
        do { try watchStderr() } catch { return closeStderr() }
        readStderr()
    }

    /// Reads one piece of stderr (at most `stderrReadBytes`, and no more than its tenant's
    /// budget allows; `final`: at exit, once, whatever the budget) and hands its lines over,
    /// as many as the budget allows; the others are only counted.
    private func readStderr(final: Bool = false) {
        if case .closed = stderrState { return }
        let now = loop.now
        let allowed = final ? Self.stderrReadBytes : min(Self.stderrReadBytes, stderrBudget.bytesAllowed(now))
        guard allowed > 0 else {
            // Not watched (an epoll registration would report a closed pipe every turn).
            if case .watching(let token) = stderrState { loop.deregister(token, fd: stderrPipe.rawValue) }
            stderrState = .waiting
            owner?.stderrWaits(self)
            return
        }
        var buffer = [UInt8](unsafeUninitializedCapacity: allowed) { _, count in count = allowed }
        var n = 0  // a read error ends the capture like end of file
        do {
            guard let got = try buffer.withUnsafeMutableBytes({ (raw) throws(Errno) -> Int? in try stderrPipe.read(into: raw) })
            else { return }
            n = got
        } catch {}
        guard n > 0 else {
            if !stderrPartial.isEmpty {
                completeLine()
                let logged = stderrBudget.linesAllowed(now) > 0
                if logged { stderrBudget.spend(lines: 1) }
                owner?.worker(self, wroteStderr: logged ? [lastStderrLine] : [], suppressed: logged ? 0 : 1)
            }
            return closeStderr()
        }
        stderrBudget.spend(bytes: n)
        var lines: [String] = []
        var suppressed = 0
        let logLines = stderrBudget.linesAllowed(now)
        buffer.withUnsafeBytes { raw in
            let base = raw.baseAddress!
            var start = 0
            while start < n {
                guard let newline = memchr(base + start, 0x0A, n - start) else {
                    appendToLine(UnsafeRawBufferPointer(rebasing: raw[start..<n]))
                    break
                }
                let end = base.distance(to: UnsafeRawPointer(newline))
                appendToLine(UnsafeRawBufferPointer(rebasing: raw[start..<end]))
                completeLine()
                if lines.count < logLines {
                    lines.append(lastStderrLine)
                } else {
                    suppressed += 1
                }
                start = end + 1
            }
        }
        stderrBudget.spend(lines: lines.count)
        if !lines.isEmpty || suppressed > 0 { owner?.worker(self, wroteStderr: lines, suppressed: suppressed) }
    }

    private func appendToLine(_ bytes: UnsafeRawBufferPointer) {
        let room = Self.maxStderrLine - stderrPartial.count
        if room > 0 { stderrPartial.append(contentsOf: bytes.prefix(room)) }
    }

    /// The line so far becomes the last line (swapped, not copied).
    private func completeLine() {
        swap(&stderrPartial, &lastLine)
        stderrPartial.removeAll(keepingCapacity: true)
    }

    private func closeStderr() {
        switch stderrState {
        case .watching(let token): loop.deregister(token, fd: stderrPipe.rawValue)
        case .waiting: stderrBudget.waiting.removeAll { $0 === self }
        case .closed: break
        }
        stderrState = .closed
    }

    private func exited() {
        // Whatever it wrote before exiting is read first: a response must not be lost
        // because the exit event came in the same epoll batch.
        drainSocket()
        readStderr(final: true)
        closeStderr()
        let status: ExitStatus
        do {
            guard let s = try child.reap() else {
                // Exited, but still its spawning parent's child for a moment (a forked
                // worker): look again shortly instead of spinning on the readable pidfd.
                if let token = exitToken {
                    loop.deregister(token, fd: child.pidfd.rawValue)
                    exitToken = nil
                }
                loop.schedule(after: .milliseconds(2)) { [weak self] in self?.exited() }
                return
            }
            status = s
        } catch {
            preconditionFailure("waitid on our own child failed: \(error)")
        }
        cpuClock = nil
        for (token, fd) in [(socketToken, socket.rawValue), (exitToken, child.pidfd.rawValue)] {
            if let token { loop.deregister(token, fd: fd) }
        }
        socketToken = nil
        exitToken = nil
        owner?.worker(self, exited: status)
    }
}
