// The tenant's Dict over HTTP (SPEC §4): GET/PUT/DELETE /v1/dict/{key} and
// GET /v1/dict?prefix=&limit=&after=. Every call is a built-in task run by the tenant's
// own worker, inside its sandbox, on the SQLite file in its volume; the dispatcher never
// opens it. Keys travel percent-encoded in the path; values are bytes, and their
// Content-Type is kept and given back.
import HTTPServer
import JSON
import Supervisor
import Tenants
import Wire

struct DictService: Sendable {
    let supervisor: SupervisorLink
    let tenants: TenantDirectory

    static let maxKeyBytes = 512
    static let maxValueBytes = 1 << 20

    func get(_ context: RequestContext, _ done: @escaping @Sendable (HTTPResponse) -> Void) {
        guard let key = key(context, done) else { return }
        run(context, "dict.get", Array(key.utf8), done) { body in
            guard let entry = DictCodec.decodeEntry(body) else { return .error(502, "worker_bad_response", "malformed dict entry") }
            return HTTPResponse(status: 200, headers: [("Content-Type", entry.contentType)], body: entry.value)
        }
    }

    func put(_ context: RequestContext, _ done: @escaping @Sendable (HTTPResponse) -> Void) {
        guard let key = key(context, done) else { return }
        let body = context.exchange.body
        guard body.count <= Self.maxValueBytes else {
            return done(.error(413, "value_too_large", "a dict value is at most \(Self.maxValueBytes) bytes"))
        }
        let type = context.exchange.head.headers["Content-Type"] ?? "application/octet-stream"
        guard (1...127).contains(type.utf8.count) else {
            return done(.error(400, "invalid_content_type", "the Content-Type must be 1 to 127 characters"))
        }
        run(context, "dict.put", DictCodec.put(key: key, contentType: type, value: body), done) { answer in
            let created = String(decoding: answer, as: UTF8.self).contains("true")
            return .json(created ? 201 : 200, JSONValue.object(JSONObject([("key", .string(key)), ("created", .bool(created))])).serialized())
        }
    }

    func delete(_ context: RequestContext, _ done: @escaping @Sendable (HTTPResponse) -> Void) {
        guard let key = key(context, done) else { return }
        run(context, "dict.delete", Array(key.utf8), done) { _ in HTTPResponse(status: 204) }
    }

    func list(_ context: RequestContext, _ done: @escaping @Sendable (HTTPResponse) -> Void) {
        var q: [String: String] = [:]
        for pair in (context.exchange.head.query ?? "").split(separator: "&") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(kv[0])
            guard ["prefix", "after", "limit"].contains(name), q[name] == nil,
                  let value = PercentDecoding.decode(kv.count == 2 ? String(kv[1]) : "") else {
                return done(.error(400, "invalid_query", "use prefix=, after= and limit= (1-1000), each at most once and percent-encoded"))
            }
            q[name] = value
        }
        let limit = q["limit"].map { Int($0) ?? 0 } ?? 100
        guard (1...1000).contains(limit) else { return done(.error(400, "invalid_limit", "limit must be from 1 to 1000")) }
        let prefix = q["prefix"] ?? ""
        guard prefix.utf8.count <= Self.maxKeyBytes, (q["after"]?.utf8.count ?? 0) <= Self.maxKeyBytes else {
            return done(.error(400, "key_too_long", "a dict key is at most \(Self.maxKeyBytes) bytes"))
        }
        run(context, "dict.list", DictCodec.list(prefix: prefix, after: q["after"], limit: limit), done) { body in
            let keys = DictCodec.decodeKeys(body)
            let next: JSONValue = keys.count == limit ? .string(keys.last!) : .null
            return .json(200, JSONValue.object(JSONObject([("keys", .array(keys.map(JSONValue.string))), ("next", next)])).serialized())
        }
    }

    /// The key from the path: percent-decoded, 1–512 bytes of UTF-8 without NUL.
    private func key(_ context: RequestContext, _ done: @escaping @Sendable (HTTPResponse) -> Void) -> String? {
        guard let raw = context.pathParameter, let key = PercentDecoding.decode(raw), !key.isEmpty else {
            done(.error(400, "invalid_key", "the key must be 1 to 512 bytes of percent-encoded UTF-8, without NUL"))
            return nil
        }
        guard key.utf8.count <= Self.maxKeyBytes else {
            done(.error(400, "key_too_long", "a dict key is at most \(Self.maxKeyBytes) bytes"))
            return nil
        }
        return key
    }

    private func run(_ context: RequestContext, _ task: String, _ body: [UInt8], _ done: @escaping @Sendable (HTTPResponse) -> Void,
                     _ answer: @escaping @Sendable ([UInt8]) -> HTTPResponse) {
        guard case .tenant(let tenantID, _, _)? = context.principal, let record = tenants.tenant(tenantID) else {
            return done(.error(403, "forbidden", "no tenant for this key"))
        }
        let identity = TenantIdentity(id: record.id, uid: record.uid, gid: record.gid)
        let ticket = supervisor.submit(tenant: identity, task: task, body: body) { result in
            switch result {
            case .success(let r): done(answer(r.body))
            case .failure(let f): done(ProcessService.failure(f))
            }
        }
        context.exchange.onCancel = { supervisor.cancel(ticket) }
    }
}

/// RFC 3986 percent-decoding into UTF-8 text; nil for a malformed escape, invalid UTF-8
/// or a NUL.
enum PercentDecoding {
    static func decode(_ text: String) -> String? {
        var bytes: [UInt8] = []
        var it = Array(text.utf8)[...]
        while let b = it.popFirst() {
            if b == UInt8(ascii: "%") {
                guard let h = it.popFirst().flatMap(hex), let l = it.popFirst().flatMap(hex) else { return nil }
                bytes.append(h << 4 | l)
            } else {
                bytes.append(b)
            }
        }
        guard !bytes.contains(0), let s = String(validating: bytes, as: UTF8.self) else { return nil }
        return s
    }

    static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x41...0x46: c - 0x41 + 10
        case 0x61...0x66: c - 0x61 + 10
        default: nil
        }
    }
}
