// A connection that is not reading (a request held behind an unsafe one in flight) costs
// nothing while it waits, whatever its client does meanwhile: more bytes, a half-close.
import Foundation
import Glibc
import Testing

@Suite(.serialized) struct IdleConnectionTests {
    /// The daemon's CPU time (user + system, in clock ticks) so far.
    static func cpuTicks(_ pid: Int32) throws -> Int {
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        let fields = stat[stat.index(after: stat.lastIndex(of: ")")!)...].split(separator: " ")
        return Int(fields[11])! + Int(fields[12])!
    }

    /// While a task of a second and a half runs, the client sends the next request and then
    /// half-closes. Neither may make the daemon's loop spin until the answer: its CPU
    /// time over the wait stays far below the wait (spinning, it is all of it).
    @Test(arguments: [false, true]) func aConnectionThatIsNotReadingCostsNothing(halfClose: Bool) throws {
        let d = try Daemon(hostile: true)
        defer { d.cleanUp() }
        try d.start()
        let key = try d.tenant("acme")
        let pid = try #require(d.pid)
        #expect(try d.call(key: key, body: echo("1")).status == 200)  // a worker is ready
        let c = try d.connect()
        c.send(request(key: key, body: #"{"task":"sleep_ms","data":1500}"#))
        try eventually(10, "the task runs") { busyWorkers(d) == 1 }
        let before = try Self.cpuTicks(pid), start = Date()
        // Not read until the task is answered (RFC 9112 §9.3.2: a POST in flight).
        c.send(request("GET", "/healthz", key: nil))
        if halfClose { shutdown(c.fd, Int32(SHUT_WR)) }
        let first = c.response()
        let waited = Date().timeIntervalSince(start)
        let ticks = try Self.cpuTicks(pid) - before
        #expect(first?.status == 200)
        if !halfClose { #expect(c.response()?.status == 200) }  // then the held request is served
        let hz = Double(sysconf(Int32(_SC_CLK_TCK)))
        print("half-close \(halfClose): the daemon used \(ticks) ticks over \(waited) s")
        #expect(Double(ticks) / hz < waited / 3)
    }
}
