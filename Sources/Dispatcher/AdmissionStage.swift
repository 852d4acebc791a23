// The rate-limit and quota stage (SPEC §3, §4): a tenant's request goes on only if
// `Admission` admits it. Refusals are 429 (503 when the shared limiter cannot decide and
// on_backend_error = deny) with Retry-After and Cache-Control: no-store; every tenant
// response carries RateLimit-Policy and RateLimit.
import HTTPServer
import RateLimit
import Tenants

public struct AdmissionStage: AsyncRequestStage, ResponseStage {
    let admission: Admission

    public init(admission: Admission) { self.admission = admission }

    public func apply(_ context: RequestContext, _ resume: @escaping @Sendable (RequestContext, StageVerdict) -> Void) {
        guard case .tenant(let tenant, _, _)? = context.principal else { return resume(context, .next) }
        admission.admit(tenant) { verdict in
            switch verdict {
            case .admitted(let grant):
                var admitted = context
                admitted.grant = grant
                resume(admitted, .next)
            case .refused(let refusal, let status):
                resume(context, .respond(Self.response(refusal, status)))
            }
        }
    }

    /// Stamps the headers and gives the request's place back.
    public func apply(_ context: RequestContext, _ response: inout HTTPResponse) {
        guard let grant = context.grant else { return }
        response.headers += RateLimitHeaders.fields(grant.status)
        grant.release()
    }

    static func response(_ refusal: Refusal, _ status: RateStatus?) -> HTTPResponse {
        var headers = [("Retry-After", String(refusal.retryAfterSeconds)), ("Cache-Control", "no-store")]
        if let status { headers += RateLimitHeaders.fields(status) }
        let code = refusal.reason == .backendUnavailable ? 503 : 429
        return .error(code, refusal.reason.rawValue, refusal.message, headers: headers)
    }
}
