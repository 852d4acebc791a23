// Counters of answered HTTP requests, kept with atomics because every event loop adds
// to them: requests by status class, and a histogram of how long they took from the
// last byte of the request to the response; and the requests the HTTP server refused on
// its own, by status.
import Synchronization

public final class RequestMetrics: Sendable {
    /// Upper bounds of the duration buckets, in seconds.
    public static let bounds: [Double] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    private let classes = (0..<6).map { _ in Counter() }  // 1xx ... 5xx, and other
    private let buckets = RequestMetrics.bounds.map { _ in Counter() }
    private let total = Counter()
    private let sumMicroseconds = Counter()
    /// Rare (bad clients), so a locked table rather than a counter per possible status.
    private let refusals = Mutex<[Int: Int]>([:])

    public init() {}

    public func record(status: Int, nanoseconds: UInt64) {
        let c = (100...599).contains(status) ? status / 100 - 1 : 5
        classes[c].add()
        let seconds = Double(nanoseconds) / 1e9
        if let i = Self.bounds.firstIndex(where: { seconds <= $0 }) { buckets[i].add() }
        total.add()
        sumMicroseconds.add(Int(nanoseconds / 1000))
    }

    /// A request the HTTP server answered itself before any stage saw it (malformed, too
    /// large, too slow): counted by class, and by status apart; it has no duration.
    public func recordRefusal(status: Int) {
        classes[(100...599).contains(status) ? status / 100 - 1 : 5].add()
        refusals.withLock { $0[status, default: 0] += 1 }
    }

    /// The server's own refusals by status, in status order.
    public var refusalsByStatus: [(Int, Int)] { refusals.withLock { $0.sorted { $0.key < $1.key }.map { ($0.key, $0.value) } } }

    /// Requests by class: "1xx" ... "5xx" (and "other" for a status outside 100–599).
    public var byClass: [(String, Int)] {
        ["1xx", "2xx", "3xx", "4xx", "5xx", "other"].enumerated().map { ($1, classes[$0].value) }
    }

    /// Cumulative counts per bound, the sum in seconds and the count.
    public var histogram: (buckets: [(Double, Int)], sum: Double, count: Int) {
        var running = 0
        let cumulative = zip(Self.bounds, buckets).map { bound, n -> (Double, Int) in
            running += n.value
            return (bound, running)
        }
        // The count is read last, so it is never below the +Inf bucket's cumulative value.
        let sum = Double(sumMicroseconds.value) / 1e6
        return (cumulative, sum, max(running, total.value))
    }
}
