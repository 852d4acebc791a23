// UsageMeter: what each tenant used, per UTC day (SPEC §8). The request path and the
// supervisor add to in-memory deltas (a lock and a few additions); a thread of its own
// cuts them into a batch every `interval` and adds the batch to SQLite's daily rollups
// in one transaction, with the batch's id, so a retried write never counts twice. A
// kill -9 loses at most the batch not yet written; `flush()` writes everything (SIGTERM).
// Readers get the rollups plus what is not written yet, so counts are exact at once.
// Volumes are measured on another thread, so a slow scan never delays a write.
import CBulkhead
import EventLoop
import Glibc
import Log
import Posix
import Store
import Synchronization

public final class UsageMeter: Sendable {
    private struct Key: Hashable {
        let tenant: String
        let day: String
    }
    private struct Pending {
        var deltas: [Key: UsageRow] = [:]
        /// Cut but not yet written (or a write failed): retried first, under the same id;
        /// `since` is when its oldest delta was counted.
        var cut: [(id: Int64, rows: [UsageRow], since: UInt64)] = []
        /// Monotonic time of the oldest delta in `deltas`; nil when there is none.
        var oldest: UInt64?
        /// Each volume's bytes: the last scan, plus what writes changed since.
        var volumes: [String: Int64] = [:]
        /// Purged tenants (`forget`): nothing of theirs is counted until `track`.
        var forgotten: Set<String> = []
        /// How many `forget`s so far: a scan that began before one is not applied.
        var forgets: UInt64 = 0
        /// Today's date text, formatted once a day rather than once a request.
        var dayNumber: Int64 = .min
        var dayText = ""
        /// Today's totals by tenant, written or not (for `todayUsage`, which reads no SQLite).
        var today: [String: UsageRow] = [:]
    }

    private let store: Store
    private let log: Logger
    private let wallClock: @Sendable () -> Int64
    private let pending = Mutex(Pending())
    private let writer = Mutex(())  // one write at a time: the timer's or flush()'s
    private let loop: EventLoop
    private let thread: LoopThread
    private let interval: Duration
    private let storageInterval: Duration
    private let volumes: @Sendable () -> [(tenant: String, path: String)]
    private let scanLoop: EventLoop
    private let scanThread: LoopThread
    private let stopScan = ScanStop()

    /// - `volumes`: each tenant's volume, measured every `storageInterval` on a thread of
    ///   its own by the walker of CBulkhead (bh_tree_bytes: it opens directories, never a
    ///   file, follows no link and enters no other filesystem).
    /// - `wallClock`: seconds since the epoch (days are UTC days).
    public init(store: Store, log: Logger, interval: Duration = .seconds(1), storageInterval: Duration = .seconds(60),
                volumes: @escaping @Sendable () -> [(tenant: String, path: String)] = { [] },
                wallClock: @escaping @Sendable () -> Int64 = { Int64(time(nil)) }) throws {
        self.store = store
        self.log = log
        self.wallClock = wallClock
        self.interval = interval
        self.storageInterval = storageInterval
        self.volumes = volumes
        loop = try EventLoop()
        thread = LoopThread(loop)
        scanLoop = try EventLoop()
        scanThread = LoopThread(scanLoop)
        let seconds = wallClock(), day = Self.day(seconds)
        let stored = try store.usage(tenant: nil, from: day, to: day)
        pending.withLock { p in
            (p.dayNumber, p.dayText) = (seconds / 86_400, day)
            for row in stored { p.today[row.tenantID] = row }
        }
    }

    public func start() {
        let bound = LoopBound(self, loop: loop)
        loop.execute { bound.value.tick() }
        thread.start()
        let scanner = LoopBound(self, loop: scanLoop)
        scanLoop.execute { scanner.value.measureStorage() }
        scanThread.start()
    }

    /// Stops both threads (a scan in progress ends at its next entry) and writes
    /// everything still in memory.
    public func stop() {
        stopScan.raise()
        scanThread.stop()
        loop.execute {}  // wakes it now rather than at its next timer
        thread.stop()
        flush()
    }

    // MARK: Recording (any thread)

    /// One answered request of `tenant`: 429 counts as rate-limited, other 4xx and 5xx as errors.
    public func request(_ tenant: String, status: Int, bytesIn: Int, bytesOut: Int) {
        add(tenant) { r in
            r.requests += 1
            if status == 429 { r.rateLimited += 1 } else if status >= 400 { r.errors += 1 }
            r.bytesIn += Int64(bytesIn)
            r.bytesOut += Int64(bytesOut)
        }
    }

    /// CPU time of the tenant's workers, from the kernel (the supervisor tells).
    public func cpu(_ tenant: String, nanoseconds: UInt64) {
        add(tenant) { $0.cpuMicros += Int64(nanoseconds / 1000) }
    }

    /// A measurement of the tenant's volume by a scan that began when `forgets` tenants
    /// had been forgotten: dropped if one was since (it may have measured the old volume of
    /// a purged tenant whose id has come back).
    private func storage(_ tenant: String, bytes: Int64, scannedAfter forgets: UInt64) {
        let current = pending.withLock { p -> Bool in
            guard forgets == p.forgets, !p.forgotten.contains(tenant) else { return false }
            p.volumes[tenant] = bytes
            return true
        }
        if current { add(tenant) { $0.storageBytes = bytes } }
    }

    /// A write or delete changed the tenant's volume by `delta` bytes (the worker says by
    /// how much; the next scan corrects any drift).
    public func storageChanged(_ tenant: String, by delta: Int64) {
        let bytes = pending.withLock { p -> Int64? in
            guard !p.forgotten.contains(tenant) else { return nil }
            let b = max(0, p.volumes[tenant, default: 0] + delta)
            p.volumes[tenant] = b
            return b
        }
        if let bytes { add(tenant) { $0.storageBytes = bytes } }
    }

    /// Drops all the tenant's usage not yet written and its storage figure, and counts
    /// nothing more of it (a late answer, a stopped worker's CPU time) until `track`:
    /// `tenant delete --purge`, before it deletes the tenant's usage rows, so that none is
    /// written back. Waits for a write in progress.
    public func forget(_ tenant: String) {
        writer.withLock { _ in
            pending.withLock { p in
                p.forgotten.insert(tenant)
                p.forgets += 1
                p.volumes[tenant] = nil
                p.today[tenant] = nil
                p.deltas = p.deltas.filter { $0.key.tenant != tenant }
                p.cut = p.cut.compactMap { batch in
                    let rows = batch.rows.filter { $0.tenantID != tenant }
                    return rows.isEmpty ? nil : (batch.id, rows, batch.since)
                }
                if p.deltas.isEmpty { p.oldest = nil }
            }
        }
    }

    /// Counts the tenant again after `forget` (a new tenant with the same id).
    public func track(_ tenant: String) {
        pending.withLock { _ = $0.forgotten.remove(tenant) }
    }

    /// The tenant's volume bytes as last measured and changed since.
    public func storageBytes(_ tenant: String) -> Int64 { pending.withLock { $0.volumes[tenant] ?? 0 } }

    private func add(_ tenant: String, _ change: (inout UsageRow) -> Void) {
        let seconds = wallClock()
        let now = Posix.monotonicNanoseconds()
        pending.withLock { p in
            if !p.forgotten.isEmpty && p.forgotten.contains(tenant) { return }
            if seconds / 86_400 != p.dayNumber {
                p.dayNumber = seconds / 86_400
                p.dayText = Self.day(seconds)
                p.today.removeAll()
            }
            let day = p.dayText
            let key = Key(tenant: tenant, day: day)
            // A new row carries the volume's last known size: it did not empty at midnight.
            change(&p.deltas[key, default: UsageRow(tenantID: tenant, day: day, storageBytes: p.volumes[tenant])])
            change(&p.today[tenant, default: UsageRow(tenantID: tenant, day: day, storageBytes: p.volumes[tenant])])
            if p.oldest == nil { p.oldest = now }
        }
    }

    // MARK: Reading

    /// The tenant's rows (all tenants' if nil) with `day` in `from...to`, with what is not
    /// written yet added in, ordered by tenant then day.
    public func usage(tenant: String?, from: String, to: String) throws(StoreError) -> [UsageRow] {
        // Under the writer's lock: a batch is never both in SQLite and still pending here.
        let (stored, unwritten) = try writer.withLock { _ throws(StoreError) in
            (try store.usage(tenant: tenant, from: from, to: to),
             pending.withLock { p in p.cut.flatMap(\.rows) + Array(p.deltas.values) })
        }
        var rows = stored
        var index = Dictionary(rows.indices.map { (Key(tenant: rows[$0].tenantID, day: rows[$0].day), $0) }) { first, _ in first }
        for delta in unwritten where (tenant == nil || delta.tenantID == tenant) && delta.day >= from && delta.day <= to {
            let key = Key(tenant: delta.tenantID, day: delta.day)
            if let i = index[key] {
                rows[i].add(delta)
            } else {
                index[key] = rows.count
                var fresh = UsageRow(tenantID: delta.tenantID, day: delta.day, storageBytes: 0)
                fresh.add(delta)
                rows.append(fresh)
            }
        }
        return rows.sorted { ($0.tenantID, $0.day) < ($1.tenantID, $1.day) }
    }

    /// Each tenant's usage today (UTC), from memory: for readers that must not wait on
    /// SQLite, such as `/metrics` on an event loop.
    public func todayUsage() -> [UsageRow] {
        let day = wallClock() / 86_400
        return pending.withLock { p in p.dayNumber == day ? Array(p.today.values) : [] }
    }

    /// Seconds since the oldest usage not yet in SQLite was recorded (0 when all is written).
    public var lagSeconds: Double {
        guard let oldest = pending.withLock({ p in p.cut.first?.since ?? p.oldest }) else { return 0 }
        let now = Posix.monotonicNanoseconds()
        return now > oldest ? Double(now - oldest) / 1e9 : 0
    }

    // MARK: Writing

    private func tick() {
        flush()
        _ = loop.schedule(after: interval) { [self] in tick() }
    }

    /// Measures every volume now and again every `storageInterval`, on the scan thread.
    /// A scan that fails (the tenant moved a directory under it, say) keeps the last figure.
    private func measureStorage() {
        for (tenant, path) in volumes() {
            let forgets = pending.withLock { $0.forgets }
            let bytes = bh_tree_bytes(path, stopScan.flag)
            if bytes >= 0 {
                storage(tenant, bytes: bytes, scannedAfter: forgets)
            } else if bytes == -Int64(ECANCELED) {
                return  // stopping
            } else if bytes != -Int64(ENOENT) {  // no volume (yet): nothing to measure
                log.warning("storage_scan_failed", [("tenant", .string(tenant)),
                                                    ("reason", .string(String(cString: bh_walk_strerror(bytes))))])
            }
        }
        _ = scanLoop.schedule(after: storageInterval) { [self] in measureStorage() }
    }

    /// Cuts what is in memory into a batch and writes every batch not yet written.
    public func flush() {
        writer.withLock { _ in
            let batches = pending.withLock { p in
                if !p.deltas.isEmpty {
                    p.cut.append((Self.batchID(), Array(p.deltas.values), p.oldest ?? 0))
                    p.deltas.removeAll(keepingCapacity: true)
                    p.oldest = nil
                }
                return p.cut
            }
            var written = 0
            for batch in batches {
                do {
                    try store.applyUsage(batch: batch.id, batch.rows, now: wallClock())
                    written += 1
                } catch {
                    log.error("usage_write_failed", [("reason", .string("\(error)")), ("rows", .of(batch.rows.count))])
                    break  // kept, in order, for the next try
                }
            }
            pending.withLock { p in p.cut.removeFirst(min(written, p.cut.count)) }
        }
    }

    /// 63 random bits: unique across restarts and hosts sharing nothing.
    private static func batchID() -> Int64 {
        var id: Int64 = 0
        _ = withUnsafeMutableBytes(of: &id) { bh_random($0.baseAddress, $0.count) }
        return id & Int64.max
    }

    /// YYYY-MM-DD (UTC) of `seconds` since the epoch.
    public static func day(_ seconds: Int64) -> String { UTCTime.date(seconds) }
}

/// The flag that ends a storage scan early (`stop()` raises it once; bh_tree_bytes reads it
/// before each entry). `@unchecked Sendable`: the one write and every read are atomic
/// (bh_flag_raise and the walker's load, in CBulkhead), and the memory lives as long as this.
private final class ScanStop: @unchecked Sendable {
    let flag = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
    init() { flag.initialize(to: 0) }
    func raise() { bh_flag_raise(flag) }
    deinit { flag.deallocate() }
}
