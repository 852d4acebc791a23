// The tenant's files end to end: served inside the worker's chroot, paths that try to
// leave refused with 400 before anything is touched, the storage quota enforced on
// writes with the previous file left intact, and each tenant apart.
import Foundation
import Testing

@Suite(.serialized) struct FilesTests {
    @Test func filesPathsQuotaAndIsolation() throws {
        let d = try Daemon()
        defer { d.cleanUp() }
        try d.start()
        let a = try d.tenant("tenant-a"), b = try d.tenant("tenant-b")
        let bytes = (0..<4000).map { UInt8($0 % 251) }
        let put = try raw(d, "PUT", "/v1/files/reports/2026/q4.bin", key: a, body: bytes)
        #expect(put.status == 200 && put.json["size"] as? Int == 4000)
        let got = try raw(d, "GET", "/v1/files/reports/2026/q4.bin", key: a)
        #expect(got.status == 200 && got.body == bytes)
        let onDisk = d.volumes + "/tenant-tenant-a-data/reports/2026/q4.bin"
        #expect((try FileManager.default.attributesOfItem(atPath: onDisk)[.ownerAccountID] as? NSNumber)?.uint32Value == 240_000)
        #expect(try raw(d, "PUT", "/v1/files/notes%20%C3%A9.txt", key: a, body: Array("hi".utf8)).status == 200)
        let list = try raw(d, "GET", "/v1/files?prefix=reports%2F", key: a).json["files"] as? [[String: Any]]
        #expect(list?.map { $0["path"] as? String } == ["reports/2026/q4.bin"] && list?.first?["size"] as? Int == 4000)
        #expect((try raw(d, "GET", "/v1/files", key: a).json["files"] as? [[String: Any]])?.count == 2)
        // A prefix is bytes: "n" matches a name whose first Character is "n" + a combining mark.
        #expect(try raw(d, "PUT", "/v1/files/n%CC%83o.txt", key: a, body: Array("x".utf8)).status == 200)
        let marked = try raw(d, "GET", "/v1/files?prefix=n", key: a).json["files"] as? [[String: Any]]
        #expect(marked?.compactMap { $0["path"] as? String } == ["notes é.txt", "n\u{303}o.txt"].sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
        #expect(try raw(d, "DELETE", "/v1/files/n%CC%83o.txt", key: a).status == 204)

        // Paths that try to leave the volume, or reach the reserved directory: 400.
        for path in ["../../etc/passwd", "%2e%2e/%2e%2e/etc/passwd", "/etc/passwd", "a/./b", "a//b", "a/", "a%00b",
                     String(repeating: "x", count: 1025), ".bulkhead/dict.db", "d/.bulkhead-tmp-1", "%zz"] {
            let r = try raw(d, "GET", "/v1/files/" + path, key: a)
            #expect(r.status == 400, "\(path): \(r.status) \(r.text)")
        }
        #expect(!FileManager.default.fileExists(atPath: d.volumes + "/tenant-tenant-a-data/etc"))

        // The storage quota: 10,737 bytes, counted in 4 KiB blocks.
        #expect(d.ctl("limits", "set", "tenant-a", "--storage-gb", "0.00001").status == 0)
        let over = try raw(d, "PUT", "/v1/files/reports/2026/q4.bin", key: a, body: [UInt8](repeating: 7, count: 9000))
        #expect(over.status == 507)
        #expect(over.errorCode == "storage_quota_exceeded")
        #expect(try raw(d, "GET", "/v1/files/reports/2026/q4.bin", key: a).body == bytes)  // intact
        #expect(try raw(d, "PUT", "/v1/files/second.bin", key: a, body: [UInt8](repeating: 1, count: 100)).status == 507)
        #expect(try raw(d, "DELETE", "/v1/files/notes%20%C3%A9.txt", key: a).status == 204)  // frees a block
        #expect(try raw(d, "PUT", "/v1/files/second.bin", key: a, body: [UInt8](repeating: 1, count: 100)).status == 200)
        #expect(try raw(d, "DELETE", "/v1/files/notes%20%C3%A9.txt", key: a).status == 404)
        // What the volume holds shows in the tenant's usage.
        #expect((usageOf(d, "tenant-a")["storage_gb"] as? Double ?? 0) > 0)

        // Tenant B reaches none of A's files, by any path.
        #expect(try raw(d, "GET", "/v1/files/reports/2026/q4.bin", key: b).status == 404)
        #expect((try raw(d, "GET", "/v1/files", key: b).json["files"] as? [[String: Any]])?.isEmpty == true)
        #expect(try raw(d, "DELETE", "/v1/files/second.bin", key: b).status == 404)
        #expect(try raw(d, "GET", "/v1/files/second.bin", key: a).status == 200)
    }
}

/// File bodies stream: a 100 MiB file goes in and out without the daemon holding it,
/// chunked uploads work, and an upload that is refused, over quota or abandoned leaves the
/// previous file intact and no temporary file behind.
@Suite(.serialized) struct FileStreamingTests {
    static let mib = 1 << 20

    @Test func aHundredMebibyteFileStreamsBothWays() throws {
        let d = try Daemon()
        defer { d.cleanUp() }
        try d.start()
        let a = try d.tenant("tenant-a")
        let pid = try #require(d.pid)
        #expect(try raw(d, "PUT", "/v1/files/warm.txt", key: a, body: Array("warm".utf8)).status == 200)
        let before = try peakKiB(pid)

        let size = 100 * Self.mib
        var content = [UInt8](repeating: 0, count: size)
        for i in stride(from: 0, to: size, by: 4096) { content[i] = UInt8(truncatingIfNeeded: i >> 12) }
        let put = try raw(d, "PUT", "/v1/files/big/one.bin", key: a, body: content)
        #expect(put.status == 200 && put.json["size"] as? Int == size, "\(put.status) \(put.text)")
        let onDisk = d.volumes + "/tenant-tenant-a-data/big/one.bin"
        #expect((try? FileManager.default.attributesOfItem(atPath: onDisk)[.size] as? Int) == size)

        let got = try raw(d, "GET", "/v1/files/big/one.bin", key: a)
        #expect(got.status == 200 && got.header("Content-Length") == String(size))
        #expect(got.body.count == size && sameBytes(got.body, content))

        // Both directions together grew the daemon's peak memory by far less than the file.
        let growth = try peakKiB(pid) - before
        print("daemon peak RSS grew by \(growth) KiB for a \(size >> 20) MiB upload and download")
        #expect(growth < 32 * 1024, "peak RSS grew by \(growth) KiB")

        // HEAD tells the size and sends nothing; the connection goes on.
        let c = try d.connect()
        c.send("HEAD /v1/files/big/one.bin HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(a)\r\n\r\n"
            + "GET /v1/files/warm.txt HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(a)\r\n\r\n")
        let head = c.response(noBody: true)
        #expect(head?.status == 200 && head?.header("Content-Length") == String(size))
        #expect(c.response()?.text == "warm")
        #expect(usageOf(d, "tenant-a")["bytes_in"] as? Int ?? 0 >= size)
    }

    @Test func chunkedUploadsQuotaAndAbandonedUploads() throws {
        let d = try Daemon()
        defer { d.cleanUp() }
        try d.start()
        let a = try d.tenant("tenant-a")
        let volume = d.volumes + "/tenant-tenant-a-data"
        let auth = "Authorization: Bearer \(a)\r\n"

        // Chunked, then a pipelined request on the same connection.
        let c = try d.connect()
        c.send("PUT /v1/files/c.txt HTTP/1.1\r\nHost: t\r\n\(auth)Transfer-Encoding: chunked\r\n\r\n"
            + "5\r\nhello\r\n1\r\n \r\n5\r\nworld\r\n0\r\n\r\n"
            + "GET /v1/files/c.txt HTTP/1.1\r\nHost: t\r\n\(auth)\r\n")
        #expect(c.response()?.json["size"] as? Int == 11)
        #expect(c.response()?.text == "hello world")

        // Over the quota, announced: refused before the body is read, the connection closed.
        #expect(d.ctl("limits", "set", "tenant-a", "--storage-gb", "0.001").status == 0)  // about 1 MiB
        let early = try d.connect()
        early.send("PUT /v1/files/c.txt HTTP/1.1\r\nHost: t\r\n\(auth)Content-Length: \(50 * Self.mib)\r\n\r\n")
        early.send([UInt8](repeating: 1, count: Self.mib / 2))
        let refused = early.response()
        #expect(refused?.status == 507 && refused?.header("Connection") == "close")
        #expect(early.closedByServer())

        // Over the quota, found out as it arrives (chunked): the old file stays.
        let late = try d.connect()
        late.send("PUT /v1/files/c.txt HTTP/1.1\r\nHost: t\r\n\(auth)Transfer-Encoding: chunked\r\n\r\n")
        for _ in 0..<8 { late.send("40000\r\n" + String(repeating: "x", count: 0x40000) + "\r\n") }
        let over = late.response()
        #expect(over?.status == 507 && over?.errorCode == "storage_quota_exceeded")
        #expect(try raw(d, "GET", "/v1/files/c.txt", key: a).text == "hello world")

        // Abandoned halfway: the worker drops its temporary file; the old file stays.
        #expect(d.ctl("limits", "reset", "tenant-a").status == 0)
        do {
            let gone = try d.connect()
            gone.send("PUT /v1/files/c.txt HTTP/1.1\r\nHost: t\r\n\(auth)Content-Length: \(20 * Self.mib)\r\n\r\n")
            gone.send([UInt8](repeating: 2, count: 3 * Self.mib))
            try eventually(10, "a temporary file is being written") { !temporaryFiles(volume).isEmpty }
        }
        try eventually(10, "the temporary file is removed") { temporaryFiles(volume).isEmpty }
        #expect(try raw(d, "GET", "/v1/files/c.txt", key: a).text == "hello world")

        // A buffered route still stops at max_body_bytes (10 MiB), even though uploads may be larger.
        let big = try d.connect()
        big.send("PUT /v1/dict/k HTTP/1.1\r\nHost: t\r\n\(auth)Content-Length: \(11 * Self.mib)\r\n\r\n")
        #expect(big.response()?.status == 413)
    }

    @Test func aWorkerDyingMidDownloadCutsTheResponseShort() throws {
        let d = try Daemon()
        defer { d.cleanUp() }
        try d.start()
        let a = try d.tenant("tenant-a")
        let size = 64 * Self.mib
        #expect(try raw(d, "PUT", "/v1/files/big.bin", key: a, body: [UInt8](repeating: 3, count: size)).status == 200)
        let c = try d.connect()
        c.send("GET /v1/files/big.bin HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(a)\r\n\r\n")
        // The head is out, so the worker is streaming; the client reads no further, so the
        // worker is held mid-file by backpressure.
        let head = try #require(c.responseHead())
        #expect(head.status == 200 && head.header("Content-Length") == String(size))
        let daemon = try #require(d.pid)
        let workers = descendants(of: daemon).filter { processUID($0) == 240_000 }
        #expect(!workers.isEmpty)
        for w in workers { kill(w, SIGKILL) }
        // The connection closes before the body is whole: never a short body passed off as whole.
        let received = c.drainUntilClosed()
        #expect(received < size, "received \(received) of \(size) bytes")
        // The tenant is served again by a new worker.
        #expect(try raw(d, "GET", "/v1/files/big.bin", key: a).body.count == size)
    }
}

/// What the reviews of the streamed paths found: answers and uploads whose client went
/// away, paused or is slow never hold a worker for ever or get it killed for the client's
/// pace; a worker killed mid-upload leaves no temporary file; a small max_body_bytes does
/// not break mid-sized files.
@Suite(.serialized) struct StreamedBodyUpkeepTests {
    static let mib = 1 << 20

    /// Two pipelined GETs of a large file; the client reads the first head and goes away.
    /// The second answer, ready but not being sent, is cancelled too: its worker is freed.
    @Test func aPipelinedStreamedAnswerIsCancelledWhenItsClientGoes() throws {
        let d = try Daemon(extra: "[workers]\nrequest_timeout = 2s")
        defer { d.cleanUp() }
        try d.start()
        let a = try d.tenant("tenant-a")
        #expect(try raw(d, "PUT", "/v1/files/big.bin", key: a, body: [UInt8](repeating: 3, count: 16 * Self.mib)).status == 200)
        do {
            let c = try d.connect()
            let get = "GET /v1/files/big.bin HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(a)\r\n\r\n"
            c.send(get + get)
            #expect(c.responseHead()?.status == 200)
            // Both workers are held by backpressure, past request_timeout and not killed:
            // both answers' heads are in.
            try eventually(20, "two workers held mid-stream") {
                let busy = workerList(d).filter { ($0["in_flight"] as? Int ?? 0) > 0 }
                return busy.count == 2 && busy.allSatisfy { ($0["request_age_s"] as? Double ?? 0) > 3 }
            }
        }  // the client closes
        try eventually(15, "no worker holds a request of the gone client") {
            workerList(d).allSatisfy { ($0["in_flight"] as? Int ?? 0) == 0 }
        }
        #expect(try raw(d, "GET", "/v1/files/big.bin", key: a).body.count == 16 * Self.mib)
    }

    /// A client that pauses mid-upload longer than request_timeout (well within
    /// body_timeout) is judged by body_timeout: its worker waits, unharmed, and the upload
    /// completes when the client goes on.
    @Test func aSlowUploadIsTheClientsTimeNotTheWorkers() throws {
        let d = try Daemon(extra: "[workers]\nrequest_timeout = 1s")
        defer { d.cleanUp() }
        try d.start()
        let a = try d.tenant("tenant-a")
        let c = try d.connect()
        c.send("PUT /v1/files/slow.bin HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(a)\r\nContent-Length: \(2 * Self.mib)\r\n\r\n")
        c.send([UInt8](repeating: 9, count: Self.mib))
        try eventually(20, "the upload waited past request_timeout") {
            workerList(d).contains { ($0["in_flight"] as? Int ?? 0) == 1 && ($0["request_age_s"] as? Double ?? 0) > 2.5 }
        }
        #expect(!d.logText().contains("worker_request_timeout"))
        c.send([UInt8](repeating: 9, count: Self.mib))
        let r = c.response()
        #expect(r?.status == 200 && r?.json["size"] as? Int == 2 * Self.mib, "\(r?.status ?? 0) \(r?.text ?? "")")
    }

    /// A worker killed mid-upload cannot remove its temporary file; the next worker of the
    /// tenant to start does, while a file another live worker is still writing is left
    /// alone (and its upload completes).
    @Test func aWorkerKilledMidUploadLeavesNoTemporaryFile() throws {
        let d = try Daemon()
        defer { d.cleanUp() }
        try d.start()
        let a = try d.tenant("tenant-a")
        let volume = d.volumes + "/tenant-tenant-a-data"
        let size = 20 * Self.mib
        func upload(_ name: String) throws -> RawConnection {
            let c = try d.connect()
            c.send("PUT /v1/files/\(name) HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(a)\r\nContent-Length: \(size)\r\n\r\n")
            c.send([UInt8](repeating: 1, count: 3 * Self.mib))
            return c
        }
        let one = try upload("one.bin")
        try eventually(10, "the first upload is being written") { temporaryFiles(volume).count == 1 }
        let victim = try #require(workerList(d).first { ($0["in_flight"] as? Int ?? 0) > 0 }?["pid"] as? Int)
        let two = try upload("two.bin")
        try eventually(10, "both uploads are being written") { temporaryFiles(volume).count == 2 }

        #expect(d.ctl("workers", "kill", String(victim)).status == 0)
        #expect(one.response()?.status == 502)
        try eventually(10, "the killed worker is gone (and its lock with it)") { !workerList(d).contains { $0["pid"] as? Int == victim } }
        // The next worker to start (the other one is busy with its upload) sweeps.
        #expect(try raw(d, "GET", "/v1/files/none", key: a).status == 404)
        try eventually(10, "the killed worker's temporary file is gone") { temporaryFiles(volume).count == 1 }
        two.send([UInt8](repeating: 1, count: size - 3 * Self.mib))
        let done = two.response()
        #expect(done?.status == 200 && done?.json["size"] as? Int == size, "\(done?.status ?? 0) \(done?.text ?? "")")
        #expect(temporaryFiles(volume).isEmpty)
        #expect(try raw(d, "GET", "/v1/files/two.bin", key: a).body.count == size)
    }

    /// With max_body_bytes far below the size a file is sent whole up to, mid-sized files
    /// still come back (the frame limit never goes below it); no worker is taken for broken.
    @Test func aSmallMaxBodyBytesStillServesMidSizedFiles() throws {
        let d = try Daemon(server: "max_body_bytes = 16384")
        defer { d.cleanUp() }
        try d.start()
        let a = try d.tenant("tenant-a")
        for size in [100 * 1024, 300 * 1024] {
            let content = (0..<size).map { UInt8(truncatingIfNeeded: $0 * 7) }
            #expect(try raw(d, "PUT", "/v1/files/f.bin", key: a, body: content).status == 200)
            let got = try raw(d, "GET", "/v1/files/f.bin", key: a)
            #expect(got.status == 200 && got.body == content, "\(size): \(got.status) \(got.text.prefix(200))")
        }
        #expect(!d.logText().contains("worker_crashed") && !d.logText().contains("worker_connection_lost"))
    }
}

/// `bulkheadctl workers list`, one row per worker.
func workerList(_ d: Daemon) -> [[String: Any]] {
    jsonObject(d.ctl("--json", "workers", "list").stdout)["workers"] as? [[String: Any]] ?? []
}

/// Every process below `pid` (its children, theirs, ...).
func descendants(of pid: Int32) -> [Int32] {
    let children = childProcesses(of: pid)
    return children + children.flatMap { descendants(of: $0) }
}

/// The real uid of `pid`, from /proc.
func processUID(_ pid: Int32) -> UInt32? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Uid:") }) else { return nil }
    return line.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().first.flatMap { UInt32($0) }
}

/// memcmp: `==` on 100 MiB arrays goes element by element in a debug build.
func sameBytes(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    a.count == b.count && a.withUnsafeBytes { x in b.withUnsafeBytes { y in memcmp(x.baseAddress!, y.baseAddress!, a.count) == 0 } }
}

/// The highest resident set size of `pid` so far (VmHWM), in KiB.
func peakKiB(_ pid: Int32) throws -> Int {
    let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
    let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") })
    return Int(line.split(separator: " ")[1]) ?? 0
}

/// The workers' temporary upload files in `volume` (in `.bulkhead/tmp/`, or anywhere under
/// the names earlier versions gave them).
func temporaryFiles(_ volume: String) -> [String] {
    (FileManager.default.enumerator(atPath: volume)?.allObjects as? [String] ?? []).filter {
        $0.hasPrefix(".bulkhead/tmp/") || ($0 as NSString).lastPathComponent.hasPrefix(".bulkhead-tmp-")
    }
}
