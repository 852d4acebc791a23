// The storage quota across writes in flight: each write to a tenant's volume (a file
// upload, a Dict value) reserves the bytes it may add before it goes to a worker, and is
// checked against the volume's figure plus what the tenant's other writes have reserved;
// the reservation ends with the request, however it ends. One table for every event loop.
import Metering
import RateLimit
import Synchronization

final class StorageReservations: Sendable {
    private let reserved = Mutex<[String: Int64]>([:])
    private let meter: UsageMeter
    private let limits: LimitTable

    /// Quotas and sizes are capped here so that no sum of them can overflow (2 EiB).
    static let ceiling = Int64.max / 4

    init(meter: UsageMeter, limits: LimitTable) {
        self.meter = meter
        self.limits = limits
    }

    /// What a new write of the tenant is measured against.
    struct Standing {
        /// The quota, in bytes.
        let quota: Int64
        /// The volume's bytes (last scan and writes since) plus what other writes have
        /// reserved, without this write's own reservation.
        let used: Int64
        /// What this write holds until it ends.
        let reservation: Reservation

        var remaining: Int64 { max(0, quota - used) }
    }

    /// Reserves `bytes` for a write of `tenant` and returns the standing it was
    /// measured against. With `upTo`, the reservation is what remains of the quota, at most
    /// `upTo` (a write whose length is not known).
    func reserve(_ tenant: String, bytes: Int64? = nil, upTo cap: Int64 = ceiling) -> Standing {
        let gb = limits.limits(for: tenant).storageGB
        let quota = Int64(max(0, min(gb * 1_073_741_824, Double(Self.ceiling))))
        let volume = min(Self.ceiling, max(0, meter.storageBytes(tenant)))
        return reserved.withLock { table in
            let others = table[tenant, default: 0]
            let used = min(Self.ceiling, volume + others)
            let amount = bytes.map { min(Self.ceiling, max(0, $0)) } ?? min(max(0, quota - used), max(0, min(cap, Self.ceiling)))
            table[tenant] = others + amount
            return Standing(quota: quota, used: used, reservation: Reservation(tenant, amount, self))
        }
    }

    fileprivate func release(_ tenant: String, _ bytes: Int64) {
        reserved.withLock { table in
            let left = table[tenant, default: 0] - bytes
            table[tenant] = left > 0 ? left : nil
        }
    }
}

/// One write's reserved bytes: given back by `release()` once the request has ended (its
/// growth counted by the meter first), or when the last reference to it goes, whichever is
/// first, so no path out of a request can keep it.
final class Reservation: Sendable {
    let tenant: String
    let bytes: Int64
    private let table: StorageReservations
    private let released = Atomic<Bool>(false)

    fileprivate init(_ tenant: String, _ bytes: Int64, _ table: StorageReservations) {
        self.tenant = tenant
        self.bytes = bytes
        self.table = table
    }

    func release() {
        guard !released.exchange(true, ordering: .acquiringAndReleasing) else { return }
        table.release(tenant, bytes)
    }

    deinit { release() }
}
