// LoopThread: an event loop that runs on a pthread of its own.
import Glibc

/// An event loop on a thread of its own.
public final class LoopThread: @unchecked Sendable {  // `thread` is touched by start/stop on the main thread only
    private let loop: EventLoop
    private var thread: pthread_t?

    public init(_ loop: EventLoop) { self.loop = loop }

    public func start() {
        let box = Unmanaged.passRetained(LoopBox(loop))
        var t = pthread_t()
        let r = pthread_create(&t, nil, { raw in
            let box = Unmanaged<LoopBox>.fromOpaque(raw!).takeRetainedValue()
            try? box.loop.run()
            return nil
        }, box.toOpaque())
        precondition(r == 0, "pthread_create failed")
        thread = t
    }

    public func stop() {
        loop.stop()
        if let thread { pthread_join(thread, nil) }
        thread = nil
    }
}

private final class LoopBox: Sendable {
    let loop: EventLoop
    init(_ loop: EventLoop) { self.loop = loop }
}
