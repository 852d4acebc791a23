// Supervisor: a pool of sandboxed workers per tenant — spawn on demand, reuse, reap when
// idle, recycle, kill at the timeout, replace crashed workers with backoff, and stop all.
// Streamed bodies pass through in DATA frames, as fast as the slower side takes them.
// Confined to one event loop: call everything on that loop's thread.
import EventLoop
import Glibc
import Log
import Posix
import Wire

public final class Supervisor {
    private let loop: EventLoop
    private var settings: SupervisorSettings
    /// Bumped by `reconfigure`: workers of an older generation take no new request.
    private var generation = 0
    private let log: Logger
    private let devNull: FileDescriptor
    private var pools: [String: Pool] = [:]
    private var nextRequestID: UInt64 = 0
    private var stopping = false
    private var stopped: (() -> Void)?
    private var zygote: Zygote?
    private var zygoteRetryAt: UInt64 = 0
    public private(set) var counters = SupervisorCounters()
    /// Told every nanosecond of CPU time a tenant's workers used, from the kernel, on the
    /// supervisor's loop: at the end of each loop turn that carried answers of a worker
    /// (its time since the previous read) and when a worker exits (what its rusage has beyond that: threads, children, the
    /// time after its last answer). Metering and the compute quota add these up.
    public var onCPU: ((String, UInt64) -> Void)?
    private var cpuDirty: [ObjectIdentifier: WorkerProcess] = [:]
    private var cpuScheduled = false

    /// A request waiting for a worker of its tenant.
    final class Pending {
        let ticket: UInt64
        let task: String
        let body: [UInt8]
        let upload: ByteChannel?
        let download: ByteChannel?
        let completion: WorkerCompletion
        /// A queued request waits at most request_timeout for a worker (loop clock).
        var deadline: UInt64 = .max

        init(ticket: UInt64, task: String, body: [UInt8], upload: ByteChannel?, download: ByteChannel?,
             completion: @escaping WorkerCompletion) {
            self.ticket = ticket
            self.task = task
            self.body = body
            self.upload = upload
            self.download = download
            self.completion = completion
        }

        /// A streamed request has its worker to itself.
        var streams: Bool { upload != nil || download != nil }
    }

    /// One tenant's workers and queue.
    final class Pool {
        let tenant: TenantIdentity
        var workers: [WorkerProcess] = []
        var queue: [Pending] = []
        var consecutiveFailures = 0
        var throttledUntil: UInt64 = 0
        var throttleTimer: LoopToken?
        /// Waiting for all workers to be gone (stopTenant).
        var whenEmpty: [() -> Void] = []

        init(tenant: TenantIdentity) { self.tenant = tenant }

        var starting: Int { workers.count { $0.state == .starting } }
    }

    public init(loop: EventLoop, settings: SupervisorSettings, log: Logger) throws(Errno) {
        self.loop = loop
        self.settings = settings
        self.log = log
        devNull = try Posix.open("/dev/null", O_RDWR)
        scheduleSweep()
    }

    // MARK: Deadlines

    /// Request, queue and idle deadlines are checked by a sweep a few times per shortest
    /// timeout, not by a timer per request: requests are answered in order, so only the
    /// oldest one in each worker and in each queue can be due.
    private func scheduleSweep() {
        let shortest = min(EventLoop.nanoseconds(settings.requestTimeout), EventLoop.nanoseconds(settings.idleTimeout))
        let interval = min(max(shortest / 8, 5_000_000), 250_000_000)
        loop.schedule(at: loop.now &+ interval) { [weak self] in
            guard let self else { return }
            self.sweep(now: self.loop.now)
            self.scheduleSweep()
        }
    }

    private func sweep(now: UInt64) {
        for pool in Array(pools.values) {
            while let first = pool.queue.first, first.deadline <= now {
                pool.queue.removeFirst().completion(.failure(.overloaded(retryAfterSeconds: 1)))
            }
            for worker in pool.workers {
                if let oldest = worker.inflight.first, oldest.deadline <= now, oldest.waitingForReader {
                    // Its client took none of the streamed body for stream_stall_timeout: the
                    // stream is cancelled (the client's connection closes), the worker stays.
                    log.info("worker_stream_stalled", [("tenant", .string(worker.tenant.id)), ("pid", .of(worker.pid))])
                    stopStream(worker, oldest.ticket)
                } else if let oldest = worker.inflight.first, oldest.deadline <= now {
                    counters.killedForTimeout += 1
                    log.warning("worker_request_timeout", [("tenant", .string(worker.tenant.id)), ("pid", .of(worker.pid))])
                    worker.kill()
                    // Requests behind it in the same worker waited as long: they time out with it.
                    failInflight(worker, .timedOut)
                    worker.state = .draining
                } else if worker.state == .idle, now &- worker.idleSince >= EventLoop.nanoseconds(settings.idleTimeout) {
                    counters.reapedIdle += 1
                    retire(worker, reason: .idle)
                }
            }
        }
    }

    // MARK: Requests

    /// Runs `task` with `body` in one of `tenant`'s workers and calls `completion` exactly
    /// once, on the loop thread. With `upload`, the request body goes on with what that
    /// channel yields; with `download`, a response the worker streams is handed over at its
    /// head (`streamed`) and its body written into that channel.
    @discardableResult
    public func submit(tenant: TenantIdentity, task: String, body: [UInt8], upload: ByteChannel? = nil,
                       download: ByteChannel? = nil, completion: @escaping WorkerCompletion) -> RequestTicket {
        loop.assertInLoop()
        nextRequestID += 1
        let ticket = RequestTicket(tenant: tenant.id, id: nextRequestID)
        guard TenantIdentity.isValid(id: tenant.id) else {
            completion(.failure(.invalidTenant))
            return ticket
        }
        guard !stopping else {
            completion(.failure(.shuttingDown))
            return ticket
        }
        let pool = pool(for: tenant)
        let pending = Pending(ticket: ticket.id, task: task, body: body, upload: upload, download: download,
                              completion: completion)

        if let worker = pool.workers.first(where: { $0.state == .idle && accepts($0) }) {
            start(pending, on: worker, in: pool)
            return ticket
        }
        let live = pool.workers.contains { $0.state != .draining }
        if !live, pool.throttledUntil > loop.now {
            completion(.failure(.unavailable(retryAfterSeconds: retryAfter(until: pool.throttledUntil),
                                             reason: "worker restarts for this tenant are throttled after repeated crashes")))
            return ticket
        }
        // No idle worker and the pool is at its cap: pipeline onto the least loaded one.
        if pool.workers.count >= settings.maxWorkersPerTenant, pool.queue.isEmpty, !pending.streams, let worker = leastLoaded(pool) {
            start(pending, on: worker, in: pool)
            return ticket
        }
        // Room to wait: the queue, plus one place for each worker that is or can be started.
        let startable = max(0, settings.maxWorkersPerTenant - pool.workers.count) + pool.starting
        guard pool.queue.count < settings.queueLimit + startable else {
            completion(.failure(.overloaded(retryAfterSeconds: 1)))
            return ticket
        }
        pending.deadline = loop.now &+ EventLoop.nanoseconds(settings.requestTimeout)
        pool.queue.append(pending)
        dispatch(pool)
        return ticket
    }

    /// Abandons a request: a queued one is dropped, a running one gets CANCEL. Its
    /// completion still runs, with `.cancelled` or whatever the worker answers.
    public func cancel(_ ticket: RequestTicket) {
        loop.assertInLoop()
        guard let pool = pools[ticket.tenant] else { return }
        if let pending = pool.queue.first(where: { $0.ticket == ticket.id }) {
            dequeue(pending, from: pool)?.completion(.failure(.cancelled))
        } else if let worker = pool.workers.first(where: { $0.inflight.contains { $0.ticket == ticket.id } }) {
            sendCancel(worker, ticket.id)
        }
    }

    private func sendCancel(_ worker: WorkerProcess, _ ticket: UInt64) {
        guard let i = worker.inflight.firstIndex(where: { $0.ticket == ticket }), !worker.inflight[i].cancelSent else { return }
        worker.inflight[i].cancelSent = true
        // What the worker would still send of a streamed answer is dropped, not waited for.
        worker.inflight[i].download?.cancel()
        worker.send(.cancel, requestID: ticket)
    }

    /// A streamed response nobody will read: CANCEL, and its socket read again (what still
    /// comes is dropped) so the worker, blocked on a full socket, gets to see the CANCEL. It
    /// has request_timeout to stop.
    private func stopStream(_ worker: WorkerProcess, _ ticket: UInt64) {
        guard let i = worker.inflight.firstIndex(where: { $0.ticket == ticket }) else { return worker.resumeReading() }
        sendCancel(worker, ticket)
        worker.inflight[i].waitingForReader = false
        worker.inflight[i].deadline = loop.now &+ EventLoop.nanoseconds(settings.requestTimeout)
        worker.resumeReading()
    }

    // MARK: Lifecycle

    /// Stops every worker of `tenantID` (tenant suspended or deleted): queued requests
    /// fail with `.shuttingDown`, running ones finish first (up to the exit grace).
    /// `stopped` runs once none of its workers is left.
    public func stopTenant(_ tenantID: String, stopped: (() -> Void)? = nil) {
        loop.assertInLoop()
        guard let pool = pools[tenantID] else {
            stopped?()
            return
        }
        if let stopped { pool.whenEmpty.append(stopped) }
        for pending in pool.queue { dequeue(pending, from: pool)?.completion(.failure(.shuttingDown)) }
        for worker in pool.workers where worker.state == .idle || worker.state == .starting { retire(worker, reason: .shutdown) }
        for worker in pool.workers where worker.state == .busy {
            worker.expectingExit = true
            loop.schedule(after: settings.exitGrace) { [weak worker] in worker?.kill() }
        }
        notifyIfEmpty(pool)
    }

    private func notifyIfEmpty(_ pool: Pool) {
        guard pool.workers.isEmpty, !pool.whenEmpty.isEmpty else { return }
        let callbacks = pool.whenEmpty
        pool.whenEmpty.removeAll()
        for c in callbacks { c() }
    }

    /// Stops accepting work, lets running requests finish, tells every worker GOAWAY, kills
    /// whatever is still alive after `deadline`, and calls `done` once all are reaped.
    public func shutdown(deadline: Duration, _ done: @escaping () -> Void) {
        loop.assertInLoop()
        stopping = true
        stopped = done
        for pool in pools.values {
            for pending in pool.queue { dequeue(pending, from: pool)?.completion(.failure(.shuttingDown)) }
            pool.throttleTimer.map(loop.cancelTimer)
            for worker in pool.workers {
                worker.expectingExit = true
                if worker.state == .idle || worker.state == .starting { retire(worker, reason: .shutdown) }
            }
        }
        zygote?.stop()
        loop.schedule(after: deadline) { [weak self] in
            guard let self else { return }
            for pool in self.pools.values {
                for worker in pool.workers { worker.kill() }
            }
        }
        finishShutdownIfDone()
    }

    /// New settings (a reload). Pool sizes, timeouts and limits apply at once. When what
    /// workers are started with changes (their rlimits, the frame size), the running ones
    /// are replaced: idle workers go now, busy ones once they have answered what they
    /// hold, starting ones once ready; otherwise they keep running.
    public func reconfigure(_ new: SupervisorSettings) {
        loop.assertInLoop()
        let replace = !new.startsWorkersLike(settings)
        settings = new
        if replace { generation += 1 }
        for pool in pools.values {
            // Idle workers that no longer take requests (older, or past a lowered max_requests).
            for worker in pool.workers where worker.state == .idle && !accepts(worker) {
                counters.recycled += 1
                retire(worker, reason: .recycle)
            }
            dispatch(pool)
        }
    }

    public var liveWorkers: Int { pools.values.reduce(0) { $0 + $1.workers.count } }

    /// The pools with what /proc says of each worker (CPU time, resident memory): for
    /// `bulkheadctl workers list`, not for the request path.
    public func detailedSnapshot() -> [PoolSnapshot] {
        snapshot().map { pool in
            let workers = pools[pool.tenant]?.workers ?? []
            return PoolSnapshot(tenant: pool.tenant, workers: pool.workers.map { info in
                var i = info
                if let w = workers.first(where: { $0.pid == info.pid }) {
                    i.cpuSeconds = Double(w.cpuNanoseconds() ?? w.cpuAccounted) / 1e9
                    i.rssKiB = w.residentKiB()
                }
                return i
            }, queued: pool.queued, consecutiveFailures: pool.consecutiveFailures, throttledUntil: pool.throttledUntil)
        }
    }

    /// Kills (SIGKILL) the worker with pid `target`, or every worker of the tenant
    /// `target`: what they hold fails with 502, and they are replaced on demand. The
    /// number killed.
    public func kill(_ target: String) -> Int {
        loop.assertInLoop()
        // A tenant id may be all digits too: a live worker's pid wins, then a tenant.
        var victims = Int32(target).map { pid in pools.values.flatMap(\.workers).filter { $0.pid == pid } } ?? []
        if victims.isEmpty { victims = pools[target]?.workers ?? [] }
        for w in victims {
            log.warning("worker_killed", [("tenant", .string(w.tenant.id)), ("pid", .of(w.pid)), ("by", .string("bulkheadctl"))])
            w.kill()
            failInflight(w, .crashed("the worker was killed by an administrator"))
            w.state = .draining
        }
        return victims.count
    }

    public func snapshot() -> [PoolSnapshot] {
        loop.assertInLoop()
        return pools.values.sorted { $0.tenant.id < $1.tenant.id }.map { pool in
            PoolSnapshot(
                tenant: pool.tenant.id,
                workers: pool.workers.map { w in
                    var info = PoolSnapshot.WorkerInfo(pid: w.pid, state: w.state.rawValue, requestsServed: w.served,
                                                       inFlight: w.inflight.count)
                    let now = loop.now
                    info.ageSeconds = Double(now &- w.startedAt) / 1e9
                    if let oldest = w.inflight.first { info.requestAgeSeconds = Double(now &- oldest.startedAt) / 1e9 }
                    return info
                },
                queued: pool.queue.count, consecutiveFailures: pool.consecutiveFailures,
                throttledUntil: pool.throttledUntil > loop.now ? pool.throttledUntil : 0)
        }
    }

    // MARK: Scheduling

    private func pool(for tenant: TenantIdentity) -> Pool {
        if let p = pools[tenant.id] {
            // A tenant's ids never change while it exists; a mismatch is a caller bug.
            precondition(p.tenant == tenant, "tenant \(tenant.id) submitted with different ids")
            return p
        }
        let p = Pool(tenant: tenant)
        pools[tenant.id] = p
        return p
    }

    /// Hands queued requests to idle workers and starts workers for the rest, within the
    /// pool's cap and its crash-loop throttle.
    private func dispatch(_ pool: Pool) {
        while !pool.queue.isEmpty, let worker = pool.workers.first(where: { $0.state == .idle && accepts($0) }) {
            assignQueued(pool, to: worker)
        }
        while pool.queue.count > pool.starting, pool.workers.count < settings.maxWorkersPerTenant, !stopping {
            let now = loop.now
            if pool.throttledUntil > now {
                if pool.throttleTimer == nil {
                    pool.throttleTimer = loop.schedule(at: pool.throttledUntil) { [weak self, weak pool] in
                        guard let self, let pool else { return }
                        pool.throttleTimer = nil
                        self.dispatch(pool)
                    }
                }
                break
            }
            guard spawn(in: pool) else { break }
        }
        // What no idle or starting worker will take is pipelined onto busy ones; a streamed
        // request waits for a worker of its own.
        while pool.queue.count > pool.starting, !pool.queue[0].streams, let worker = leastLoaded(pool) {
            assignQueued(pool, to: worker)
        }
    }

    private func assignQueued(_ pool: Pool, to worker: WorkerProcess) {
        start(pool.queue.removeFirst(), on: worker, in: pool)
    }

    /// A worker may take another request: ready, not going away, below the pipeline depth
    /// and below its recycling count.
    private func accepts(_ w: WorkerProcess) -> Bool {
        (w.state == .idle || w.state == .busy) && !w.expectingExit && w.inflight.count < settings.pipelineDepth && !w.streaming
            && w.generation == generation
            && (settings.maxRequestsPerWorker == 0 || w.assigned < settings.maxRequestsPerWorker)
    }

    private func leastLoaded(_ pool: Pool) -> WorkerProcess? {
        var best: WorkerProcess?
        for w in pool.workers where accepts(w) && (best == nil || w.inflight.count < best!.inflight.count) { best = w }
        return best
    }

    private func spawn(in pool: Pool) -> Bool {
        let volume: String
        do {
            volume = try Volumes.ensure(tenant: pool.tenant, root: settings.volumesRoot, prefix: settings.volumePrefix,
                                        create: settings.autoCreateVolumes)
        } catch {
            log.error("volume_unavailable", [("tenant", .string(pool.tenant.id)), ("reason", .string(error.description))])
            failQueued(pool, .unavailable(retryAfterSeconds: 60, reason: error.description))
            return false
        }
        do {
            let worker = try WorkerProcess.spawn(tenant: pool.tenant, volume: volume, settings: settings,
                                                 zygote: currentZygote(), devNull: devNull, loop: loop, owner: self,
                                                 stderrBudget: stderrBudget(pool.tenant.id))
            worker.generation = generation
            counters.spawned += 1
            worker.lifecycleTimer = loop.schedule(after: settings.spawnTimeout) { [weak self, weak worker] in
                guard let self, let worker, worker.state == .starting else { return }
                self.log.error("worker_spawn_timeout", [("tenant", .string(worker.tenant.id)), ("pid", .of(worker.pid))])
                worker.kill()
                worker.expectingExit = false  // counts as a failed start
            }
            pool.workers.append(worker)
            log.debug("worker_spawned", [("tenant", .string(pool.tenant.id)), ("pid", .of(worker.pid))])
            return true
        } catch {
            counters.spawnFailures += 1
            log.error("worker_spawn_failed", [("tenant", .string(pool.tenant.id)), ("reason", .string(error.description))])
            recordFailure(pool)
            if !pool.workers.contains(where: { $0.state != .draining }) {
                failQueued(pool, .unavailable(retryAfterSeconds: retryAfter(until: pool.throttledUntil), reason: "cannot start a worker"))
            }
            return false
        }
    }

    /// The spawner, started on first use and again after it died (not more than once a second).
    private func currentZygote() -> Zygote? {
        guard settings.useSpawner, !stopping else { return nil }
        if let zygote { return zygote }
        guard loop.now >= zygoteRetryAt else { return nil }
        do {
            let z = try Zygote(executable: settings.executable, seccompPolicyFile: settings.seccompPolicyFile,
                               devNull: devNull, loop: loop) { [weak self] in
                self?.zygoteExited()
            }
            zygote = z
            log.info("spawner_started", [("pid", .of(z.pid)), ("executable", .string(settings.executable))])
            return z
        } catch {
            zygoteRetryAt = loop.now + 10_000_000_000
            log.error("spawner_start_failed", [("reason", .string(error.description))])
            return nil
        }
    }

    func zygoteFailed(_ z: Zygote, _ error: Errno) {
        log.error("spawner_failed", [("pid", .of(z.pid)), ("reason", .string(error.description))])
        z.stop()
    }

    private func zygoteExited() {
        if !stopping { log.warning("spawner_exited", [("pid", .of(zygote?.pid ?? 0))]) }
        zygote = nil
        zygoteRetryAt = loop.now + 1_000_000_000
        finishShutdownIfDone()
    }

    private func start(_ pending: Pending, on worker: WorkerProcess, in pool: Pool) {
        worker.lifecycleTimer.map(loop.cancelTimer)
        worker.lifecycleTimer = nil
        worker.state = .busy
        worker.assigned += 1
        let deadline = loop.now &+ EventLoop.nanoseconds(settings.requestTimeout)
        worker.inflight.append(.init(ticket: pending.ticket, completion: pending.completion, deadline: deadline,
                                     upload: pending.upload, download: pending.download, startedAt: loop.now,
                                     streamed: pending.streams))
        worker.send(.request(Request(task: pending.task, body: pending.body, streamed: pending.upload != nil)),
                    requestID: pending.ticket)
        if let upload = pending.upload {
            let ticket = pending.ticket
            upload.onReadable(on: loop) { [weak self, weak worker] in
                if let self, let worker { self.pumpUpload(worker, ticket) }
            }
            pumpUpload(worker, ticket)
        }
        if let download = pending.download {
            download.onWritable(on: loop) { [weak self, weak worker] in
                if let self, let worker { self.downloadRoom(worker, pending.ticket) }
            }
        }
    }

    // MARK: Streamed bodies

    /// Largest DATA frame sent to a worker.
    static let dataFrameBytes = 64 * 1024

    /// Forwards the upload's bytes to the worker while its socket takes them (at most about
    /// a megabyte queued); resumes when the client sends more or the socket drains. The
    /// request's clock stops while the client is awaited (a slow client is the HTTP side's
    /// body_timeout to judge) and runs again from the moment the worker has work.
    private func pumpUpload(_ worker: WorkerProcess, _ ticket: UInt64) {
        guard let i = worker.inflight.firstIndex(where: { $0.ticket == ticket }), let upload = worker.inflight[i].upload else { return }
        let timeout = EventLoop.nanoseconds(settings.requestTimeout)
        while worker.outboxBytes < 1 << 20 {
            switch upload.read() {
            case .bytes(let bytes):
                var start = 0
                while start < bytes.count {
                    let end = min(bytes.count, start + Self.dataFrameBytes)
                    worker.send(.data(Array(bytes[start..<end]), more: true), requestID: ticket)
                    start = end
                }
                worker.inflight[i].deadline = loop.now &+ timeout
            case .end:
                worker.send(.data([], more: false), requestID: ticket)
                worker.inflight[i].upload = nil
                worker.inflight[i].deadline = loop.now &+ timeout
                return
            case .failed:
                // The client went away mid-body: the worker drops what it has.
                worker.inflight[i].upload = nil
                worker.inflight[i].deadline = loop.now &+ timeout
                sendCancel(worker, ticket)
                return
            case .empty:
                // Waiting for the client: the clock stops once the worker has taken what
                // it was sent (looked at again when the socket has taken it).
                if worker.outboxBytes == 0 {
                    worker.inflight[i].deadline = .max
                } else {
                    worker.whenFlushed = { [weak self, weak worker] in
                        if let self, let worker { self.pumpUpload(worker, ticket) }
                    }
                }
                return
            }
        }
        worker.whenFlushed = { [weak self, weak worker] in
            if let self, let worker { self.pumpUpload(worker, ticket) }
        }
    }

    /// A streamed response's consumer has room again (or went away: then the worker is told
    /// to stop, and what it still sends is read and dropped).
    private func downloadRoom(_ worker: WorkerProcess, _ ticket: UInt64) {
        guard let i = worker.inflight.firstIndex(where: { $0.ticket == ticket }), let download = worker.inflight[i].download else {
            return worker.resumeReading()  // that request is over; the socket must not stay paused
        }
        if download.isCancelled { return stopStream(worker, ticket) }
        worker.inflight[i].waitingForReader = false
        worker.inflight[i].deadline = loop.now &+ EventLoop.nanoseconds(settings.requestTimeout)
        worker.resumeReading()
    }

    /// A piece of the streamed response to the oldest request on `worker`. Counted against
    /// the length its head announced (the response's Content-Length): a byte more is a
    /// protocol violation; an end short of it fails the stream, so the client's connection
    /// closes instead of taking the body for whole.
    private func received(_ bytes: [UInt8], more: Bool, from worker: WorkerProcess, in pool: Pool) {
        guard let download = worker.inflight[0].download else { return }
        let expected = download.expectedLength
        if let expected, download.totalBytes + bytes.count > expected, !download.isCancelled {
            return protocolViolation(worker, "a streamed response longer than the \(expected) bytes it announced")
        }
        let room = download.write(bytes)
        guard more else {
            if let expected, download.totalBytes < expected, !download.isCancelled {
                log.warning("worker_stream_short", [("tenant", .string(worker.tenant.id)), ("pid", .of(worker.pid)),
                                                    ("bytes", .of(download.totalBytes)), ("announced", .of(expected))])
            }
            // Whole: the channel holds the rest for the client, and the worker is free.
            if download.isCancelled || expected.map({ download.totalBytes < $0 }) == true { download.fail() } else { download.finish() }
            worker.inflight[0].download = nil
            return finish(worker, in: pool, with: nil)
        }
        // Cancelled: what comes is dropped, and the deadline set with CANCEL stands.
        guard !download.isCancelled else { return }
        if room {
            worker.inflight[0].waitingForReader = false
            worker.inflight[0].deadline = loop.now &+ EventLoop.nanoseconds(settings.requestTimeout)
        } else {
            // The client reads slower than the worker writes: wait for it, with the stall
            // bound instead of request_timeout.
            worker.inflight[0].waitingForReader = true
            worker.inflight[0].deadline = loop.now &+ EventLoop.nanoseconds(settings.streamStallTimeout)
            worker.pauseReading()
        }
    }

    /// The oldest request in flight on `worker` is answered (`result` nil: its streamed
    /// response has ended).
    private func finish(_ worker: WorkerProcess, in pool: Pool, with result: Result<Response, WorkerFailure>?) {
        guard !worker.inflight.isEmpty else { return }
        accountCPUSoon(worker)
        let done = worker.inflight.removeFirst()
        // An answer before the whole body was sent (a refusal): the rest is not wanted.
        done.upload?.cancel()
        if result != nil { done.download?.fail() }
        worker.served += 1
        pool.consecutiveFailures = 0
        if worker.inflight.isEmpty {
            if stopping || worker.expectingExit {
                retire(worker, reason: .shutdown)
            } else if (settings.maxRequestsPerWorker > 0 && worker.assigned >= settings.maxRequestsPerWorker)
                        || worker.generation != generation {
                counters.recycled += 1
                retire(worker, reason: .recycle)
            } else {
                worker.state = .idle
                worker.idleSince = loop.now
            }
        }
        if let result { done.completion?(result) }
        dispatch(pool)
    }

    /// GOAWAY, then a kill if it has not exited within the grace period.
    private func retire(_ worker: WorkerProcess, reason: GoAway.Reason) {
        worker.lifecycleTimer.map(loop.cancelTimer)
        worker.expectingExit = true
        if worker.state == .starting {
            worker.kill()
        } else {
            worker.send(.goaway(GoAway(reason: reason)), requestID: 0)
        }
        worker.state = .draining
        worker.lifecycleTimer = loop.schedule(after: settings.exitGrace) { [weak worker] in worker?.kill() }
    }

    private func recordFailure(_ pool: Pool) {
        pool.consecutiveFailures += 1
        // The first failure is replaced at once; repeated ones back off exponentially.
        guard pool.consecutiveFailures >= 2 else { return }
        let base = EventLoop.nanoseconds(settings.restartBackoffBase)
        let cap = EventLoop.nanoseconds(settings.restartBackoffMax)
        let shift = UInt64(min(pool.consecutiveFailures - 2, 32))
        let (scaled, overflow) = base.multipliedReportingOverflow(by: 1 << shift)
        pool.throttledUntil = loop.now &+ (overflow ? cap : min(scaled, cap))
        log.warning("worker_restart_throttled", [("tenant", .string(pool.tenant.id)),
                                                 ("failures", .of(pool.consecutiveFailures)),
                                                 ("delay_ms", .of((pool.throttledUntil - loop.now) / 1_000_000))])
    }

    private func failQueued(_ pool: Pool, _ failure: WorkerFailure) {
        for pending in pool.queue { dequeue(pending, from: pool)?.completion(.failure(failure)) }
    }

    private func dequeue(_ pending: Pending, from pool: Pool) -> Pending? {
        guard let i = pool.queue.firstIndex(where: { $0 === pending }) else { return nil }
        pool.queue.remove(at: i)
        return pending
    }

    private func retryAfter(until deadline: UInt64) -> Int {
        let now = loop.now
        guard deadline > now else { return 1 }
        return Int((deadline - now + 999_999_999) / 1_000_000_000)
    }

    private func finishShutdownIfDone() {
        guard stopping, liveWorkers == 0, zygote == nil, let done = stopped else { return }
        stopped = nil
        done()
    }

    // MARK: Worker events (called by WorkerProcess)

    func worker(_ worker: WorkerProcess, said message: Message, requestID: UInt64) {
        guard let pool = pools[worker.tenant.id] else { return }
        switch (worker.state, message) {
        case (.starting, .hello(let hello)):
            guard let version = Hello.negotiate(local: Wire.supportedVersions, remote: hello) else {
                worker.send(.error(ErrorMessage(code: .versionUnsupported, message: "no common protocol version")), requestID: 0)
                protocolViolation(worker, "no common protocol version (worker offers \(hello.minVersion)...\(hello.maxVersion))")
                return
            }
            worker.send(.hello(Hello(minVersion: version, maxVersion: version, pid: UInt32(getpid()), agent: "bulkheadd")),
                        requestID: 0)
            worker.lifecycleTimer.map(loop.cancelTimer)
            worker.lifecycleTimer = nil
            worker.state = .idle
            worker.idleSince = loop.now
            worker.wasReady = true
            log.debug("worker_ready", [("tenant", .string(worker.tenant.id)), ("pid", .of(worker.pid))])
            if stopping {
                retire(worker, reason: .shutdown)
            } else if worker.generation != generation {
                retire(worker, reason: .recycle)  // started before a reload
                dispatch(pool)
            } else {
                dispatch(pool)
            }
        case (.busy, .response(let response)) where requestID == worker.inflight.first?.ticket && !worker.inflight[0].responding:
            guard response.streamed else { return finish(worker, in: pool, with: .success(response)) }
            guard worker.inflight[0].download != nil, worker.inflight[0].upload == nil else {
                return protocolViolation(worker, "a streamed response to a request that cannot take one")
            }
            worker.inflight[0].responding = true
            let completion = worker.inflight[0].completion
            worker.inflight[0].completion = nil
            completion?(.success(response))
        case (.busy, .data(let bytes, let more)) where requestID == worker.inflight.first?.ticket && worker.inflight[0].responding:
            received(bytes, more: more, from: worker, in: pool)
        case (.busy, .error(let error)) where requestID == worker.inflight.first?.ticket:
            // Mid-stream, the consumer already has the head: its channel fails instead.
            if worker.inflight[0].responding { worker.inflight[0].download?.fail() }
            finish(worker, in: pool, with: .failure(error.code == .cancelled ? .cancelled : .task(error)))
        case (_, .pong):
            break
        case (.draining, .response), (.draining, .error), (.draining, .data):
            break  // answer to a request that timed out or was cancelled; nobody waits
        default:
            protocolViolation(worker, "unexpected frame in state \(worker.state.rawValue): \(message)")
        }
    }

    private func protocolViolation(_ worker: WorkerProcess, _ reason: String) {
        log.error("worker_protocol_violation", [("tenant", .string(worker.tenant.id)), ("pid", .of(worker.pid)),
                                                ("reason", .string(reason))])
        worker.kill()
        worker.expectingExit = false  // a broken worker counts towards the crash loop
        failInflight(worker, .crashed("the worker broke the protocol"))
        worker.state = .draining
    }

    func worker(_ worker: WorkerProcess, lost reason: String, expected: Bool) {
        if !expected && worker.wasReady {
            log.warning("worker_connection_lost", [("tenant", .string(worker.tenant.id)), ("pid", .of(worker.pid)),
                                                   ("reason", .string(reason))])
        }
        failInflight(worker, .crashed("the worker's connection was lost"))
        worker.state = .draining
    }

    /// Each tenant's stderr allowance (StderrBudget), kept while it has workers or
    /// suppressed lines not yet reported.
    private var stderrBudgets: [String: StderrBudget] = [:]

    private func stderrBudget(_ tenant: String) -> StderrBudget {
        if let b = stderrBudgets[tenant] { return b }
        let b = StderrBudget(now: loop.now)
        stderrBudgets[tenant] = b
        return b
    }

    /// Lines a worker wrote to stderr: logged, and those over its tenant's budget counted
    /// and reported once a second, so a noisy tenant cannot flood the journal.
    func worker(_ worker: WorkerProcess, wroteStderr lines: [String], suppressed: Int) {
        let tenant = worker.tenant.id
        for line in lines {
            log.info("worker_stderr", [("tenant", .string(tenant)), ("pid", .of(worker.pid)), ("line", .string(line))])
        }
        guard suppressed > 0 else { return }
        if worker.stderrBudget.suppressed == 0 {
            loop.schedule(after: .seconds(1)) { [weak self] in self?.reportSuppressed(tenant) }
        }
        worker.stderrBudget.suppressed += suppressed
    }

    /// A worker's tenant is out of stderr budget: its stderr is read again once there is a
    /// piece's worth (one timer per tenant).
    func stderrWaits(_ worker: WorkerProcess) {
        let budget = worker.stderrBudget
        budget.waiting.append(worker)
        guard budget.resumeTimer == nil else { return }
        let delay = budget.nanoseconds(untilBytes: WorkerProcess.stderrReadBytes, now: loop.now)
        budget.resumeTimer = loop.schedule(at: loop.now &+ delay) { [weak budget] in
            guard let budget else { return }
            budget.resumeTimer = nil
            let waiting = budget.waiting
            budget.waiting.removeAll()
            for w in waiting { w.resumeStderr() }
        }
    }

    private func reportSuppressed(_ tenant: String) {
        guard let b = stderrBudgets[tenant], b.suppressed > 0 else { return }
        log.warning("worker_stderr_suppressed", [("tenant", .string(tenant)), ("lines", .of(b.suppressed)),
                                                 ("reason", .string("over \(Int(StderrBudget.linesPerSecond)) lines or \(Int(StderrBudget.bytesPerSecond) / 1024) KiB a second"))])
        b.suppressed = 0
        if pools[tenant] == nil { stderrBudgets[tenant] = nil }
    }

    func worker(_ worker: WorkerProcess, exited status: ExitStatus) {
        counters.exited += 1
        // Reconcile with the kernel's total for the whole process.
        let total = status.cpuMicros &* 1000
        if total > worker.cpuAccounted { onCPU?(worker.tenant.id, total - worker.cpuAccounted) }
        worker.cpuAccounted = max(worker.cpuAccounted, total)
        worker.lifecycleTimer.map(loop.cancelTimer)
        let wasStarting = !worker.wasReady
        let crashed = !worker.expectingExit || !(status.isCleanExit || status.kind == .signalled(SIGKILL))
        failInflight(worker, .crashed("the worker \(status)"))
        guard let pool = pools[worker.tenant.id] else { return }
        pool.workers.removeAll { $0 === worker }
        if crashed {
            counters.crashed += 1
            var fields: [(String, LogValue)] = [("tenant", .string(worker.tenant.id)), ("pid", .of(worker.pid)),
                                                ("status", .string(status.description))]
            if !worker.lastStderrLine.isEmpty { fields.append(("reason", .string(worker.lastStderrLine))) }
            log.error(wasStarting ? "worker_start_failed" : "worker_crashed", fields)
            recordFailure(pool)
            if !pool.workers.contains(where: { $0.state != .draining }), pool.throttledUntil > loop.now {
                failQueued(pool, .unavailable(retryAfterSeconds: retryAfter(until: pool.throttledUntil),
                                              reason: wasStarting ? "the worker could not start its sandbox" : "the worker crashed"))
            }
        } else {
            log.debug("worker_exited", [("tenant", .string(worker.tenant.id)), ("pid", .of(worker.pid)),
                                        ("status", .string(status.description))])
        }
        notifyIfEmpty(pool)
        if pool.workers.isEmpty && pool.queue.isEmpty && pool.consecutiveFailures == 0 {
            pools[worker.tenant.id] = nil
            if stderrBudgets[worker.tenant.id]?.suppressed == 0 { stderrBudgets[worker.tenant.id] = nil }
        } else {
            dispatch(pool)
        }
        finishShutdownIfDone()
    }

    /// Every request in flight on `worker` fails (it died, hung or broke the protocol).
    private func failInflight(_ worker: WorkerProcess, _ failure: WorkerFailure) {
        let all = worker.inflight
        worker.inflight.removeAll()
        for r in all {
            r.upload?.cancel()
            r.download?.fail()
            r.completion?(.failure(failure))
        }
    }

    /// Reads the worker's CPU time once at the end of this loop turn, however many of its
    /// answers the turn carried (one procfs read per worker per turn, not per request).
    private func accountCPUSoon(_ worker: WorkerProcess) {
        cpuDirty[ObjectIdentifier(worker)] = worker
        guard !cpuScheduled else { return }
        cpuScheduled = true
        loop.executeSoon { [weak self] in
            guard let self else { return }
            cpuScheduled = false
            let workers = cpuDirty.values
            cpuDirty.removeAll(keepingCapacity: true)
            for w in workers { accountCPU(w) }
        }
    }

    /// The worker's CPU time since it was last accounted, told to `onCPU`.
    private func accountCPU(_ worker: WorkerProcess) {
        guard let now = worker.cpuNanoseconds(), now > worker.cpuAccounted else { return }
        let delta = now - worker.cpuAccounted
        worker.cpuAccounted = now
        onCPU?(worker.tenant.id, delta)
    }
}
