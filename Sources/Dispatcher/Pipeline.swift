// The request path as an explicit, ordered list of stages (SPEC §1):
//   request id → CORS preflight → route → authenticate (which answers 404 and 405, so
//   they are metered for a valid tenant key) → admission (rate limits,
//   quotas) → handler → response stages (request id, CORS, rate-limit headers)
//   → [metering, access log]
// A request stage either passes the request on or answers it; the admission stage may
// answer later (Redis), and the handler answers asynchronously; response stages decorate
// every answer, errors included.
import EventLoop
import HTTPParser
import HTTPServer
import RateLimit
import Tenants

/// What the stages learn about a request as it goes.
public struct RequestContext: Sendable {
    public let exchange: HTTPExchange
    public var requestID: String = ""
    public var route: Route?
    public var pathParameter: String?
    /// The 404 or 405 for a request that matched no route, answered after authentication.
    public var unrouted: HTTPResponse?
    public var principal: Principal?
    /// The request's Origin when it is allowed (CORS).
    public var allowedOrigin: String?
    /// The admitted request's place under its tenant's limits, released once answered.
    public var grant: Grant?

    init(exchange: HTTPExchange) { self.exchange = exchange }

    /// The body bytes `response` sends: none to a HEAD request (its Content-Length is the
    /// GET answer's, but no body follows).
    func bodyBytesOut(_ response: HTTPResponse) -> Int {
        exchange.head.method == .head ? 0 : response.stream?.length ?? response.body.count
    }
}

public enum StageVerdict: Sendable {
    case next
    case respond(HTTPResponse)
}

public protocol RequestStage: Sendable {
    func apply(_ context: inout RequestContext) -> StageVerdict
}

/// A stage that may decide later, on any thread; the pipeline goes on on the request's loop.
public protocol AsyncRequestStage: Sendable {
    func apply(_ context: RequestContext, _ resume: @escaping @Sendable (RequestContext, StageVerdict) -> Void)
}

public protocol ResponseStage: Sendable {
    func apply(_ context: RequestContext, _ response: inout HTTPResponse)
}

/// A route's handler: answers through `done`, from any thread.
public typealias RouteHandler = @Sendable (RequestContext, @escaping @Sendable (HTTPResponse) -> Void) -> Void

public struct Route: Sendable {
    public enum Access: Sendable { case public_, tenant(scope: String), admin }
    public let method: HTTPMethod
    /// A path, or a prefix ending in "/" whose remainder is the path parameter.
    public let path: String
    public let access: Access
    /// The handler takes the body as it arrives (`exchange.bodyStream`), not whole.
    public let streamsBody: Bool
    public let handler: RouteHandler

    public init(_ method: HTTPMethod, _ path: String, _ access: Access, streamsBody: Bool = false,
                _ handler: @escaping RouteHandler) {
        self.method = method
        self.path = path
        self.access = access
        self.streamsBody = streamsBody
        self.handler = handler
    }

    var isPrefix: Bool { path.hasSuffix("/") }

    /// The path parameter ("" for an exact route) if `path` is this route's; nil if not.
    func matches(path requested: String) -> String? {
        guard isPrefix else { return requested == path ? "" : nil }
        guard requested.hasPrefix(path), requested.count > path.count else { return nil }
        return String(requested.dropFirst(path.count))
    }
}

/// Runs the stages and the routed handler for each request.
public final class Pipeline: HTTPHandler {
    let requestStages: [RequestStage]
    let admission: AsyncRequestStage?
    let responseStages: [ResponseStage]
    let streamed: @Sendable (HTTPRequestHead) -> Bool
    let refusals: @Sendable (Int) -> Void

    /// `refusals` counts what the HTTP server answers on its own (no stage sees those).
    public init(requestStages: [RequestStage], admission: AsyncRequestStage? = nil, responseStages: [ResponseStage],
                streamsBody: @escaping @Sendable (HTTPRequestHead) -> Bool = { _ in false },
                refusals: @escaping @Sendable (Int) -> Void = { _ in }) {
        self.requestStages = requestStages
        self.admission = admission
        self.responseStages = responseStages
        self.streamed = streamsBody
        self.refusals = refusals
    }

    public func streamsBody(_ head: HTTPRequestHead) -> Bool { streamed(head) }

    public func refused(status: Int) { refusals(status) }

    public func handle(_ exchange: HTTPExchange) {
        var context = RequestContext(exchange: exchange)
        for stage in requestStages {
            if case .respond(let response) = stage.apply(&context) {
                finish(context, response)
                return
            }
        }
        guard let admission, context.route != nil else { return route(context) }
        admission.apply(context) { [self] context, verdict in
            let loop = context.exchange.loop
            if loop.inLoop {
                resume(context, verdict)
            } else {
                let bound = LoopBound((self, context, verdict), loop: loop)
                loop.execute { let (p, c, v) = bound.value; p.resume(c, v) }
            }
        }
    }

    private func resume(_ context: RequestContext, _ verdict: StageVerdict) {
        if case .respond(let response) = verdict { return finish(context, response) }
        route(context)
    }

    private func route(_ context: RequestContext) {
        guard let route = context.route else {
            finish(context, context.unrouted ?? .error(404, "not_found", "no such endpoint"))
            return
        }
        route.handler(context) { [self] response in finish(context, response) }
    }

    private func finish(_ context: RequestContext, _ response: HTTPResponse) {
        var r = response
        for stage in responseStages { stage.apply(context, &r) }
        context.exchange.respond(r)
    }
}
