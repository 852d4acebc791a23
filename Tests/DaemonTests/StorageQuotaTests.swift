// The storage quota against writes in flight: uploads running at once cannot together
// pass it, a reservation ends however its request ends (answered, abandoned by its
// client, its worker killed), a chunked upload holds what remains of the quota, and Dict
// values count like files. A worker's answer with an impossible size is refused, never
// trusted or trapped on.
import Foundation
import Testing

/// Workers with a request in flight (`bulkheadctl workers list`).
private func workersInFlight(_ d: Daemon) -> Int {
    let rows = jsonObject(d.ctl("--json", "workers", "list").stdout)["workers"] as? [[String: Any]] ?? []
    return rows.filter { ($0["in_flight"] as? Int ?? 0) > 0 }.count
}

/// The tenant's storage figure in bytes, as its usage shows it.
private func storageBytes(_ d: Daemon, _ tenant: String) -> Int {
    Int(((usageOf(d, tenant)["storage_gb"] as? Double) ?? 0) * 1_073_741_824)
}

private func uploadHead(_ path: String, key: String, length: Int) -> String {
    "PUT /v1/files/\(path) HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(key)\r\nContent-Length: \(length)\r\n\r\n"
}

@Suite(.serialized) struct StorageQuotaTests {
    static let size = 900 * 1024

    @Test func uploadsInFlightShareTheQuotaAndGiveBackTheirReservations() throws {
        let d = try Daemon()
        defer { d.cleanUp() }
        try d.start()
        let a = try d.tenant("tenant-a")
        #expect(d.ctl("limits", "set", "tenant-a", "--storage-gb", "0.001").status == 0)  // 1,073,741 bytes
        let body = [UInt8](repeating: 1, count: Self.size)

        // Four uploads of 900 KiB at once: each reserves its length, so only one fits.
        var uploads: [RawConnection] = []
        for i in 0..<4 {
            let c = try d.connect()
            c.send(uploadHead("f\(i).bin", key: a, length: Self.size))
            c.send(Array(body[..<1000]))
            uploads.append(c)
        }
        for c in uploads { c.send(Array(body[1000...])) }
        let statuses = uploads.map { $0.response()?.status ?? 0 }
        #expect(statuses.sorted() == [200, 507, 507, 507])
        let files = try raw(d, "GET", "/v1/files", key: a).json["files"] as? [[String: Any]] ?? []
        #expect(files.count == 1)
        let kept = try #require(statuses.firstIndex(of: 200))
        #expect(try raw(d, "DELETE", "/v1/files/f\(kept).bin", key: a).status == 204)

        // A client that goes away mid-upload: its reservation holds while it runs, and is
        // given back once the worker has let the request go.
        do {
            let c = try d.connect()
            c.send(uploadHead("abandoned.bin", key: a, length: Self.size))
            c.send(Array(body[..<1000]))
            try eventually(10, "the upload reached a worker") { workersInFlight(d) == 1 }
            #expect(try raw(d, "PUT", "/v1/files/other.bin", key: a, body: body).status == 507)
        }
        try eventually(10, "the abandoned upload's reservation is given back") {
            try raw(d, "PUT", "/v1/files/other.bin", key: a, body: body).status == 200
        }
        #expect(try raw(d, "DELETE", "/v1/files/other.bin", key: a).status == 204)

        // Its worker killed mid-upload: the 502 comes after the reservation is given back.
        let c = try d.connect()
        c.send(uploadHead("killed.bin", key: a, length: Self.size))
        c.send(Array(body[..<1000]))
        try eventually(10, "the upload reached a worker") { workersInFlight(d) == 1 }
        #expect(d.ctl("workers", "kill", "tenant-a").status == 0)
        #expect(c.response()?.status == 502)
        #expect(try raw(d, "PUT", "/v1/files/other.bin", key: a, body: body).status == 200)
        let left = try raw(d, "GET", "/v1/files", key: a).json["files"] as? [[String: Any]] ?? []
        #expect(left.map { $0["path"] as? String } == ["other.bin"] && left.first?["size"] as? Int == Self.size)
    }

    @Test func aChunkedUploadHoldsWhatRemainsOfTheQuota() throws {
        let d = try Daemon()
        defer { d.cleanUp() }
        try d.start()
        let a = try d.tenant("tenant-a")
        #expect(d.ctl("limits", "set", "tenant-a", "--storage-gb", "0.001").status == 0)
        let c = try d.connect()
        c.send("PUT /v1/files/chunked.bin HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer \(a)\r\nTransfer-Encoding: chunked\r\n\r\n")
        c.send("3e8\r\n" + String(repeating: "x", count: 1000) + "\r\n")
        try eventually(10, "the upload reached a worker") { workersInFlight(d) == 1 }
        // While it runs, nothing else fits, not even a small Dict value.
        let refused = try raw(d, "PUT", "/v1/dict/small", key: a, body: [UInt8](repeating: 2, count: 100))
        #expect(refused.status == 507 && refused.errorCode == "storage_quota_exceeded")
        c.send("0\r\n\r\n")
        let done = c.response()
        #expect(done?.status == 200 && done?.json["size"] as? Int == 1000)
        #expect(try raw(d, "PUT", "/v1/dict/small", key: a, body: [UInt8](repeating: 2, count: 100)).status == 201)
    }

    @Test func dictValuesCountAgainstTheQuota() throws {
        let d = try Daemon()
        defer { d.cleanUp() }
        try d.start()
        let a = try d.tenant("tenant-a")
        #expect(d.ctl("limits", "set", "tenant-a", "--storage-gb", "0.00001").status == 0)  // 10,737 bytes
        for i in 0..<8 {
            let r = try raw(d, "PUT", "/v1/dict/k\(i)", key: a, body: [UInt8](repeating: UInt8(i), count: 512 * 1024))
            #expect(r.status == 507 && r.errorCode == "storage_quota_exceeded")
            let message = (r.json["error"] as? [String: Any])?["message"] as? String ?? ""
            #expect(message.contains("524288 bytes"), "\(message)")
        }
        #expect(try raw(d, "GET", "/v1/dict", key: a).json["keys"] as? [String] == [])

        // A value that fits is stored, and the volume's figure grows at once by what the
        // Dict's files grew (at least the value).
        #expect(d.ctl("limits", "set", "tenant-a", "--storage-gb", "0.01").status == 0)
        let before = storageBytes(d, "tenant-a")
        let first = [UInt8](repeating: 7, count: 300 * 1024)
        #expect(try raw(d, "PUT", "/v1/dict/big", key: a, body: first).status == 201)
        let after = storageBytes(d, "tenant-a")
        #expect(after >= before + first.count, "\(before) → \(after)")

        // Once it no longer fits, a new value is refused and the stored one stays.
        let quota = Double(after + 100 * 1024) / 1_073_741_824
        #expect(d.ctl("limits", "set", "tenant-a", "--storage-gb", String(format: "%.12f", quota)).status == 0)
        let over = try raw(d, "PUT", "/v1/dict/big", key: a, body: [UInt8](repeating: 8, count: 300 * 1024))
        #expect(over.status == 507)
        #expect(try raw(d, "GET", "/v1/dict/big", key: a).body == first)
        #expect(try raw(d, "PUT", "/v1/dict/tiny", key: a, body: [1]).status == 201)
    }

    /// The hostile worker's file tasks announce 2^63 bytes: a broken answer (502), and the
    /// daemon goes on serving.
    @Test func impossibleSizesFromAWorkerAreRefused() throws {
        let d = try Daemon(hostile: true)
        defer { d.cleanUp() }
        try d.start()
        let a = try d.tenant("tenant-a")
        let got = try raw(d, "GET", "/v1/files/any.bin", key: a)
        #expect(got.status == 502 && got.errorCode == "worker_bad_response")
        let put = try raw(d, "PUT", "/v1/files/any.bin", key: a, body: Array("ten bytes!".utf8))
        #expect(put.status == 502 && put.errorCode == "worker_bad_response")
        // The lying stream was stopped, and everyone is still served.
        try eventually(10, "no worker holds the refused download") { workersInFlight(d) == 0 }
        #expect(try d.call(key: a, body: echo("1")).status == 200)
        let b = try d.tenant("tenant-b")
        #expect(try d.call(key: b, body: echo("2")).status == 200)
        #expect(storageBytes(d, "tenant-a") < 1 << 20)  // the claimed bytes were not counted
    }
}
