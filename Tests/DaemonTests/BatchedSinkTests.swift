// The access log's batched writer: records come out whole and in order, all of them after
// `flush`, and a stderr that stops draining costs a bounded buffer and a count of drops.
import Foundation
import Glibc
import Log
import Testing

@Suite struct BatchedSinkTests {
    /// Everything the pipe's read end yields until EOF, on a thread of its own.
    private final class Drain: @unchecked Sendable {  // `bytes` is read only after `done` is signalled
        var bytes: [UInt8] = []
        let done = DispatchSemaphore(value: 0)
        init(_ fd: Int32) {
            Thread.detachNewThread { [self] in
                var buffer = [UInt8](repeating: 0, count: 65536)
                while true {
                    let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                    if n < 0 && errno == EINTR { continue }
                    if n <= 0 { break }
                    bytes += buffer[..<n]
                }
                done.signal()
            }
        }
        var lines: [String] { String(decoding: bytes, as: UTF8.self).split(separator: "\n").map(String.init) }
    }

    @Test func recordsComeOutWholeInOrderAndAllOfThemAtFlush() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        let drain = Drain(fds[0])
        let sink = BatchedSink(fd: fds[1])
        for i in 0..<5000 { sink.append(Array("{\"n\":\(i)}\n".utf8)) }
        sink.flush()
        close(fds[1])
        drain.done.wait()
        close(fds[0])
        #expect(drain.lines == (0..<5000).map { "{\"n\":\($0)}" })
    }

    @Test func aStderrThatStopsDrainingCostsABoundedBufferAndACount() throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        // Fill the pipe, so the writer blocks on its first batch.
        _ = fcntl(fds[1], F_SETFL, O_NONBLOCK)
        let filler = [UInt8](repeating: 0x0A, count: 4096)
        var filled = 0
        while true {
            let n = filler.withUnsafeBytes { write(fds[1], $0.baseAddress, $0.count) }
            if n <= 0 { break }
            filled += n
        }
        let sink = BatchedSink(fd: fds[1], maxPending: 1024)
        let line = String(repeating: "x", count: 99)
        for _ in 0..<100 { sink.append(Array((line + "\n").utf8)) }  // 10 KB against a 1 KiB bound
        let drain = Drain(fds[0])
        sink.flush()
        close(fds[1])
        drain.done.wait()
        close(fds[0])
        let lines = drain.lines  // the filler's empty lines are dropped by split
        let written = lines.filter { $0 == line }.count
        let reports = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        #expect(!reports.isEmpty && reports.allSatisfy { $0["event"] as? String == "log_records_dropped" })
        let dropped = reports.reduce(0) { $0 + ($1["count"] as? Int ?? 0) }
        #expect(written + dropped == 100)
        #expect(written <= 20, "at most two bounded batches waited; \(written) were written")
        #expect(filled > 0)
    }
}
