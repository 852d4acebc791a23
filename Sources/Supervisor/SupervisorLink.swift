// SupervisorLink: the supervisor as seen from other threads (HTTP loops, the control
// loop): each call crosses to the supervisor's loop; answers come back through callbacks
// (request path) or a bounded wait (control commands).
import Dispatch
import EventLoop
import Synchronization
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
        ask(0, seconds: seconds) { $0.kill(target) }
    }

    /// The pools with each worker's CPU time and memory (`bulkheadctl workers list`).
    public func detailedSnapshot() -> [PoolSnapshot] { ask([]) { $0.detailedSnapshot() } }

    public func snapshot() -> [PoolSnapshot] { ask([]) { $0.snapshot() } }

    /// `body` on the supervisor's loop, and its answer; `fallback` if none comes within
    /// `seconds` (a late answer is dropped).
    private func ask<T: Sendable>(_ fallback: T, seconds: Int = 5, _ body: @escaping @Sendable (Supervisor) -> T) -> T {
        let done = DispatchSemaphore(value: 0)
        let answer = Answer<T>()
        let b = bound
        b.loop.execute {
            let value = body(b.value)
            answer.value.withLock { $0 = value }
            done.signal()
        }
        guard done.wait(timeout: .now() + .seconds(seconds)) == .success else { return fallback }
        return answer.value.withLock { $0 } ?? fallback
    }
}

private final class Answer<T: Sendable>: Sendable {
    let value = Mutex<T?>(nil)
}
