// The tenant's Dict over HTTP (SPEC §4): GET/PUT/DELETE /v1/dict/{key} and
// GET /v1/dict?prefix=&limit=&after=. Every call is a built-in task run by the tenant's
// own worker, inside its sandbox, on the SQLite file in its volume; the dispatcher never
// opens it. Keys travel percent-encoded in the path; values are bytes, and their
// Content-Type is kept and given back. The Dict lives in the volume, so a PUT counts
// against the storage quota like a file upload (StorageReservations), and what it grew
// the volume by goes to the meter.
import HTTPServer
import JSON
import Metering
import Wire

struct DictService: Sendable {
    let work: TenantWork
    let storage: StorageReservations
    let meter: UsageMeter

    func get(_ context: RequestContext, _ done: @escaping @Sendable (HTTPResponse) -> Void) {
        guard let key = key(context, done) else { return }
        work.run(context, "dict.get", Array(key.utf8), done) { _, r in
            guard let entry = DictCodec.decodeEntry(r.body) else { return .error(502, "worker_bad_response", "malformed dict entry") }
            return HTTPResponse(status: 200, headers: [("Content-Type", entry.contentType)], body: entry.value)
        }
    }

    /// The value's size is reserved and checked against the quota before the worker sees
    /// it (a value refused leaves the previous one intact). The worker reports how much
    /// the Dict's files grew; a worker that does not say counts the value's size, and the
    /// next storage scan corrects either.
    func put(_ context: RequestContext, _ done: @escaping @Sendable (HTTPResponse) -> Void) {
        guard let key = key(context, done) else { return }
        guard case .tenant(let tenant, _, _)? = context.principal else { return done(.error(403, "forbidden", "no tenant for this key")) }
        let body = context.exchange.body
        guard body.count <= DictCodec.maxValueBytes else {
            return done(.error(413, "value_too_large", "a dict value is at most \(DictCodec.maxValueBytes) bytes"))
        }
        let type = context.exchange.head.headers["Content-Type"] ?? "application/octet-stream"
        guard (1...DictCodec.maxContentTypeBytes).contains(type.utf8.count) else {
            return done(.error(400, "invalid_content_type", "the Content-Type must be 1 to \(DictCodec.maxContentTypeBytes) characters"))
        }
        let size = Int64(body.count)
        let standing = storage.reserve(tenant, bytes: size)
        let reservation = standing.reservation
        guard size <= standing.remaining else {
            reservation.release()
            return done(.error(507, "storage_quota_exceeded",
                               "a value of \(size) bytes would take the volume past its storage quota of \(standing.quota) bytes "
                               + "(\(standing.used) used or being written)"))
        }
        let meter = meter
        let finish: @Sendable (HTTPResponse) -> Void = { response in
            reservation.release()  // after the answer below has counted the growth
            done(response)
        }
        work.run(context, "dict.put", DictCodec.put(key: key, contentType: type, value: body), finish) { tenant, r in
            guard let answer = try? JSONParser.parse(r.body), let created = answer["created"]?.boolValue else {
                return .error(502, "worker_bad_response", "malformed answer to a dict write")
            }
            // A growth beyond any plausible file is not believed.
            let growth = answer["growth"]?.intValue.flatMap { abs($0) <= StorageReservations.ceiling ? $0 : nil } ?? size
            meter.storageChanged(tenant, by: growth)
            return .json(created ? 201 : 200, JSONValue.object(JSONObject([("key", .string(key)), ("created", .bool(created))])).serialized())
        }
    }

    func delete(_ context: RequestContext, _ done: @escaping @Sendable (HTTPResponse) -> Void) {
        guard let key = key(context, done) else { return }
        work.run(context, "dict.delete", Array(key.utf8), done) { _, _ in HTTPResponse(status: 204) }
    }

    func list(_ context: RequestContext, _ done: @escaping @Sendable (HTTPResponse) -> Void) {
        guard let q = Query.parse(context.exchange.head.query, allowed: ["prefix", "after", "limit"]) else {
            return done(.error(400, "invalid_query", "use prefix=, after= and limit= (1-1000), each at most once and percent-encoded"))
        }
        let limit = q["limit"].map { Int($0) ?? 0 } ?? 100
        guard (1...1000).contains(limit) else { return done(.error(400, "invalid_limit", "limit must be from 1 to 1000")) }
        let prefix = q["prefix"] ?? ""
        guard prefix.utf8.count <= DictCodec.maxKeyBytes, (q["after"]?.utf8.count ?? 0) <= DictCodec.maxKeyBytes else {
            return done(.error(400, "key_too_long", "a dict key is at most \(DictCodec.maxKeyBytes) bytes"))
        }
        work.run(context, "dict.list", DictCodec.list(prefix: prefix, after: q["after"], limit: limit), done) { _, r in
            let keys = DictCodec.decodeKeys(r.body)
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
        guard key.utf8.count <= DictCodec.maxKeyBytes else {
            done(.error(400, "key_too_long", "a dict key is at most \(DictCodec.maxKeyBytes) bytes"))
            return nil
        }
        return key
    }
}
