// The access log's writer: one record per request is too many write(2)s on the request
// path (measured: 6% of the daemon's CPU), so records are gathered in memory and written
// to stderr together by a thread of their own, at most 50 ms later (or as soon as 64 KiB
// wait). Records stay in order and whole; `flush` writes what is left at exit. If stderr
// stops draining (a stalled journal), at most `maxPending` bytes wait and later records
// are dropped and counted, so a slow log never grows the daemon's memory.
import Dispatch
import Glibc
import Synchronization

public final class BatchedSink: Sendable {
    private struct Pending {
        var bytes: [UInt8] = []
        var dropped = 0
    }
    private let pending = Mutex(Pending())
    private let wake = DispatchSemaphore(value: 0)
    private let stopping = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)
    private let fd: Int32
    private let maxPending: Int

    public static let maxDelay = DispatchTimeInterval.milliseconds(50)
    static let eagerBytes = 64 * 1024

    public init(fd: Int32 = 2, maxPending: Int = 4 << 20) {
        self.fd = fd
        self.maxPending = maxPending
        let thread = Thread(sink: self)
        thread.start()
    }

    /// One record, newline included.
    public func append(_ line: [UInt8]) {
        let size = pending.withLock { p -> Int in
            guard p.bytes.count + line.count <= maxPending else {
                p.dropped += 1
                return 0
            }
            p.bytes += line
            return p.bytes.count
        }
        if size >= Self.eagerBytes { wake.signal() }
    }

    /// Writes what is pending and stops the writer thread.
    public func flush() {
        guard !stopping.exchange(true, ordering: .acquiringAndReleasing) else { return }
        wake.signal()
        _ = done.wait(timeout: .now() + .seconds(5))
    }

    fileprivate func run() {
        // Two buffers trade places, so neither is reallocated (nor its pages faulted in
        // again) batch after batch.
        var batch: [UInt8] = []
        while true {
            _ = wake.wait(timeout: .now() + Self.maxDelay)  // the batching interval, not a synchronisation
            // Read before taking the batch: whatever was appended before `flush` is in it.
            let last = stopping.load(ordering: .acquiring)
            let dropped = pending.withLock { p -> Int in
                swap(&p.bytes, &batch)
                defer { p.dropped = 0 }
                return p.dropped
            }
            if dropped > 0 {
                let record = "{\"time\":\"\(Logger.timestamp())\",\"level\":\"warning\",\"event\":\"log_records_dropped\",\"count\":\(dropped)}\n"
                batch += record.utf8
            }
            writeAll(batch)
            batch.removeAll(keepingCapacity: true)
            if last {
                done.signal()
                return
            }
        }
    }

    /// Blocks until the batch is written; a non-blocking stderr is waited for, so lines
    /// are never cut. A stderr that is gone loses the batch: nothing else can be done.
    private func writeAll(_ batch: [UInt8]) {
        var offset = 0
        while offset < batch.count {
            let n = batch.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if n > 0 {
                offset += n
            } else if n < 0 && errno == EINTR {
                continue
            } else if n < 0 && errno == EAGAIN {
                var p = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                _ = poll(&p, 1, 1000)
            } else {
                return
            }
        }
    }

    private final class Thread: @unchecked Sendable {  // started once, then owned by its pthread
        let sink: BatchedSink
        init(sink: BatchedSink) { self.sink = sink }
        func start() {
            var t = pthread_t()
            let box = Unmanaged.passRetained(self)
            let r = pthread_create(&t, nil, { raw in
                let me = Unmanaged<Thread>.fromOpaque(raw!).takeRetainedValue()
                me.sink.run()
                return nil
            }, box.toOpaque())
            precondition(r == 0, "pthread_create failed")
            pthread_detach(t)
        }
    }
}

extension Logger {
    /// This logger's level (shared: a reload changes both), writing through `sink`.
    public func batched(_ sink: BatchedSink) -> Logger {
        Logger(sharing: self) { line in sink.append(line) }
    }
}
