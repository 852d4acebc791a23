// The tenant Dict end to end: bytes and content types kept, listing with pagination,
// refusals with precise statuses, isolation between tenants, and writes that survive
// a kill -9 of the daemon.
import Foundation
import Testing

func raw(_ d: Daemon, _ method: String, _ path: String, key: String?, body: [UInt8]? = nil, type: String? = nil) throws -> HTTPReply {
    var text = "\(method) \(path) HTTP/1.1\r\nHost: test\r\n"
    if let key { text += "Authorization: Bearer \(key)\r\n" }
    if let type { text += "Content-Type: \(type)\r\n" }
    if let body { text += "Content-Length: \(body.count)\r\n" }
    text += "\r\n"
    let c = try d.connect()
    c.send(Array(text.utf8) + (body ?? []))
    guard let r = c.response() else { throw TestFailure("no response to \(method) \(path)") }
    return r
}

@Suite(.serialized) struct DictTests {
    @Test func bytesTypesListingAndRefusals() throws {
        let d = try Daemon()
        defer { d.cleanUp() }
        try d.start()
        let a = try d.tenant("tenant-a"), b = try d.tenant("tenant-b")
        let binary = (0...255).map(UInt8.init)
        let put = try raw(d, "PUT", "/v1/dict/bin%2F%C3%A9t%C3%A9", key: a, body: binary, type: "application/x-test")
        #expect(put.status == 201)
        #expect(put.json["key"] as? String == "bin/été")
        #expect(try raw(d, "PUT", "/v1/dict/bin%2F%C3%A9t%C3%A9", key: a, body: binary, type: "application/x-test").status == 200)
        let got = try raw(d, "GET", "/v1/dict/bin%2F%C3%A9t%C3%A9", key: a)
        #expect(got.status == 200 && got.body == binary && got.header("Content-Type") == "application/x-test")
        // Without a Content-Type, bytes are octets.
        #expect(try raw(d, "PUT", "/v1/dict/plain", key: a, body: Array("x".utf8)).status == 201)
        #expect(try raw(d, "GET", "/v1/dict/plain", key: a).header("Content-Type") == "application/octet-stream")

        // Listing: prefix, limit, and pages through `next`.
        for i in 0..<5 { #expect(try raw(d, "PUT", "/v1/dict/page-\(i)", key: a, body: [UInt8(i)]).status == 201) }
        let first = try raw(d, "GET", "/v1/dict?prefix=page-&limit=2", key: a).json
        #expect(first["keys"] as? [String] == ["page-0", "page-1"] && first["next"] as? String == "page-1")
        let second = try raw(d, "GET", "/v1/dict?prefix=page-&limit=2&after=page-1", key: a).json
        #expect(second["keys"] as? [String] == ["page-2", "page-3"])
        let last = try raw(d, "GET", "/v1/dict?prefix=page-&limit=2&after=page-3", key: a).json
        #expect(last["keys"] as? [String] == ["page-4"] && last["next"] is NSNull)
        #expect((try raw(d, "GET", "/v1/dict", key: a).json["keys"] as? [String])?.count == 7)
        // A prefix is a prefix, not a pattern.
        #expect(try raw(d, "GET", "/v1/dict?prefix=page%25", key: a).json["keys"] as? [String] == [])

        // Delete, then it is gone.
        #expect(try raw(d, "DELETE", "/v1/dict/plain", key: a).status == 204)
        #expect(try raw(d, "GET", "/v1/dict/plain", key: a).status == 404)
        #expect(try raw(d, "DELETE", "/v1/dict/plain", key: a).errorCode == "not_found")

        // Refusals, each precise.
        #expect(try raw(d, "GET", "/v1/dict/%zz", key: a).errorCode == "invalid_key")
        #expect(try raw(d, "GET", "/v1/dict/a%00b", key: a).errorCode == "invalid_key")
        #expect(try raw(d, "GET", "/v1/dict/" + String(repeating: "k", count: 513), key: a).errorCode == "key_too_long")
        #expect(try raw(d, "PUT", "/v1/dict/big", key: a, body: [UInt8](repeating: 1, count: (1 << 20) + 1)).status == 413)
        #expect(try raw(d, "GET", "/v1/dict?limit=0", key: a).errorCode == "invalid_limit")
        #expect(try raw(d, "GET", "/v1/dict?color=red", key: a).errorCode == "invalid_query")
        #expect(try raw(d, "GET", "/v1/dict/bin", key: nil).status == 401)

        // Tenant B sees nothing of A's, by any key or prefix.
        #expect(try raw(d, "GET", "/v1/dict/bin%2F%C3%A9t%C3%A9", key: b).status == 404)
        #expect(try raw(d, "GET", "/v1/dict", key: b).json["keys"] as? [String] == [])
        #expect(try raw(d, "DELETE", "/v1/dict/page-0", key: b).status == 404)
        #expect(try raw(d, "GET", "/v1/dict/page-0", key: a).status == 200)

        // A key without the dict scope is refused.
        let processOnly = try #require(apiKey(d.ctl("key", "issue", "tenant-a", "--scope", "process").stdout, json: false))
        #expect(try raw(d, "GET", "/v1/dict/page-0", key: processOnly).errorCode == "insufficient_scope")

        // An acknowledged write survives a kill -9 of the daemon (and of its workers).
        #expect(try raw(d, "PUT", "/v1/dict/durable", key: a, body: Array("kept".utf8)).status == 201)
        d.kill9()
        try d.start()
        #expect(try raw(d, "GET", "/v1/dict/durable", key: a).body == Array("kept".utf8))
        // The file is the tenant's, in its volume, out of the files namespace.
        let attrs = try FileManager.default.attributesOfItem(atPath: d.volumes + "/tenant-tenant-a-data/.bulkhead/dict.db")
        #expect((attrs[.ownerAccountID] as? NSNumber)?.uint32Value == 240_000)
    }

    /// A prefix matches bytes, as SQLite orders keys: a key whose next scalar combines with
    /// the prefix's last character (e + U+0301) is still under the prefix, and the keys
    /// after it are still listed, on every page.
    @Test func aPrefixIsBytesNotCharacters() throws {
        let d = try Daemon()
        defer { d.cleanUp() }
        try d.start()
        let a = try d.tenant("tenant-a")
        for key in ["e%CC%81", "e%EF%BC%90", "user%3A%CC%81x", "user%3A%E6%97%A5", "user%3Az", "users"] {
            #expect(try raw(d, "PUT", "/v1/dict/\(key)", key: a, body: [1]).status == 201, "\(key)")
        }
        #expect(try raw(d, "GET", "/v1/dict?prefix=e", key: a).json["keys"] as? [String] == ["e\u{301}", "e\u{FF10}"])
        #expect(try raw(d, "GET", "/v1/dict?prefix=user%3A", key: a).json["keys"] as? [String]
                == ["user:z", "user:\u{301}x", "user:\u{65E5}"])
        let first = try raw(d, "GET", "/v1/dict?prefix=user%3A&limit=1", key: a).json
        #expect(first["keys"] as? [String] == ["user:z"])
        let next = try #require(first["next"] as? String)
        let second = try raw(d, "GET", "/v1/dict?prefix=user%3A&limit=2&after=" + next.addingPercentEncoding(withAllowedCharacters: .alphanumerics)!,
                             key: a).json
        #expect(second["keys"] as? [String] == ["user:\u{301}x", "user:\u{65E5}"])
    }
}
