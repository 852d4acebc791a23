// The request path as an explicit, ordered list of stages (SPEC §1):
//   request id → CORS preflight → route → authenticate → [rate limit] → handler
//   → response stages (request id, CORS) → [metering]
// A request stage either passes the request on or answers it; the handler answers
// asynchronously; response stages decorate every answer, errors included.
import HTTPParser
import HTTPServer
import Tenants

/// What the stages learn about a request as it goes.
public struct RequestContext: Sendable {
    public let exchange: HTTPExchange
    public var requestID: String = ""
    public var route: Route?
    public var pathParameter: String?
    public var principal: Principal?
    /// The request's Origin when it is allowed (CORS).
    public var allowedOrigin: String?

    init(exchange: HTTPExchange) { self.exchange = exchange }
}

public enum StageVerdict: Sendable {
    case next
    case respond(HTTPResponse)
}

public protocol RequestStage: Sendable {
    func apply(_ context: inout RequestContext) -> StageVerdict
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
    public let handler: RouteHandler

    public init(_ method: HTTPMethod, _ path: String, _ access: Access, _ handler: @escaping RouteHandler) {
        self.method = method
        self.path = path
        self.access = access
        self.handler = handler
    }

    var isPrefix: Bool { path.hasSuffix("/") }
}

/// Runs the stages and the routed handler for each request.
public final class Pipeline: HTTPHandler {
    let requestStages: [RequestStage]
    let responseStages: [ResponseStage]

    public init(requestStages: [RequestStage], responseStages: [ResponseStage]) {
        self.requestStages = requestStages
        self.responseStages = responseStages
    }

    public func handle(_ exchange: HTTPExchange) {
        var context = RequestContext(exchange: exchange)
        for stage in requestStages {
            if case .respond(let response) = stage.apply(&context) {
                finish(context, response)
                return
            }
        }
        guard let route = context.route else {
            finish(context, .error(404, "not_found", "no such endpoint"))
            return
        }
        let ctx = context
        route.handler(ctx) { [self] response in finish(ctx, response) }
    }

    private func finish(_ context: RequestContext, _ response: HTTPResponse) {
        var r = response
        for stage in responseStages { stage.apply(context, &r) }
        context.exchange.respond(r)
    }
}
