// The tenant's files over HTTP (SPEC §4): GET/PUT/DELETE /v1/files/{path} and
// GET /v1/files?prefix=. Every call is a built-in task run by the tenant's worker inside
// its chroot; the dispatcher never opens a tenant path. Paths are refused with 400 when
// they try to leave the volume (`..`, a leading `/`, NUL, overlong), even though the
// chroot would stop them anyway. Writes are checked against the tenant's storage quota
// (507 storage_quota_exceeded, the previous file left intact), counting what the tenant's
// other writes in flight have reserved (StorageReservations).
// File bodies stream both ways (HTTP ⇄ ByteChannel ⇄ DATA frames ⇄ the worker's file), so
// the daemon holds about a megabyte of a file per hop, whatever its size; uploads are
// bounded by [sandbox] max_file_size and the quota, not by [server] max_body_bytes.
// Sizes in a worker's answers are checked before use: one it cannot mean is a broken
// answer (502 worker_bad_response), never a number to trust.
import EventLoop
import HTTPServer
import JSON
import Metering
import Wire

struct FilesService: Sendable {
    let work: TenantWork
    let storage: StorageReservations
    let meter: UsageMeter
    /// `[sandbox] max_file_size` as now configured (it changes on reload).
    let maxFileSize: @Sendable () -> UInt64

    func get(_ context: RequestContext, _ done: @escaping @Sendable (HTTPResponse) -> Void) {
        guard let path = path(context, done) else { return }
        let download = ByteChannel()
        work.run(context, "files.get", Array(path.utf8), download: download, done) { _, r in
            guard r.streamed else {
                return HTTPResponse(status: 200, headers: [("Content-Type", "application/octet-stream")], body: r.body)
            }
            guard r.body.count == 8, let size = Int(exactly: FilePath.read64(r.body, 0)) else {
                download.cancel()  // the worker is told to stop streaming
                return Self.badAnswer("a streamed file's size")
            }
            var response = HTTPResponse(status: 200, headers: [("Content-Type", "application/octet-stream")])
            response.stream = (download, size)
            return response
        }
    }

    /// The upload reserves its declared length (or, chunked, what remains of the quota, at
    /// most max_file_size) until it ends; the worker checks the quota against the volume
    /// plus the other writes' reservations, net of the file it replaces.
    func put(_ context: RequestContext, _ done: @escaping @Sendable (HTTPResponse) -> Void) {
        guard let path = path(context, done) else { return }
        guard case .tenant(let tenant, _, _)? = context.principal else { return done(.error(403, "forbidden", "no tenant for this key")) }
        let exchange = context.exchange
        guard let upload = exchange.bodyStream else {
            return done(.error(500, "internal", "the file body was not streamed"))
        }
        let length = exchange.head.contentLength
        let standing = length.map { storage.reserve(tenant, bytes: Self.blocks(Int64($0))) }
            ?? storage.reserve(tenant, upTo: Int64(clamping: maxFileSize()))
        let reservation = standing.reservation
        let head = FilePath.put(path: path, quota: UInt64(standing.quota), used: UInt64(standing.used), length: length)
        let meter = meter
        let finish: @Sendable (HTTPResponse) -> Void = { response in
            reservation.release()  // after the answer below has counted the growth
            done(response)
        }
        work.run(context, "files.put", head, upload: upload, finish) { tenant, r in
            // The worker cannot have stored more than came in, nor grown the volume by more
            // than the new file's blocks.
            let sent = UInt64(upload.totalBytes)
            guard r.body.count == 16, case let size = FilePath.read64(r.body, 0), size <= sent,
                  case let delta = Int64(bitPattern: FilePath.read64(r.body, 8)),
                  (-StorageReservations.ceiling...Self.blocks(Int64(size))).contains(delta) else {
                return Self.badAnswer("a file write")
            }
            meter.storageChanged(tenant, by: delta)
            return .json(200, JSONValue.object(JSONObject([("path", .string(path)), ("size", .number(JSONNumber(Int64(size))))])).serialized())
        }
    }

    func delete(_ context: RequestContext, _ done: @escaping @Sendable (HTTPResponse) -> Void) {
        guard let path = path(context, done) else { return }
        let meter = meter
        work.run(context, "files.delete", Array(path.utf8), done) { tenant, r in
            let delta = Int64(bitPattern: FilePath.read64(r.body, 0))
            guard r.body.count == 8, (-StorageReservations.ceiling...0).contains(delta) else { return Self.badAnswer("a file delete") }
            meter.storageChanged(tenant, by: delta)
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

    /// Bytes in whole 4 KiB blocks, as the worker and the storage scan count a file.
    static func blocks(_ bytes: Int64) -> Int64 {
        let b = min(max(0, bytes), StorageReservations.ceiling)
        return (b + 4095) / 4096 * 4096
    }

    static func badAnswer(_ what: String) -> HTTPResponse {
        .error(502, "worker_bad_response", "the worker's answer to \(what) is malformed or impossible")
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
