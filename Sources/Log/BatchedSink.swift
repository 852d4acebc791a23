// The access log's writer: one record per request is too many write(2)s on the request
// path (measured: 6% of the daemon's CPU), so records are gathered in memory and written
// to stderr together by a thread of their own, at most 50 ms later (or as soon as 64 KiB
// wait). Records of one batch stay in order and whole; `flush` writes what is left at exit.
import Dispatch
import Glibc
import Synchronization

public final class BatchedSink: Sendable {
    private let pending = Mutex<[UInt8]>([])
    private let wake = DispatchSemaphore(value: 0)
    private let stopping = Atomic<Bool>(false)
    private let done = DispatchSemaphore(value: 0)
    private let fd: Int32

    public static let maxDelay = DispatchTimeInterval.milliseconds(50)
    static let eagerBytes = 64 * 1024

    public init(fd: Int32 = 2) {
        self.fd = fd
        let thread = Thread(sink: self)
        thread.start()
    }

    public func append(_ line: String) {
        let size = pending.withLock { buffer -> Int in
            buffer += line.utf8
            buffer.append(0x0A)
            return buffer.count
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
        while true {
            _ = wake.wait(timeout: .now() + Self.maxDelay)  // the batching interval, not a synchronisation
            let batch = pending.withLock { buffer -> [UInt8] in
                let out = buffer
                buffer.removeAll(keepingCapacity: true)
                return out
            }
            var offset = 0
            while offset < batch.count {
                let n = batch.withUnsafeBytes { write(fd, $0.baseAddress! + offset, $0.count - offset) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }  // stderr is gone: nothing to do about it
                offset += n
            }
            if stopping.load(ordering: .acquiring) {
                done.signal()
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
