// The event loop and the posix layer against the real kernel: timers, wake-ups, I/O
// readiness, child exits by pidfd, descriptor ownership.
import Dispatch
import EventLoop
import Foundation
import Glibc
import Posix
import Synchronization
import Testing

/// Runs a loop on its own thread for the duration of `body`.
func withRunningLoop(_ body: (EventLoop) throws -> Void) throws {
    let loop = try EventLoop()
    let finished = DispatchSemaphore(value: 0)
    let thread = Thread {
        try? loop.run()
        finished.signal()
    }
    thread.start()
    defer {
        loop.stop()
        _ = finished.wait(timeout: .now() + 10)
    }
    try body(loop)
}

final class Recorder: @unchecked Sendable {  // guarded by lock
    private let lock = NSLock()
    private var items: [String] = []
    let done = DispatchSemaphore(value: 0)
    func add(_ s: String) { lock.withLock { items.append(s) } }
    var all: [String] { lock.withLock { items } }
}

@Suite struct EventLoopTests {
    @Test func executeRunsOnTheLoopThreadInOrder() throws {
        try withRunningLoop { loop in
            let r = Recorder()
            for i in 0..<100 {
                loop.execute {
                    precondition(loop.inLoop)
                    r.add("\(i)")
                    if i == 99 { r.done.signal() }
                }
            }
            #expect(r.done.wait(timeout: .now() + 10) == .success)
            #expect(r.all == (0..<100).map(String.init))
        }
    }

    @Test func timersFireInDeadlineOrderAndCancelledOnesDoNot() throws {
        try withRunningLoop { loop in
            let r = Recorder()
            loop.execute {
                let base = loop.now
                // Scheduled out of order; deadlines in nanoseconds of the loop clock.
                loop.schedule(at: base + 30_000_000) { r.add("30ms"); r.done.signal() }
                loop.schedule(at: base + 10_000_000) { r.add("10ms") }
                let cancelled = loop.schedule(at: base + 20_000_000) { r.add("cancelled") }
                loop.schedule(at: base + 5_000_000) { r.add("5ms") }
                loop.cancelTimer(cancelled)
            }
            #expect(r.done.wait(timeout: .now() + 10) == .success)
            #expect(r.all == ["5ms", "10ms", "30ms"])
        }
    }

    @Test func socketReadinessAndPeerClose() throws {
        let pair = try Posix.socketPair()
        let ours = pair.first
        let theirs = pair.second
        try ours.setNonBlocking()
        let fd = ours.rawValue
        try withRunningLoop { loop in
            let r = Recorder()
            loop.execute {
                var token: LoopToken?
                token = try? loop.register(fd: fd, interest: .readable) { events in
                    var buf = [UInt8](repeating: 0, count: 64)
                    let n = buf.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
                    if n > 0 { r.add(String(decoding: buf[..<n], as: UTF8.self)) }
                    if n == 0 {
                        r.add("eof")
                        loop.deregister(token!, fd: fd)
                        r.done.signal()
                    }
                }
            }
            try theirs.writeAll(Array("hello".utf8))
            try eventually { r.all == ["hello"] }
            _ = shutdown(theirs.rawValue, Int32(SHUT_WR))  // end of stream for the reader
            #expect(r.done.wait(timeout: .now() + 10) == .success)
            #expect(r.all == ["hello", "eof"])
        }
    }

    /// A half-closed peer of a descriptor that is not being read (reading paused, say)
    /// must not wake the loop: level-triggered, it would on every turn (100% CPU).
    @Test func aHalfClosedPeerDoesNotWakeALoopThatIsNotReading() throws {
        let pair = try Posix.socketPair()
        let ours = pair.first
        let theirs = pair.second
        try ours.setNonBlocking()
        let fd = ours.rawValue
        let calls = Mutex(0)
        try withRunningLoop { loop in
            let r = Recorder()
            let registered = DispatchSemaphore(value: 0)
            loop.execute {
                guard let token = try? loop.register(fd: fd, interest: .readable, { _ in calls.withLock { $0 += 1 } })
                else { return }
                try? loop.setInterest(token, fd: fd, [])  // not reading now
                registered.signal()
            }
            #expect(registered.wait(timeout: .now() + 10) == .success)
            _ = shutdown(theirs.rawValue, Int32(SHUT_WR))
            // Two hundred loop turns (each polls epoll without waiting), then count the wake-ups.
            loop.execute {
                var turns = 0
                func turn() {
                    turns += 1
                    if turns == 200 { r.done.signal() } else { loop.executeSoon(turn) }
                }
                loop.executeSoon(turn)
            }
            #expect(r.done.wait(timeout: .now() + 10) == .success)
            #expect(calls.withLock { $0 } == 0)  // before: once every turn
        }
        // The peer gone entirely is reported whatever the interest: the handler must act on it.
        theirs.close()
        try withRunningLoop { loop in
            let r = Recorder()
            loop.execute {
                var token: LoopToken?
                token = try? loop.register(fd: fd, interest: []) { events in
                    if events.contains(.hangup) { r.add("hangup") }
                    loop.deregister(token!, fd: fd)
                    r.done.signal()
                }
            }
            #expect(r.done.wait(timeout: .now() + 10) == .success)
            #expect(r.all == ["hangup"])
        }
    }

    @Test func childExitIsSeenThroughItsPidfdAndReaped() throws {
        let devNull = try Posix.open("/dev/null", O_RDWR)
        let child = try ChildProcess.spawn(path: "/bin/sh", arguments: ["sh", "-c", "exit 7"], stdin: devNull,
                                           stdout: devNull, stderr: devNull, fd3: devNull)
        let pidfd = child.pidfd.rawValue
        try withRunningLoop { loop in
            let r = Recorder()
            loop.execute {
                _ = try? loop.watchExit(pidfd: pidfd) { r.add("exited"); r.done.signal() }
            }
            #expect(r.done.wait(timeout: .now() + 10) == .success)
        }
        let status = try #require(try child.reap())
        #expect(status.kind == .exited(7))
        // Reaped: no zombie left.
        #expect(kill(child.pid, 0) != 0)
    }

    @Test func spawnedChildGetsItsFourDescriptorsButNoneOfOurOthers() throws {
        let devNull = try Posix.open("/dev/null", O_RDWR)
        let out = try Posix.pipe()
        let spare = try Posix.socketPair()  // close-on-exec like everything we open
        let child = try ChildProcess.spawn(
            path: "/bin/sh", arguments: ["sh", "-c", "wc -c < /proc/$$/environ; ls -l /proc/$$/fd"],
            stdin: devNull, stdout: out.second, stderr: devNull, fd3: devNull)
        let readEnd = out.first
        let writeEnd = out.second
        writeEnd.close()
        var text = [UInt8]()
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = try buf.withUnsafeMutableBytes { try readEnd.read(into: $0) } ?? 0
            if n == 0 { break }
            text += buf[..<n]
        }
        let lines = String(decoding: text, as: UTF8.self).split(separator: "\n")
        #expect(lines.first == "0")  // an empty environment
        let targets = lines.compactMap { line -> (Int, String)? in
            let parts = line.split(separator: " ")
            guard let arrow = parts.firstIndex(of: "->"), arrow > 0, let fd = Int(parts[arrow - 1]) else { return nil }
            return (fd, parts[(arrow + 1)...].joined(separator: " "))
        }
        let mine = Dictionary(targets, uniquingKeysWith: { a, _ in a })
        #expect(mine[0] == "/dev/null")
        #expect(mine[3] == "/dev/null")
        #expect(mine[1]?.hasPrefix("pipe:") == true)
        let ours = try FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(spare.first.rawValue)")
        #expect(!mine.values.contains(ours))
        #expect(mine.values.filter { $0 == mine[1] }.count == 1)  // the pipe's read end stayed with us
        try eventually { (try? child.reap()) != nil }
    }

    @Test func errnoIsTypedAndNamesTheCall() throws {
        do {
            _ = try Posix.open("/nonexistent/file", O_RDONLY)
            Issue.record("open succeeded")
        } catch {
            #expect(error.code == ENOENT)
            #expect(error.description == "open(/nonexistent/file): No such file or directory")
        }
    }
}

func eventually(_ seconds: Double = 10, _ condition: () throws -> Bool) throws {
    let deadline = Date(timeIntervalSinceNow: seconds)
    while Date() < deadline {
        if try condition() { return }
        _ = poll(nil, 0, 2)
    }
    Issue.record("condition never held")
}
