// AuditWriter: audit records from the request path (authentication failures), written to
// the store by a thread of its own so a flood of bad tokens never waits on SQLite. The
// queue is bounded; when it is full, records are dropped and counted (and that is logged).
import Dispatch
import Log
import Store
import Synchronization

public final class AuditWriter: Sendable {
    private let store: Store
    private let log: Logger
    private let queue = Mutex<(records: [AuditRecord], dropped: Int, scheduled: Bool)>(([], 0, false))
    private let worker = DispatchQueue(label: "bulkhead.audit")
    public static let capacity = 10_000

    public init(store: Store, log: Logger) {
        self.store = store
        self.log = log
    }

    public func record(_ r: AuditRecord) {
        let schedule = queue.withLock { q -> Bool in
            guard q.records.count < Self.capacity else {
                q.dropped += 1
                return false
            }
            q.records.append(r)
            defer { q.scheduled = true }
            return !q.scheduled
        }
        if schedule { worker.async { self.drain() } }
    }

    /// Writes everything queued; for shutdown and tests.
    public func flush() { worker.sync { self.drain() } }

    private func drain() {
        while true {
            let (batch, dropped) = queue.withLock { q in
                let taken = (q.records, q.dropped)
                q.records.removeAll()
                q.dropped = 0
                if taken.0.isEmpty { q.scheduled = false }
                return taken
            }
            if dropped > 0 { log.warning("audit_records_dropped", [("count", .of(dropped))]) }
            if batch.isEmpty { return }
            for r in batch {
                do { try store.appendAudit(r) } catch {
                    log.error("audit_write_failed", [("action", .string(r.action)), ("reason", .string(error.description))])
                }
            }
        }
    }
}
