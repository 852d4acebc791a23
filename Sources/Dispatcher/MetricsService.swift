// GET /metrics (SPEC §4, §8) in the Prometheus text format, and the response stage that
// counts every answer. Labels stay low-cardinality: status classes, the statuses of the
// HTTP server's own refusals and refusal reasons; a tenant only with [metrics] per_tenant.
import HTTPServer
import Metering
import Metrics
import RateLimit
import Store
import Supervisor

/// Counts each response by status class and how long it took.
public struct MetricsStage: ResponseStage {
    let metrics: RequestMetrics

    public func apply(_ context: RequestContext, _ response: inout HTTPResponse) {
        let exchange = context.exchange
        let now = exchange.loop.now
        metrics.record(status: response.status, nanoseconds: now > exchange.receivedAt ? now - exchange.receivedAt : 0)
    }
}

struct MetricsService: Sendable {
    let requests: RequestMetrics
    let admission: Admission
    let supervisor: SupervisorLink
    let redis: RedisBackend?
    let meter: UsageMeter
    let connections: @Sendable () -> Int
    let perTenant: Bool

    func handle(_ context: RequestContext, _ done: @escaping @Sendable (HTTPResponse) -> Void) {
        let (requests, admission, redis, meter, connections, perTenant) = (requests, admission, redis, meter, connections, perTenant)
        supervisor.metrics { counters, pools in
            var text = Self.render(requests, admission.snapshot, counters, pools, redis?.isUp, connections())
            var more = PrometheusText()
            more.gauge("bulkhead_usage_flush_lag_milliseconds", "Age of the oldest usage not yet written to SQLite.",
                       Int(meter.lagSeconds * 1000))
            if perTenant { Self.renderTenants(&more, meter, pools) }
            text += more.text
            done(HTTPResponse(status: 200, headers: [("Content-Type", PrometheusText.contentType)], body: Array(text.utf8)))
        }
    }

    /// `[metrics] per_tenant`: today's usage (UTC) and live workers, by tenant. This runs on
    /// the supervisor's loop: the figures come from the meter's memory, never from SQLite.
    static func renderTenants(_ p: inout PrometheusText, _ meter: UsageMeter, _ pools: [PoolSnapshot]) {
        let rows = meter.todayUsage().sorted { $0.tenantID < $1.tenantID }
        func by(_ value: (UsageRow) -> Int64) -> [(PrometheusText.Labels, Int)] { rows.map { ([("tenant", $0.tenantID)], Int(value($0))) } }
        p.gauge("bulkhead_tenant_requests_today", "Requests of each tenant today (UTC).", by(\.requests))
        p.gauge("bulkhead_tenant_errors_today", "Error answers to each tenant today (UTC).", by(\.errors))
        p.gauge("bulkhead_tenant_rate_limited_today", "429 answers to each tenant today (UTC).", by(\.rateLimited))
        p.gauge("bulkhead_tenant_cpu_milliseconds_today", "CPU time of each tenant's workers today (UTC).", by { $0.cpuMicros / 1000 })
        p.gauge("bulkhead_tenant_workers", "Worker processes alive, by tenant.", pools.map { ([("tenant", $0.tenant)], $0.workers.count) })
    }

    static func render(_ requests: RequestMetrics, _ a: AdmissionCounters, _ s: SupervisorCounters, _ pools: [PoolSnapshot],
                       _ redisUp: Bool?, _ connections: Int) -> String {
        var p = PrometheusText()
        p.counter("bulkhead_http_requests_total", "HTTP requests answered, by status class.",
                  requests.byClass.map { ([("class", $0.0)], $0.1) })
        let h = requests.histogram
        p.counter("bulkhead_http_server_refusals_total",
                  "Requests the HTTP server answered itself (malformed, too large, too slow), also in bulkhead_http_requests_total.",
                  requests.refusalsByStatus.map { ([("status", String($0.0))], $0.1) })
        p.histogram("bulkhead_http_request_duration_seconds", "From the end of a request to its response.",
                    buckets: h.buckets, sum: h.sum, count: h.count)
        p.gauge("bulkhead_http_connections", "Client connections open.", connections)
        p.counter("bulkhead_admitted_total", "Tenant requests admitted by the rate limits and quotas.", a.admitted)
        p.counter("bulkhead_refused_total", "Tenant requests refused by the rate limits and quotas, by reason.", [
            ([("reason", "rate_limited")], a.rateLimited), ([("reason", "concurrency_limited")], a.concurrencyLimited),
            ([("reason", "quota_exceeded")], a.quotaExceeded), ([("reason", "rate_limit_unavailable")], a.backendUnavailable),
        ])
        p.counter("bulkhead_ratelimit_fallbacks_total", "Decisions made in process because Redis could not (on_backend_error = allow).",
                  a.fallbacks)
        p.counter("bulkhead_ratelimit_shadow_refusals_total", "Requests a shadow policy would have refused.", a.shadowRefusals)
        if let redisUp { p.gauge("bulkhead_ratelimit_redis_up", "1 when every connection to Redis decides.", redisUp ? 1 : 0) }
        p.gauge("bulkhead_workers", "Worker processes alive.", pools.reduce(0) { $0 + $1.workers.count })
        p.gauge("bulkhead_queued_requests", "Requests waiting for a worker.", pools.reduce(0) { $0 + $1.queued })
        p.counter("bulkhead_worker_spawns_total", "Workers started.", s.spawned)
        p.counter("bulkhead_worker_spawn_failures_total", "Workers that could not be started.", s.spawnFailures)
        p.counter("bulkhead_worker_crashes_total", "Workers that died while serving.", s.crashed)
        p.counter("bulkhead_worker_kills_total", "Workers killed at request_timeout.", s.killedForTimeout)
        p.counter("bulkhead_worker_recycled_total", "Workers retired after max_requests or replaced after a reload.", s.recycled)
        p.counter("bulkhead_worker_idle_reaped_total", "Workers stopped after idle_timeout.", s.reapedIdle)
        return p.text
    }
}
