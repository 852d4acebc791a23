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
