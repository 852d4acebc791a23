// The access log: one `request` record per answered request (SPEC §9) — request id,
// method, path (never the query or a header: no token reaches the log), status, tenant,
// duration and bytes. `[log] requests` turns it off and on, live.
import HTTPServer
import Log
import Synchronization
import Tenants

/// Whether requests are logged; changed on reload.
public final class AccessLogSwitch: Sendable {
    private let on: Atomic<Bool>
    public init(_ on: Bool) { self.on = Atomic(on) }
    public var isOn: Bool { on.load(ordering: .relaxed) }
    public func set(_ value: Bool) { on.store(value, ordering: .relaxed) }
}

public struct AccessLogStage: ResponseStage {
    let log: Logger
    let enabled: AccessLogSwitch

    public func apply(_ context: RequestContext, _ response: inout HTTPResponse) {
        guard enabled.isOn, log.minimum <= .info else { return }
        let exchange = context.exchange
        let now = exchange.loop.now
        var fields: [(String, LogValue)] = [
            ("request_id", .string(context.requestID)), ("method", .string(exchange.head.method.name)),
            ("path", .string(exchange.head.path)), ("status", .of(response.status)),
            ("duration_us", .of(now > exchange.receivedAt ? (now - exchange.receivedAt) / 1000 : 0)),
            ("bytes_in", .of(exchange.bodyBytes)), ("bytes_out", .of(context.bodyBytesOut(response))),
            ("peer", .string(exchange.peer)),
        ]
        switch context.principal {
        case .tenant(let id, _, _)?: fields.append(("tenant", .string(id)))
        case .admin(let name, _)?: fields.append(("admin", .string(name)))
        default: break
        }
        log.info("request", fields)
    }
}
