// The exposition format as we write it, and request counting.
import Testing
@testable import Metrics

@Suite struct PrometheusTextTests {
    @Test func familiesSamplesAndEscaping() {
        var p = PrometheusText()
        p.counter("x_total", "Things.", [([("reason", "a\"b\\c\nd")], 3), ([], 1)])
        p.gauge("y", "Level.", 7)
        p.histogram("z_seconds", "Time.", buckets: [(0.005, 1), (1, 2)], sum: 0.25, count: 3)
        #expect(p.text == """
            # HELP x_total Things.
            # TYPE x_total counter
            x_total{reason="a\\"b\\\\c\\nd"} 3
            x_total 1
            # HELP y Level.
            # TYPE y gauge
            y 7
            # HELP z_seconds Time.
            # TYPE z_seconds histogram
            z_seconds_bucket{le="0.005"} 1
            z_seconds_bucket{le="1"} 2
            z_seconds_bucket{le="+Inf"} 3
            z_seconds_sum 0.25
            z_seconds_count 3

            """)
    }

    @Test func requestsAreCountedByClassAndDuration() {
        let m = RequestMetrics()
        m.record(status: 200, nanoseconds: 400_000)       // 0.4 ms
        m.record(status: 429, nanoseconds: 3_000_000)     // 3 ms
        m.record(status: 503, nanoseconds: 20_000_000_000)  // past the last bound
        m.record(status: 42, nanoseconds: 0)
        #expect(m.byClass.map(\.1) == [0, 1, 0, 1, 1, 1])
        let h = m.histogram
        #expect(h.count == 4)
        #expect(h.buckets.first! == (0.0005, 2))
        #expect(h.buckets.first { $0.0 == 0.005 }!.1 == 3)
        #expect(h.buckets.last!.1 == 3)
        #expect(abs(h.sum - 20.0034) < 1e-9)
    }

    /// What the HTTP server refuses on its own counts by class and by status, with no duration.
    @Test func serverRefusalsAreCountedApart() {
        let m = RequestMetrics()
        m.record(status: 200, nanoseconds: 1000)
        m.recordRefusal(status: 408)
        m.recordRefusal(status: 400)
        m.recordRefusal(status: 400)
        m.recordRefusal(status: 505)
        #expect(m.byClass.map(\.1) == [0, 1, 0, 3, 1, 0])
        #expect(m.refusalsByStatus.map(\.0) == [400, 408, 505] && m.refusalsByStatus.map(\.1) == [2, 1, 1])
        #expect(m.histogram.count == 1)
    }
}
