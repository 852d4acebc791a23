// One atomic count, as a class so that counters can live in arrays (an `Atomic` cannot
// be copied) and be bumped from any thread.
import Synchronization

public final class Counter: Sendable {
    private let atomic = Atomic<Int>(0)
    public init() {}
    public func add(_ n: Int = 1) { atomic.add(n, ordering: .relaxed) }
    public var value: Int { atomic.load(ordering: .relaxed) }
}
