// Usage over HTTP (SPEC §4, §8): a tenant's own (`GET /v1/usage`), any tenant's for an
// admin (`GET /stats/{id}`, `GET /v1/admin/tenants/{id}/usage`), and the monthly billing
// export (`GET /v1/admin/usage?month=YYYY-MM&format=csv|json`). And the stage that meters
// every tenant response.
import Dispatch
import Glibc
import HTTPServer
import JSON
import Metering
import Store
import Supervisor
import Tenants

/// The last response stage: one usage event per tenant request, refused ones included.
public struct MeteringStage: ResponseStage {
    let meter: UsageMeter

    public func apply(_ context: RequestContext, _ response: inout HTTPResponse) {
        guard case .tenant(let tenant, _, _)? = context.principal else { return }
        meter.request(tenant, status: response.status, bytesIn: context.exchange.bodyBytes, bytesOut: context.bodyBytesOut(response))
    }
}

struct UsageService: Sendable {
    let meter: UsageMeter
    let store: Store
    /// Usage reads query SQLite and may wait for the meter's write in progress: they run
    /// here, one at a time, never on an event loop.
    let reads = DispatchQueue(label: "bulkhead.usage-reads")

    func own(_ context: RequestContext, _ done: @escaping @Sendable (HTTPResponse) -> Void) {
        guard case .tenant(let tenant, _, _)? = context.principal else { return done(.error(403, "forbidden", "no tenant")) }
        let query = context.exchange.head.query
        reads.async { done(summary(tenant, query)) }
    }

    /// `/stats/{id}` and `/v1/admin/tenants/{id}/usage`: a tenant deleted without --purge
    /// still has its history (billing).
    func stats(_ context: RequestContext, _ done: @escaping @Sendable (HTTPResponse) -> Void) {
        let parameter = context.pathParameter ?? ""
        let id = parameter.hasSuffix("/usage") ? String(parameter.dropLast("/usage".count)) : parameter
        guard TenantIdentity.isValid(id: id) else { return done(Self.noTenant(id)) }
        let query = context.exchange.head.query
        reads.async {
            guard (try? store.tenant(id)) != nil || (try? meter.hasHistory(id)) == true else { return done(Self.noTenant(id)) }
            done(summary(id, query))
        }
    }

    func export(_ context: RequestContext, _ done: @escaping @Sendable (HTTPResponse) -> Void) {
        guard let query = Query.parse(context.exchange.head.query, allowed: ["month", "format"]) else {
            return done(Self.badQuery(["month", "format"]))
        }
        guard let month = query["month"], UsagePeriod.isDate(month, parts: 2) else {
            return done(.error(400, "invalid_month", "month=YYYY-MM is required"))
        }
        let format = query["format"] ?? "json"
        guard format == "json" || format == "csv" else { return done(.error(400, "invalid_format", "format must be csv or json")) }
        let range = UsagePeriod.month(month).range
        reads.async {
            guard let rows = try? meter.usage(tenant: nil, from: range.from, to: range.to) else {
                return done(.error(503, "store_unavailable", "the state database does not answer"))
            }
            if format == "csv" {
                return done(HTTPResponse(status: 200, headers: [("Content-Type", "text/csv; charset=utf-8"),
                                                                ("Content-Disposition", "attachment; filename=\"usage-\(month).csv\"")],
                                         body: Array(UsageReport.csv(rows: rows).utf8)))
            }
            done(.json(200, UsageReport.json(month: month, rows: rows).serialized()))
        }
    }

    private func summary(_ tenant: String, _ queryText: String?) -> HTTPResponse {
        guard let query = Query.parse(queryText, allowed: ["day", "month"]) else {
            return Self.badQuery(["day", "month"])
        }
        let today = UsageMeter.day(Int64(time(nil)))
        guard let period = UsagePeriod.parse(day: query["day"], month: query["month"], today: today) else {
            return .error(400, "invalid_period", "give day=YYYY-MM-DD or month=YYYY-MM (a real date), not both")
        }
        let range = period.range
        guard let rows = try? meter.usage(tenant: tenant, from: range.from, to: range.to),
              let todays = try? meter.usage(tenant: tenant, from: today, to: today) else {
            return .error(503, "store_unavailable", "the state database does not answer")
        }
        return .json(200, UsageReport.summary(tenant: tenant, period: period, rows: rows, today: todays.first).serialized())
    }

    static func noTenant(_ id: String) -> HTTPResponse { .error(404, "tenant_not_found", "no tenant \(AdminCommands.printable(id))") }

    static func badQuery(_ allowed: [String]) -> HTTPResponse {
        .error(400, "invalid_query", "unknown or repeated parameter; allowed: \(allowed.joined(separator: ", "))")
    }
}
