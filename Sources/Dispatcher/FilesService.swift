// The tenant's files over HTTP (SPEC §4): GET/PUT/DELETE /v1/files/{path} and
// GET /v1/files?prefix=. Every call is a built-in task run by the tenant's worker inside
// its chroot; the dispatcher never opens a tenant path. Paths are refused with 400 when
// they try to leave the volume (`..`, a leading `/`, NUL, overlong), even though the
// chroot would stop them anyway. Writes are checked against the tenant's storage quota
// (507 storage_quota_exceeded, the previous file left intact).
// File bodies stream both ways (HTTP ⇄ ByteChannel ⇄ DATA frames ⇄ the worker's file), so
// the daemon holds about a megabyte of a file per hop, whatever its size; uploads are
// bounded by [sandbox] max_file_size and the quota, not by [server] max_body_bytes.
import EventLoop
import HTTPServer
import JSON
import Metering
import RateLimit
import Wire

struct FilesService: Sendable {
    let work: TenantWork
    let admission: Admission
    let meter: UsageMeter

    func get(_ context: RequestContext, _ done: @escaping @Sendable (HTTPResponse) -> Void) {
        guard let path = path(context, done) else { return }
        let download = ByteChannel()
        work.run(context, "files.get", Array(path.utf8), download: download, done) { _, r in
            var response = HTTPResponse(status: 200, headers: [("Content-Type", "application/octet-stream")])
            if r.streamed {
                response.stream = (download, Int(FilePath.read64(r.body, 0)))
            } else {
                response.body = r.body
            }
            return response
        }
    }

    func put(_ context: RequestContext, _ done: @escaping @Sendable (HTTPResponse) -> Void) {
        guard let path = path(context, done), case .tenant(let tenant, _, _)? = context.principal else { return }
        let gb = admission.limitTable.limits(for: tenant).storageGB
        let quota = UInt64(max(0, min(gb * 1_073_741_824, Double(UInt64.max / 2))))
        let used = UInt64(meter.storageBytes(tenant))
        let meter = meter
        let exchange = context.exchange
        guard let upload = exchange.bodyStream else {
            return done(.error(500, "internal", "the file body was not streamed"))
        }
        let head = FilePath.put(path: path, quota: quota, used: used, length: exchange.head.contentLength)
        work.run(context, "files.put", head, upload: upload, done) { tenant, r in
            let size = FilePath.read64(r.body, 0), delta = Int64(bitPattern: FilePath.read64(r.body, 8))
            meter.storageChanged(tenant, by: delta)
            return .json(200, JSONValue.object(JSONObject([("path", .string(path)), ("size", .number(JSONNumber(Int64(size))))])).serialized())
        }
    }

    func delete(_ context: RequestContext, _ done: @escaping @Sendable (HTTPResponse) -> Void) {
        guard let path = path(context, done) else { return }
        let meter = meter
        work.run(context, "files.delete", Array(path.utf8), done) { tenant, r in
            meter.storageChanged(tenant, by: Int64(bitPattern: FilePath.read64(r.body, 0)))
            return HTTPResponse(status: 204)
        }
    }

    func list(_ context: RequestContext, _ done: @escaping @Sendable (HTTPResponse) -> Void) {
        guard let q = Query.parse(context.exchange.head.query, allowed: ["prefix"]),
              (q["prefix"]?.utf8.count ?? 0) <= FilePath.maxBytes else {
            return done(.error(400, "invalid_query", "the only parameter is prefix= (percent-encoded)"))
        }
        let prefix = q["prefix"] ?? ""
        work.run(context, "files.list", Array(prefix.utf8), done) { _, r in
            let parts = r.body.split(separator: 0, omittingEmptySubsequences: false).map { String(decoding: $0, as: UTF8.self) }
            var files: [JSONValue] = []
            var i = 0
            while i + 1 < parts.count {
                files.append(.object(JSONObject([("path", .string(parts[i])), ("size", .number(JSONNumber(Int64(parts[i + 1]) ?? 0)))])))
                i += 2
            }
            return .json(200, JSONValue.object(JSONObject([("files", .array(files))])).serialized())
        }
    }

    private func path(_ context: RequestContext, _ done: @escaping @Sendable (HTTPResponse) -> Void) -> String? {
        guard let raw = context.pathParameter, let path = PercentDecoding.decode(raw) else {
            done(.error(400, "invalid_path", "the path must be percent-encoded UTF-8 without NUL"))
            return nil
        }
        if let problem = FilePath.check(path) {
            done(.error(400, "invalid_path", problem))
            return nil
        }
        return path
    }
}
