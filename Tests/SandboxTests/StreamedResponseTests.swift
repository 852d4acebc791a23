// Streamed bodies as the supervisor sees them, with real workers: a response nobody reads
// is cancelled after the stall bound instead of holding its worker for ever; a response is
// held to the length it announced; a streamed request has its worker to itself until it
// is answered.
import EventLoop
import Foundation
import Supervisor
import Testing
import Wire

/// In WorkerTests, whose tests run one at a time: they check this process's children.
extension WorkerTests {
    static let tenant = TenantIdentity(id: "tenant-s", uid: 210_011, gid: 210_011)

    /// Submits `task` with a download channel; the answer's head tells the channel its
    /// length (as the HTTP side does when it answers with a streamed body).
    static func download(_ h: Harness, _ task: String, _ body: String) throws
        -> (channel: ByteChannel, box: ResultBox<Result<Response, WorkerFailure>>) {
        let channel = ByteChannel()
        let box = ResultBox<Result<Response, WorkerFailure>>()
        _ = try h.withSupervisor { s in
            s.submit(tenant: Self.tenant, task: task, body: Array(body.utf8), download: channel) { result in
                if case .success(let r) = result, r.streamed { channel.expect(length: Int(FilePath.read64(r.body, 0))) }
                box.set(.success(result))
            }
        }
        return (channel, box)
    }

    /// A file of `size` bytes in the tenant's volume, its own (a real `files.get` is the
    /// stock worker's; the hostile worker's lies). The first request creates the volume.
    static func makeFile(_ h: Harness, _ name: String, size: Int) throws {
        _ = try h.request(Self.tenant, "files.list", "")
        let path = h.volumes + "/tenant-\(Self.tenant.id)-data/" + name
        #expect(FileManager.default.createFile(atPath: path, contents: Data(repeating: 0x61, count: size),
                                               attributes: [.posixPermissions: 0o600]))
        #expect(chown(path, Self.tenant.uid, Self.tenant.gid) == 0)
    }

    /// Reads the channel until it ends: the bytes and how it ended.
    static func drain(_ channel: ByteChannel) throws -> (bytes: Int, end: ByteChannel.ReadResult) {
        var bytes = 0
        var end = ByteChannel.ReadResult.empty
        try eventually(20, "the stream ends") {
            while true {
                switch channel.read() {
                case .bytes(let b): bytes += b.count
                case .empty: return false
                case let other:
                    end = other
                    return true
                }
            }
        }
        return (bytes, end)
    }

    @Test func aStreamNobodyReadsIsCancelledAndItsWorkerFreed() throws {
        let h = try Harness(executable: stockWorker) {
            $0.streamStallTimeout = .milliseconds(500)
            $0.maxWorkersPerTenant = 1
        }
        defer { try? h.shutdown() }
        try Self.makeFile(h, "big.bin", size: 8 << 20)
        let (channel, box) = try Self.download(h, "files.get", "big.bin")
        guard case .success(.success(let head)) = try box.wait(seconds: 30), head.streamed else {
            Issue.record("no streamed answer")
            return
        }
        // Nobody reads: the channel fills, the worker's socket is paused. After the stall
        // bound the stream is cancelled and the worker takes requests again.
        try eventually(20, "the worker is free again") { try h.snapshot(Self.tenant.id)?.workers.first?.inFlight == 0 }
        #expect(!h.logLines(containing: "worker_stream_stalled").isEmpty)
        #expect(try h.body(Self.tenant, "echo", "again") == "again")
        #expect(try Self.drain(channel).end == .failed)  // never taken for a whole body
        #expect(try h.counters().killedForTimeout == 0)
    }

    @Test func aStreamLongerThanAnnouncedIsAProtocolViolation() throws {
        let h = try Harness()
        defer { try? h.shutdown() }
        let (channel, box) = try Self.download(h, "stream_lie", "100000 300000")
        guard case .success(.success(let head)) = try box.wait(seconds: 30), head.streamed else {
            Issue.record("no streamed answer")
            return
        }
        let (bytes, end) = try Self.drain(channel)
        #expect(end == .failed)
        #expect(bytes <= 100_000)
        try eventually(10, "the worker is killed for it") { !h.logLines(containing: "worker_protocol_violation").isEmpty }
        #expect(h.logLines(containing: "worker_protocol_violation").first?.contains("announced") == true)
    }

    @Test func aStreamShorterThanAnnouncedFailsInsteadOfEnding() throws {
        let h = try Harness()
        defer { try? h.shutdown() }
        let (channel, box) = try Self.download(h, "stream_lie", "300000 100000")
        guard case .success(.success(let head)) = try box.wait(seconds: 30), head.streamed else {
            Issue.record("no streamed answer")
            return
        }
        let (bytes, end) = try Self.drain(channel)
        #expect(bytes == 100_000)
        #expect(end == .failed)
        #expect(!h.logLines(containing: "worker_stream_short").isEmpty)
    }

    /// docs/PROTOCOL.md: nothing is pipelined behind a streamed request until it is
    /// answered, even once its whole body has been sent.
    @Test func aStreamedRequestHasItsWorkerToItselfUntilAnswered() throws {
        let h = try Harness { $0.maxWorkersPerTenant = 1 }
        defer { try? h.shutdown() }
        _ = try h.body(Self.tenant, "echo", "warm")
        let first = ResultBox<Result<Response, WorkerFailure>>()
        let second = ResultBox<Result<Response, WorkerFailure>>()
        let pool = try h.withSupervisor { s -> PoolSnapshot? in
            let upload = ByteChannel()
            upload.finish()  // the whole (empty) body goes at once
            s.submit(tenant: Self.tenant, task: "sleep_ms", body: Array("300".utf8), upload: upload) { first.set(.success($0)) }
            s.submit(tenant: Self.tenant, task: "echo", body: Array("next".utf8)) { second.set(.success($0)) }
            return s.snapshot().first { $0.tenant == Self.tenant.id }
        }
        #expect(pool?.workers.map(\.inFlight) == [1])
        #expect(pool?.queued == 1)
        guard case .success(.success(let a)) = try first.wait(seconds: 30), case .success(.success(let b)) = try second.wait(seconds: 30)
        else {
            Issue.record("a request failed")
            return
        }
        #expect(String(decoding: a.body, as: UTF8.self) == "\"slept\"")
        #expect(String(decoding: b.body, as: UTF8.self) == "next")
    }
}

extension WorkerTests {
    /// A worker never sends a frame larger than the one it was given (`--max-frame`): a
    /// file that does not fit one RESPONSE streams, whatever its size; a task's answer
    /// that does not fit is refused with payload_too_large, and the worker lives on.
    @Test func aWorkerKeepsItsFramesWithinTheLimitItWasGiven() throws {
        let h = try Harness(executable: stockWorker) { $0.maxFramePayload = 70_000 }
        defer { try? h.shutdown() }
        try Self.makeFile(h, "mid.bin", size: 100 * 1024)
        let (channel, box) = try Self.download(h, "files.get", "mid.bin")
        guard case .success(.success(let head)) = try box.wait(seconds: 30) else {
            Issue.record("files.get of a file larger than a frame failed")
            return
        }
        #expect(head.streamed)
        let (bytes, end) = try Self.drain(channel)
        #expect(bytes == 100 * 1024 && end == .end)

        let pid = try h.pids(Self.tenant.id)
        let big = String(repeating: "x", count: 69_990)  // the request fits, its echo (16 bytes more) does not
        guard case .failure(.task(let e)) = try h.request(Self.tenant, "echo", big) else {
            Issue.record("an answer larger than a frame was not refused")
            return
        }
        #expect(e.code == .payloadTooLarge)
        #expect(try h.pids(Self.tenant.id) == pid)
        #expect(try h.counters().crashed == 0)
    }
}
