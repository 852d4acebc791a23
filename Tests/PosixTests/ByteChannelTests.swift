// ByteChannel between two real loops: everything written is read once and in order, the
// producer is stopped at the high-water mark and woken on its own loop, and finishing,
// failing and cancelling reach the other side.
import Dispatch
import EventLoop
import Foundation
import Synchronization
import Testing

@Suite struct ByteChannelTests {
    @Test func theWriterStopsAtHighWaterAndIsWokenOnItsLoop() throws {
        try withRunningLoop { producerLoop in
            try withRunningLoop { consumerLoop in
                let channel = ByteChannel(highWater: 4096)
                let total = 1 << 20
                let received = Mutex<[UInt8]>([])
                let stops = Atomic<Int>(0)
                let done = DispatchSemaphore(value: 0)
                let wrongLoop = Atomic<Bool>(false)
                // Producer: 1 MiB in 1000-byte pieces, stopping whenever told to.
                final class Sent: @unchecked Sendable { var offset = 0 }  // producer loop only
                let sent = Sent()
                let produce: @Sendable () -> Void = {
                    if !producerLoop.inLoop { wrongLoop.store(true, ordering: .relaxed) }
                    while sent.offset < total {
                        let n = min(1000, total - sent.offset)
                        let piece = (sent.offset..<(sent.offset + n)).map { UInt8(truncatingIfNeeded: $0 % 251) }
                        sent.offset += n
                        if !channel.write(piece) {
                            stops.add(1, ordering: .relaxed)
                            return
                        }
                    }
                    channel.finish()
                }
                let consume: @Sendable () -> Void = {
                    if !consumerLoop.inLoop { wrongLoop.store(true, ordering: .relaxed) }
                    while true {
                        switch channel.read() {
                        case .bytes(let b): received.withLock { $0 += b }
                        case .empty: return
                        case .end, .failed: done.signal(); return
                        }
                    }
                }
                // The producer starts alone, so it must stop at the mark before anything is read.
                producerLoop.execute {
                    channel.onWritable(on: producerLoop) { produce() }
                    produce()
                    consumerLoop.execute {
                        channel.onReadable(on: consumerLoop) { consume() }
                        consume()
                    }
                }
                #expect(done.wait(timeout: .now() + 30) == .success)
                let bytes = received.withLock { $0 }
                #expect(bytes.count == total)
                #expect(bytes == (0..<total).map { UInt8(truncatingIfNeeded: $0 % 251) })
                let stopped = stops.load(ordering: .relaxed), strayed = wrongLoop.load(ordering: .relaxed)
                #expect(stopped > 0)  // the high-water mark was reached and recovered from
                #expect(!strayed)
                #expect(channel.totalBytes == total)
            }
        }
    }

    @Test func failAndCancelReachTheOtherSide() throws {
        try withRunningLoop { loop in
            let channel = ByteChannel(highWater: 10)
            #expect(channel.write([1, 2, 3]))
            channel.fail()
            #expect(channel.read() == .bytes([1, 2, 3]))
            #expect(channel.read() == .failed)
            #expect(channel.write([4]))  // ignored after the end

            let cancelled = ByteChannel(highWater: 4)
            let woken = DispatchSemaphore(value: 0)
            let registered = DispatchSemaphore(value: 0)
            loop.execute {
                cancelled.onWritable(on: loop) { woken.signal() }
                registered.signal()
            }
            #expect(registered.wait(timeout: .now() + 10) == .success)
            try eventuallyTrue { cancelled.write([1, 2, 3, 4, 5]) == false }
            cancelled.cancel()
            #expect(woken.wait(timeout: .now() + 10) == .success)  // the stopped writer learns of it
            #expect(cancelled.isCancelled)
            #expect(cancelled.write([6]))  // dropped, never blocks
            #expect(cancelled.read() == .empty)
        }
    }
}

/// `condition` within a few seconds (it usually holds at once).
private func eventuallyTrue(_ condition: () -> Bool) throws {
    let deadline = Date(timeIntervalSinceNow: 5)
    while !condition() {
        guard Date() < deadline else { throw ByteChannelTestFailure() }
    }
}

private struct ByteChannelTestFailure: Error {}
