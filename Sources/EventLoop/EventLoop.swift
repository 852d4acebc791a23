// EventLoop: one epoll loop on one thread, with timers (timerfd), cross-thread wake-ups
// (eventfd), signals (signalfd) and child exits (pidfd).
import CBulkhead
import Posix
import Glibc
import Synchronization

/// Readiness reported to an I/O handler.
public struct IOEvents: OptionSet, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public static let readable = IOEvents(rawValue: UInt32(BH_EPOLLIN))
    public static let writable = IOEvents(rawValue: UInt32(BH_EPOLLOUT))
    /// The socket failed; reported whatever the interest, like `hangup`.
    public static let error = IOEvents(rawValue: UInt32(BH_EPOLLERR))
    /// Both directions are shut (the peer is gone, or reset the connection). The kernel
    /// reports it whatever the interest, turn after turn, until the descriptor is
    /// deregistered: a handler that sees it must act, not wait.
    public static let hangup = IOEvents(rawValue: UInt32(BH_EPOLLHUP))
    /// The peer shut its writing side. Watched only along with `readable`: a half-closed
    /// peer that is not being read must not wake the loop turn after turn.
    public static let readHangup = IOEvents(rawValue: UInt32(BH_EPOLLRDHUP))

    /// What to ask epoll for: `readHangup` comes with `readable` and never without it.
    var epollMask: UInt32 {
        var mask = subtracting([.readHangup, .hangup, .error])
        if contains(.readable) { mask.insert(.readHangup) }
        return mask.rawValue
    }
}

/// A registration of a descriptor or a timer; pass it back to cancel.
public struct LoopToken: Hashable, Sendable {
    fileprivate let id: UInt64
}

/// A single-threaded event loop. Everything but `execute` and `stop` must be called on
/// the loop's own thread (checked by `assertInLoop`); handlers run there.
///
/// `@unchecked Sendable`: the mutable state is confined to the loop thread, which every
/// confined entry point checks at run time; `pending` is behind a Mutex and the wake-up
/// eventfd is safe to write from any thread.
public final class EventLoop: @unchecked Sendable {
    private let epoll: FileDescriptor
    private let wakeFD: FileDescriptor
    private let timerFD: FileDescriptor
    private var signalFD: FileDescriptor?

    private var nextID: UInt64 = 16  // ids below are reserved for the loop's own descriptors
    private var ioHandlers: [UInt64: (IOEvents) -> Void] = [:]
    private var timers: [UInt64: (deadline: UInt64, fire: () -> Void)] = [:]
    private var timerHeap = TimerHeap()
    private var armedDeadline: UInt64 = .max
    private var signalHandler: ((Int32) -> Void)?
    private var deferred: [() -> Void] = []

    private let pending = Mutex<[@Sendable () -> Void]>([])
    private let stopRequested = Atomic<Bool>(false)
    private let ownerThread = Atomic<UInt>(0)

    private static let wakeID: UInt64 = 1, timerID: UInt64 = 2, signalID: UInt64 = 3

    public init() throws(Errno) {
        epoll = FileDescriptor(adopting: try checked("epoll_create1") { bh_epoll_create() })
        wakeFD = FileDescriptor(adopting: try checked("eventfd") { bh_eventfd() })
        timerFD = FileDescriptor(adopting: try checked("timerfd_create") { bh_timerfd() })
        _ = try checked("epoll_ctl") {
            bh_epoll_ctl(epoll.rawValue, Int32(BH_EPOLL_CTL_ADD), wakeFD.rawValue, UInt32(BH_EPOLLIN), Self.wakeID)
        }
        _ = try checked("epoll_ctl") {
            bh_epoll_ctl(epoll.rawValue, Int32(BH_EPOLL_CTL_ADD), timerFD.rawValue, UInt32(BH_EPOLLIN), Self.timerID)
        }
    }

    // MARK: Any thread

    /// Runs `work` on the loop thread soon. Safe from any thread.
    public func execute(_ work: @escaping @Sendable () -> Void) {
        // Only the first item of a batch wakes the loop: it takes the whole queue at once.
        let wasEmpty = pending.withLock { queue in
            queue.append(work)
            return queue.count == 1
        }
        if wasEmpty { _ = bh_eventfd_signal(wakeFD.rawValue) }
    }

    /// Makes `run()` return after the current iteration. Safe from any thread.
    public func stop() {
        stopRequested.store(true, ordering: .releasing)
        _ = bh_eventfd_signal(wakeFD.rawValue)
    }

    /// The loop's clock: CLOCK_MONOTONIC in nanoseconds.
    public var now: UInt64 { Posix.monotonicNanoseconds() }

    // MARK: Loop thread

    public var inLoop: Bool { ownerThread.load(ordering: .acquiring) == Self.currentThread }

    public func assertInLoop(_ file: StaticString = #fileID, _ line: UInt = #line) {
        let owner = ownerThread.load(ordering: .acquiring)
        precondition(owner == 0 || owner == Self.currentThread, "EventLoop used off its thread", file: file, line: line)
    }

    /// Watches `fd` (owned by the caller, who must `deregister` before closing it).
    public func register(fd: Int32, interest: IOEvents, _ handler: @escaping (IOEvents) -> Void) throws(Errno) -> LoopToken {
        assertInLoop()
        let id = allocateID()
        _ = try checked("epoll_ctl(ADD)") {
            bh_epoll_ctl(epoll.rawValue, Int32(BH_EPOLL_CTL_ADD), fd, interest.epollMask, id)
        }
        ioHandlers[id] = handler
        return LoopToken(id: id)
    }

    /// Changes the readiness `fd` is watched for.
    public func setInterest(_ token: LoopToken, fd: Int32, _ interest: IOEvents) throws(Errno) {
        assertInLoop()
        _ = try checked("epoll_ctl(MOD)") {
            bh_epoll_ctl(epoll.rawValue, Int32(BH_EPOLL_CTL_MOD), fd, interest.epollMask, token.id)
        }
    }

    /// Stops watching `fd`. Its handler is not called again, even for events already read.
    public func deregister(_ token: LoopToken, fd: Int32) {
        assertInLoop()
        _ = bh_epoll_ctl(epoll.rawValue, Int32(BH_EPOLL_CTL_DEL), fd, 0, 0)
        ioHandlers[token.id] = nil
    }

    /// Calls `fire` once at `deadline` (loop clock, ns) or soon after.
    @discardableResult
    public func schedule(at deadline: UInt64, _ fire: @escaping () -> Void) -> LoopToken {
        assertInLoop()
        let id = allocateID()
        timers[id] = (deadline, fire)
        timerHeap.push(deadline: deadline, id: id)
        return LoopToken(id: id)
    }

    @discardableResult
    public func schedule(after delay: Duration, _ fire: @escaping () -> Void) -> LoopToken {
        schedule(at: now &+ Self.nanoseconds(delay), fire)
    }

    public func cancelTimer(_ token: LoopToken) {
        assertInLoop()
        guard timers.removeValue(forKey: token.id) != nil else { return }
        // Cancelled entries stay in the heap until due; rebuild it when they are most of it,
        // so a stream of scheduled-then-cancelled timers cannot grow memory without bound.
        if timerHeap.count > 1024 && timerHeap.count > 2 * timers.count {
            timerHeap.rebuild { id, deadline in timers[id]?.deadline == deadline }
        }
    }

    /// Runs `work` on this thread at the end of this loop turn, after every event of the
    /// turn was handled (so work queued by several handlers is done once, in one go).
    public func executeSoon(_ work: @escaping () -> Void) {
        assertInLoop()
        deferred.append(work)
    }

    /// Delivers `signals` through a signalfd to `handler`. The signals are blocked in the
    /// calling thread, so call this before starting other threads (they inherit the mask).
    public func handleSignals(_ signals: [Int32], _ handler: @escaping (Int32) -> Void) throws(Errno) {
        assertInLoop()
        precondition(signalFD == nil, "signals are handled once per loop")
        _ = try checked("pthread_sigmask") { bh_block_signals(signals, Int32(signals.count)) }
        let fd = FileDescriptor(adopting: try checked("signalfd") { bh_signalfd(signals, Int32(signals.count)) })
        _ = try checked("epoll_ctl(ADD)") {
            bh_epoll_ctl(epoll.rawValue, Int32(BH_EPOLL_CTL_ADD), fd.rawValue, UInt32(BH_EPOLLIN), Self.signalID)
        }
        signalFD = consume fd
        signalHandler = handler
    }

    /// Calls `handler` once the process behind `pidfd` has exited. The caller reaps it and
    /// then deregisters the token.
    public func watchExit(pidfd: Int32, _ handler: @escaping () -> Void) throws(Errno) -> LoopToken {
        try register(fd: pidfd, interest: .readable) { _ in handler() }
    }

    /// Runs until `stop()`. The calling thread becomes the loop's thread.
    public func run() throws(Errno) {
        let me = Self.currentThread
        let (exchanged, owner) = ownerThread.compareExchange(expected: 0, desired: me, ordering: .acquiringAndReleasing)
        precondition(exchanged || owner == me, "EventLoop.run on a second thread")
        defer { ownerThread.store(0, ordering: .releasing) }

        var events = [UInt32](repeating: 0, count: 256)
        var datas = [UInt64](repeating: 0, count: 256)
        while !stopRequested.load(ordering: .acquiring) {
            armTimer()
            let n = try checked("epoll_wait") {
                bh_epoll_wait(epoll.rawValue, &events, &datas, 256, deferred.isEmpty ? -1 : 0)
            }
            for i in 0..<Int(n) {
                dispatch(id: datas[i], events: IOEvents(rawValue: events[i]))
            }
            fireDueTimers()
            runPending()
        }
        stopRequested.store(false, ordering: .releasing)
    }

    // MARK: Internals

    private func dispatch(id: UInt64, events: IOEvents) {
        switch id {
        case Self.wakeID:
            _ = bh_eventfd_drain(wakeFD.rawValue)
        case Self.timerID:
            _ = bh_timerfd_drain(timerFD.rawValue)
            armedDeadline = .max
        case Self.signalID:
            guard let fd = signalFD?.rawValue else { return }
            while true {
                let sig = bh_signalfd_read(fd)
                if sig <= 0 { break }
                signalHandler?(sig)
            }
        default:
            ioHandlers[id]?(events)
        }
    }

    private func fireDueTimers() {
        let t = now
        while let top = timerHeap.peek, top.deadline <= t {
            timerHeap.pop()
            guard let timer = timers[top.id], timer.deadline == top.deadline else { continue }
            timers[top.id] = nil
            timer.fire()
        }
        // Drop cancelled timers from the top so they do not keep the timerfd armed.
        while let top = timerHeap.peek, timers[top.id]?.deadline != top.deadline { timerHeap.pop() }
    }

    private func runPending() {
        let work = pending.withLock { queue in
            let items = queue
            queue.removeAll(keepingCapacity: true)
            return items
        }
        for item in work { item() }
        let local = deferred
        deferred.removeAll(keepingCapacity: true)
        for item in local { item() }
    }

    private func armTimer() {
        guard let top = timerHeap.peek else { return }
        if top.deadline < armedDeadline {
            _ = bh_timerfd_arm(timerFD.rawValue, top.deadline)
            armedDeadline = top.deadline
        }
    }

    private func allocateID() -> UInt64 {
        nextID += 1
        return nextID
    }

    private static var currentThread: UInt { UInt(pthread_self()) }

    public static func nanoseconds(_ d: Duration) -> UInt64 {
        let (s, attos) = d.components
        if s < 0 { return 0 }
        let (ns, overflow) = UInt64(s).multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? .max : ns &+ UInt64(attos / 1_000_000_000)
    }
}

/// A binary min-heap of (deadline, id); cancelled entries are skipped lazily.
struct TimerHeap {
    private var items: [(deadline: UInt64, id: UInt64)] = []

    var peek: (deadline: UInt64, id: UInt64)? { items.first }
    var count: Int { items.count }

    /// Keeps only the entries `live` accepts, and restores the heap order.
    mutating func rebuild(_ live: (UInt64, UInt64) -> Bool) {
        let kept = items.filter { live($0.id, $0.deadline) }
        items.removeAll(keepingCapacity: true)
        for k in kept { push(deadline: k.deadline, id: k.id) }
    }

    mutating func push(deadline: UInt64, id: UInt64) {
        items.append((deadline, id))
        var i = items.count - 1
        while i > 0 {
            let parent = (i - 1) / 2
            if items[parent].deadline <= items[i].deadline { break }
            items.swapAt(parent, i)
            i = parent
        }
    }

    mutating func pop() {
        guard !items.isEmpty else { return }
        items.swapAt(0, items.count - 1)
        items.removeLast()
        var i = 0
        while true {
            let l = 2 * i + 1, r = l + 1
            var smallest = i
            if l < items.count && items[l].deadline < items[smallest].deadline { smallest = l }
            if r < items.count && items[r].deadline < items[smallest].deadline { smallest = r }
            if smallest == i { break }
            items.swapAt(i, smallest)
            i = smallest
        }
    }
}

/// A value that may be carried across threads but only touched on its loop's thread
/// (checked at run time) — how loop-confined objects travel in `execute` closures.
public struct LoopBound<Value>: @unchecked Sendable {
    private let _value: Value
    public let loop: EventLoop

    public init(_ value: Value, loop: EventLoop) {
        self._value = value
        self.loop = loop
    }

    public var value: Value {
        loop.assertInLoop()
        return _value
    }
}
