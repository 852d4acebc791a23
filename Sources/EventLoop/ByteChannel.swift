// ByteChannel: a bounded stream of byte chunks from one producer to one consumer, each
// confined to its own event loop (an HTTP connection and the supervisor, say). Bodies
// stream through it: the producer is told to stop when `highWater` bytes wait, and is
// woken on its loop once the consumer has taken half of them; the consumer is woken on
// its loop when something arrives. Nothing else is shared, so a streamed body costs at
// most about `highWater` of memory per hop, whatever its size.
import Synchronization

public final class ByteChannel: Sendable {
    public enum ReadResult: Equatable {
        case bytes([UInt8])
        /// Everything was read and the producer finished.
        case end
        /// The producer gave up (its client went away): the body is incomplete.
        case failed
        /// Nothing yet: the `onReadable` callback runs when there is.
        case empty
    }

    /// A callback confined to `loop`.
    private struct Waker: @unchecked Sendable {  // `fire` only ever runs on `loop`
        let loop: EventLoop
        let fire: () -> Void

        func wake() {
            if loop.inLoop {
                loop.executeSoon(fire)  // never re-entrantly, from inside the other side's call
            } else {
                loop.execute { fire() }
            }
        }
    }

    private struct State {
        var chunks: [[UInt8]] = []
        var head = 0
        var buffered = 0
        var total = 0
        var expected: Int?
        var finished = false
        var failed = false
        var cancelled = false
        var readerWaiting = false
        var writerWaiting = false
        var reader: Waker?
        var writer: Waker?
    }

    private let state = Mutex(State())
    public let highWater: Int

    public init(highWater: Int = 1 << 20) { self.highWater = max(1, highWater) }

    // MARK: Producer

    /// What to run (on `loop`) when there is room again after `write` returned false, or
    /// once the consumer cancelled.
    public func onWritable(on loop: EventLoop, _ fire: @escaping () -> Void) {
        state.withLock { $0.writer = Waker(loop: loop, fire: fire) }
    }

    /// Appends `bytes`. False when the consumer is behind: stop until `onWritable` fires.
    /// After `cancel` the bytes are dropped.
    @discardableResult
    public func write(_ bytes: [UInt8]) -> Bool {
        let (room, wake) = state.withLock { s -> (Bool, Waker?) in
            guard !s.cancelled, !s.finished, !s.failed else { return (true, nil) }
            if !bytes.isEmpty {
                s.chunks.append(bytes)
                s.buffered += bytes.count
                s.total += bytes.count
            }
            let room = s.buffered < highWater
            if !room { s.writerWaiting = true }
            return (room, takeReader(&s))
        }
        wake?.wake()
        return room
    }

    /// The body is complete.
    public func finish() { close { $0.finished = true } }

    /// The body will never be complete (the client went away or broke the framing).
    public func fail() { close { $0.failed = true } }

    /// The consumer cancelled: nothing written is wanted any more.
    public var isCancelled: Bool { state.withLock { $0.cancelled } }

    private func close(_ mark: (inout State) -> Void) {
        let wake = state.withLock { s -> Waker? in
            guard !s.finished, !s.failed else { return nil }
            mark(&s)
            return takeReader(&s)
        }
        wake?.wake()
    }

    private func takeReader(_ s: inout State) -> Waker? {
        guard s.readerWaiting else { return nil }
        s.readerWaiting = false
        return s.reader
    }

    // MARK: Consumer

    /// What to run (on `loop`) when `read` would no longer return `.empty`.
    public func onReadable(on loop: EventLoop, _ fire: @escaping () -> Void) {
        state.withLock { $0.reader = Waker(loop: loop, fire: fire) }
    }

    public func read() -> ReadResult {
        let (result, wake) = state.withLock { s -> (ReadResult, Waker?) in
            if s.head < s.chunks.count {
                let chunk = s.chunks[s.head]
                s.chunks[s.head] = []
                s.head += 1
                s.buffered -= chunk.count
                if s.head == s.chunks.count {
                    s.chunks.removeAll(keepingCapacity: true)
                    s.head = 0
                }
                var wake: Waker?
                if s.writerWaiting && s.buffered <= highWater / 2 {
                    s.writerWaiting = false
                    wake = s.writer
                }
                return (.bytes(chunk), wake)
            }
            if s.failed { return (.failed, nil) }
            if s.finished { return (.end, nil) }
            s.readerWaiting = true
            return (.empty, nil)
        }
        wake?.wake()
        return result
    }

    /// The consumer wants no more: what is buffered is dropped and the producer woken so it
    /// can see `isCancelled`.
    public func cancel() {
        let wake = state.withLock { s -> Waker? in
            guard !s.cancelled else { return nil }
            s.cancelled = true
            s.chunks.removeAll()
            s.head = 0
            s.buffered = 0
            s.writerWaiting = false
            return s.writer
        }
        wake?.wake()
    }

    /// Whether the producer has finished or failed (nothing more will be written).
    public var isClosed: Bool { state.withLock { $0.finished || $0.failed } }

    /// Bytes written so far (for metering), not counting what was written after `cancel`.
    public var totalBytes: Int { state.withLock { $0.total } }

    // MARK: Length

    /// Announces how long the body is (a response's Content-Length), so the producer can
    /// hold what it writes to it: a byte more or less would break the framing downstream.
    public func expect(length: Int) { state.withLock { $0.expected = length } }

    /// The announced length, once `expect` was called.
    public var expectedLength: Int? { state.withLock { $0.expected } }
}
