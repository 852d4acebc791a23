// SupervisorLink: the supervisor as seen from other threads (HTTP loops, the control
// loop): each call crosses to the supervisor's loop; answers come back through callbacks
// (request path) or a bounded wait (control commands).
import Dispatch
import EventLoop
import Wire

public struct SupervisorLink: Sendable {
    private let bound: LoopBound<Supervisor>

    public init(_ supervisor: Supervisor, loop: EventLoop) { bound = LoopBound(supervisor, loop: loop) }

    /// A submitted request, to cancel it later from any thread.
    public final class Ticket: @unchecked Sendable {  // `value` is only touched on the supervisor's loop
        var value: RequestTicket?
        var cancelled = false
    }

    /// Runs the request; `completion` is called once, on the supervisor's loop. `upload`
    /// and `download` stream bodies as `Supervisor.submit` describes.
    public func submit(tenant: TenantIdentity, task: String, body: [UInt8], upload: ByteChannel? = nil,
                       download: ByteChannel? = nil,
                       completion: @escaping @Sendable (Result<Response, WorkerFailure>) -> Void) -> Ticket {
        let ticket = Ticket()
        let b = bound
        // On the supervisor's own loop (requests accepted there) there is no hop at all.
        if b.loop.inLoop {
            ticket.value = b.value.submit(tenant: tenant, task: task, body: body, upload: upload, download: download,
                                          completion: completion)
            return ticket
        }
        b.loop.execute {
            guard !ticket.cancelled else { return completion(.failure(.cancelled)) }
            ticket.value = b.value.submit(tenant: tenant, task: task, body: body, upload: upload, download: download,
                                          completion: completion)
        }
        return ticket
    }

    public func cancel(_ ticket: Ticket) {
        let b = bound
        b.loop.execute {
            ticket.cancelled = true
            if let t = ticket.value { b.value.cancel(t) }
        }
    }

    /// Calls back (on the supervisor's loop) with true once that loop has turned.
    public func ping(_ answer: @escaping @Sendable (Bool) -> Void) {
        bound.loop.execute { answer(true) }
    }

    /// The counters and pools, answered on the supervisor's loop (for `/metrics`, which
    /// must not wait on a loop it may be running on).
    public func metrics(_ answer: @escaping @Sendable (SupervisorCounters, [PoolSnapshot]) -> Void) {
        let b = bound
        b.loop.execute { answer(b.value.counters, b.value.snapshot()) }
    }

    /// New settings after a reload (`Supervisor.reconfigure`), applied on its loop.
    public func reconfigure(_ settings: SupervisorSettings) {
        let b = bound
        b.loop.execute { b.value.reconfigure(settings) }
    }

    /// Stops the tenant's workers; waits until they are gone (at most `seconds`).
    public func stopTenant(_ id: String, seconds: Int = 15) -> Bool {
        let done = DispatchSemaphore(value: 0)
        let b = bound
        b.loop.execute { b.value.stopTenant(id) { done.signal() } }
        return done.wait(timeout: .now() + .seconds(seconds)) == .success
    }

    /// Kills a worker by pid, or all of a tenant's; how many (at most `seconds` to answer).
    public func kill(_ target: String, seconds: Int = 5) -> Int {
        let done = DispatchSemaphore(value: 0)
        let count = Box(0)
        let b = bound
        b.loop.execute {
            count.value = b.value.kill(target)
            done.signal()
        }
        _ = done.wait(timeout: .now() + .seconds(seconds))
        return count.value
    }

    /// The pools with each worker's CPU time and memory (`bulkheadctl workers list`).
    public func detailedSnapshot() -> [PoolSnapshot] {
        let done = DispatchSemaphore(value: 0)
        let result = SnapshotBox()
        let b = bound
        b.loop.execute {
            result.set(b.value.detailedSnapshot())
            done.signal()
        }
        _ = done.wait(timeout: .now() + .seconds(5))
        return result.get()
    }

    public func snapshot() -> [PoolSnapshot] {
        let done = DispatchSemaphore(value: 0)
        let result = SnapshotBox()
        let b = bound
        b.loop.execute {
            result.set(b.value.snapshot())
            done.signal()
        }
        _ = done.wait(timeout: .now() + .seconds(5))
        return result.get()
    }
}

private final class Box<T>: @unchecked Sendable {  // written before the semaphore is signalled, read after
    var value: T
    init(_ v: T) { value = v }
}

private final class SnapshotBox: @unchecked Sendable {  // written before the semaphore is signalled, read after
    private var value: [PoolSnapshot] = []
    func set(_ v: [PoolSnapshot]) { value = v }
    func get() -> [PoolSnapshot] { value }
}
