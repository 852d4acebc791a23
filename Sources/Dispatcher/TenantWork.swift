// Running one task in the caller's tenant's worker — /v1/process, the Dict and the files
// all go this way — and what each way a worker can fail means over HTTP.
import EventLoop
import HTTPServer
import Supervisor
import Tenants
import Wire

struct TenantWork: Sendable {
    let supervisor: SupervisorLink
    let tenants: TenantDirectory

    /// Submits `task` with `body` for the request's tenant; `answer` turns the worker's
    /// response into the HTTP one (it is told the tenant id), failures map as below. A
    /// client that goes away cancels the request in the worker. `upload` and `download`
    /// stream bodies (SupervisorLink.submit).
    func run(_ context: RequestContext, _ task: String, _ body: [UInt8], upload: ByteChannel? = nil, download: ByteChannel? = nil,
             _ done: @escaping @Sendable (HTTPResponse) -> Void, _ answer: @escaping @Sendable (String, Response) -> HTTPResponse) {
        guard case .tenant(let tenantID, _, _)? = context.principal, let record = tenants.tenant(tenantID) else {
            return done(.error(403, "forbidden", "no tenant for this key"))
        }
        let identity = TenantIdentity(id: record.id, uid: record.uid, gid: record.gid)
        let ticket = supervisor.submit(tenant: identity, task: task, body: body, upload: upload, download: download) { result in
            switch result {
            case .success(let r): done(answer(tenantID, r))
            case .failure(let f): done(Self.failure(f))
            }
        }
        context.exchange.onCancel = { supervisor.cancel(ticket) }
    }

    static func failure(_ f: WorkerFailure) -> HTTPResponse {
        switch f {
        case .crashed: return .error(502, "worker_crashed", "the worker stopped before it answered")
        case .timedOut: return .error(504, "worker_timeout", "the task ran past request_timeout; its worker was stopped")
        case .overloaded(let s):
            return .error(503, "overloaded", "the tenant's workers are all busy; retry later", headers: [("Retry-After", String(max(1, s)))])
        case .unavailable(let s, let reason):
            return .error(503, "worker_unavailable", reason, headers: [("Retry-After", String(max(1, s)))])
        case .task(let e):
            switch e.code {
            case .unknownTask: return .error(404, "unknown_task", e.message)
            case .badRequest: return .error(400, "bad_request", e.message)
            case .notFound: return .error(404, "not_found", e.message)
            case .payloadTooLarge: return .error(413, "body_too_large", e.message)
            case .storageQuotaExceeded: return .error(507, "storage_quota_exceeded", e.message)
            default: return .error(500, "task_failed", e.message)
            }
        case .cancelled: return .error(499, "cancelled", "the request was cancelled")
        case .shuttingDown: return .error(503, "draining", "the server is shutting down", headers: [("Retry-After", "1")])
        case .invalidTenant: return .error(500, "internal", "invalid tenant")
        }
    }
}
