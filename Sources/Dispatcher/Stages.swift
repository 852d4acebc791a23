// The stages of the request path, each one responsibility.
import CBulkhead
import Glibc
import HTTPParser
import HTTPServer
import Store
import Synchronization
import Tenants

/// Honours a well-formed incoming X-Request-Id (1–128 of A-Z a-z 0-9 . _ -), else makes one.
public struct RequestIDStage: RequestStage {
    public init() {}

    public func apply(_ context: inout RequestContext) -> StageVerdict {
        if let given = context.exchange.head.headers["X-Request-Id"], Self.isWellFormed(given) {
            context.requestID = given
        } else {
            context.requestID = RequestIDGenerator.shared.next()
        }
        return .next
    }

    static func isWellFormed(_ s: String) -> Bool {
        let b = s.utf8
        return (1...128).contains(b.count) && b.allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2E || $0 == 0x5F || $0 == 0x2D
        }
    }
}

/// The origins browsers may call from (`[cors] allowed_origins`); replaced whole on reload.
public final class CORSPolicy: Sendable {
    private let state: Mutex<(origins: Set<String>, any: Bool)>

    public init(allowedOrigins: [String]) { state = Mutex(Self.parse(allowedOrigins)) }

    public func update(allowedOrigins: [String]) { state.withLock { $0 = Self.parse(allowedOrigins) } }

    var current: (origins: Set<String>, any: Bool) { state.withLock { $0 } }

    private static func parse(_ list: [String]) -> (origins: Set<String>, any: Bool) {
        (Set(list.map { $0.lowercased() }), list.contains("*"))
    }
}

/// CORS: remembers an allowed Origin for the response stage and answers preflight
/// requests itself, before authentication.
public struct CORSStage: RequestStage, ResponseStage {
    let policy: CORSPolicy

    public init(policy: CORSPolicy) { self.policy = policy }

    public func apply(_ context: inout RequestContext) -> StageVerdict {
        guard let origin = context.exchange.head.headers["Origin"] else { return .next }
        let (origins, any) = policy.current
        guard !origins.isEmpty, any || origins.contains(origin.lowercased()) else { return .next }
        context.allowedOrigin = any ? "*" : origin
        let head = context.exchange.head
        if head.method == .options, head.headers["Access-Control-Request-Method"] != nil {
            return .respond(HTTPResponse(status: 204, headers: [
                ("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS"),
                ("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Request-Id"),
                ("Access-Control-Max-Age", "600"),
            ]))
        }
        return .next
    }

    public func apply(_ context: RequestContext, _ response: inout HTTPResponse) {
        guard let origin = context.allowedOrigin else { return }
        response.headers.append(("Access-Control-Allow-Origin", origin))
        response.headers.append(("Access-Control-Expose-Headers", "X-Request-Id, Retry-After, RateLimit, RateLimit-Policy"))
        if origin != "*" { response.headers.append(("Vary", "Origin")) }
    }
}

/// Every response carries the request id.
public struct StampRequestIDStage: ResponseStage {
    public init() {}
    public func apply(_ context: RequestContext, _ response: inout HTTPResponse) {
        response.headers.append(("X-Request-Id", context.requestID))
    }
}

/// Finds the route. An unknown path (404) or a known path with the wrong method (405, with
/// Allow) is not answered here but left for `AuthenticateStage`, so that the refusal is
/// metered when the request carries a valid tenant key.
public struct RouteStage: RequestStage {
    let routes: [Route]
    public init(routes: [Route]) { self.routes = routes }

    public func apply(_ context: inout RequestContext) -> StageVerdict {
        let head = context.exchange.head
        var allowed: [String] = []
        for route in routes {
            guard let parameter = route.matches(path: head.path) else { continue }
            if route.method == head.method || (route.method == .get && head.method == .head) {
                context.route = route
                context.pathParameter = route.isPrefix ? parameter : nil
                return .next
            }
            allowed.append(route.method.name)
        }
        if !allowed.isEmpty {
            context.unrouted = .error(405, "method_not_allowed", "use \(allowed.joined(separator: " or ")) for \(head.path)",
                                      headers: [("Allow", allowed.joined(separator: ", "))])
        } else {
            context.unrouted = .error(404, "not_found", "no such endpoint")
        }
        return .next
    }

    /// Whether the request goes to a route that takes its body as a stream.
    func streamsBody(_ head: HTTPRequestHead) -> Bool {
        routes.contains { $0.streamsBody && $0.method == head.method && $0.matches(path: head.path) != nil }
    }
}

/// Bearer tokens: 401 with `WWW-Authenticate` for missing or invalid credentials, 403 for
/// valid ones without the right (wrong scope, admin key on a tenant route, suspended
/// tenant). Failures go to the audit log with the client address, never the token.
public struct AuthenticateStage: RequestStage {
    let authenticator: Authenticator
    let audit: AuditWriter?
    let clock: @Sendable () -> Int64

    public init(authenticator: Authenticator, audit: AuditWriter?, clock: @escaping @Sendable () -> Int64) {
        self.authenticator = authenticator
        self.audit = audit
        self.clock = clock
    }

    public func apply(_ context: inout RequestContext) -> StageVerdict {
        guard let route = context.route else { return unrouted(&context) }
        if case .public_ = route.access { return .next }
        guard let header = context.exchange.head.headers["Authorization"] else {
            return .respond(.error(401, "unauthorized", "an API key is required: Authorization: Bearer <key>",
                                   headers: [("WWW-Authenticate", #"Bearer realm="bulkhead""#)]))
        }
        guard let token = Self.bearerToken(header) else {
            return refuse(context, .invalidToken(.malformed), 401, "the Authorization header must be \"Bearer <key>\"")
        }
        let principal: Principal
        switch authenticator.authenticate(token, now: clock()) {
        case .success(let p): principal = p
        case .failure(let f):
            if f == .tenantRestoring {
                return .respond(.error(503, "tenant_restoring", "the tenant's data is being restored; try again shortly",
                                       headers: [("Retry-After", "5")]))
            }
            if f.isForbidden { return refuse(context, f, 403, "the tenant is suspended", code: "tenant_suspended") }
            return refuse(context, f, 401, "the API key is not valid")
        }
        // Known before the checks below, so their refusals are the key's tenant's (metered).
        context.principal = principal
        switch (route.access, principal) {
        case (.tenant(let scope), .tenant):
            guard principal.has(scope: scope) else {
                return .respond(.error(403, "insufficient_scope", "this key does not have the \(scope) scope",
                                       headers: [("WWW-Authenticate", #"Bearer error="insufficient_scope", scope="\#(scope)""#)]))
            }
        case (.tenant, .admin):
            return .respond(.error(403, "forbidden", "an admin key cannot act as a tenant; use the tenant's own key"))
        case (.admin, .admin):
            break
        case (.admin, .tenant):
            return .respond(.error(403, "forbidden", "this endpoint needs an admin key"))
        case (.public_, _):
            break
        }
        return .next
    }

    /// A 404 or 405 (RouteStage) is answered as it is, whatever the credentials; only a
    /// bearer token that is valid makes it its tenant's. A request without one costs no
    /// token check, and a token that fails here is neither audited nor answered 401.
    private func unrouted(_ context: inout RequestContext) -> StageVerdict {
        let refusal = context.unrouted ?? .error(404, "not_found", "no such endpoint")
        if let header = context.exchange.head.headers["Authorization"], let token = Self.bearerToken(header),
           case .success(let principal) = authenticator.authenticate(token, now: clock()) {
            context.principal = principal
        }
        return .respond(refusal)
    }

    static func bearerToken(_ header: String) -> String? {
        guard header.utf8.count > 7, header.prefix(7).lowercased() == "bearer " else { return nil }
        return String(header.dropFirst(7))
    }

    private func refuse(_ context: RequestContext, _ failure: AuthFailure, _ status: Int, _ message: String,
                        code: String = "invalid_token") -> StageVerdict {
        audit?.record(AuditRecord(time: clock(), actor: "http \(context.exchange.peer)", action: "http.authenticate",
                                  target: context.exchange.head.path.prefix(128).description, result: "refused: \(failure.code)",
                                  detail: "request \(context.requestID)"))
        let challenge = status == 401 ? [("WWW-Authenticate", #"Bearer error="invalid_token""#)] : []
        return .respond(.error(status, code, message, headers: challenge))
    }
}
