// The endpoints of SPEC §4 that this build serves, and the assembly of the pipeline.
import EventLoop
import Glibc
import HTTPParser
import HTTPServer
import JSON
import Log
import Metering
import Metrics
import RateLimit
import Store
import Supervisor
import Tenants
import Wire

public struct DispatcherSettings: Sendable {
    /// `[cors] allowed_origins`, changed in place on reload.
    public var cors: CORSPolicy
    public var workerExecutable: String
    /// The shared rate limiter, when `[ratelimit] backend = redis`: `/readyz` reports it,
    /// and is not ready while it is down unless `on_backend_error = allow`.
    public var redis: RedisBackend?
    public var redisRequired: Bool
    /// Client connections open now (for `/metrics`).
    public var connections: @Sendable () -> Int
    /// `[metrics] per_tenant`: series labelled with each tenant on `/metrics`.
    public var perTenantMetrics: Bool
    /// The daemon is draining (`bulkheadctl drain`, SIGTERM): `/readyz` says so.
    public var draining: @Sendable () -> Bool
    /// The access log and whether it is on (`[log] requests`).
    public var log: Logger
    public var accessLog: AccessLogSwitch
    /// `[sandbox] max_file_size` as now configured: the most a chunked upload reserves.
    public var maxFileSize: @Sendable () -> UInt64

    public init(cors: CORSPolicy, workerExecutable: String, redis: RedisBackend? = nil, redisRequired: Bool = true,
                connections: @escaping @Sendable () -> Int = { 0 }, perTenantMetrics: Bool = false,
                draining: @escaping @Sendable () -> Bool = { false }, log: Logger = .discard,
                accessLog: AccessLogSwitch = AccessLogSwitch(false), maxFileSize: @escaping @Sendable () -> UInt64) {
        self.cors = cors
        self.workerExecutable = workerExecutable
        self.redis = redis
        self.redisRequired = redisRequired
        self.connections = connections
        self.perTenantMetrics = perTenantMetrics
        self.draining = draining
        self.log = log
        self.accessLog = accessLog
        self.maxFileSize = maxFileSize
    }
}

public enum Dispatcher {
    /// The whole request path, in order.
    public static func pipeline(settings: DispatcherSettings, authenticator: Authenticator, tenants: TenantDirectory,
                                store: Store, supervisor: SupervisorLink, audit: AuditWriter?, admission: Admission,
                                meter: UsageMeter,
                                clock: @escaping @Sendable () -> Int64) -> Pipeline {
        let work = TenantWork(supervisor: supervisor, tenants: tenants)
        let process = ProcessService(work: work)
        let health = HealthService(store: store, supervisor: supervisor, workerExecutable: settings.workerExecutable,
                                   redis: settings.redis, redisRequired: settings.redisRequired, draining: settings.draining)
        let registry = RegistryService(store: store)
        let requestMetrics = RequestMetrics()
        let usage = UsageService(meter: meter, store: store)
        let storage = StorageReservations(meter: meter, limits: admission.limitTable)
        let dict = DictService(work: work, storage: storage, meter: meter)
        let files = FilesService(work: work, storage: storage, meter: meter, maxFileSize: settings.maxFileSize)
        let metrics = MetricsService(requests: requestMetrics, admission: admission, supervisor: supervisor, redis: settings.redis,
                                     meter: meter, connections: settings.connections, perTenant: settings.perTenantMetrics)
        let routes = [
            Route(.post, "/v1/process", .tenant(scope: "process"), process.handle),
            Route(.post, "/process", .tenant(scope: "process"), process.handle),
            Route(.get, "/healthz", .public_, health.live),
            Route(.get, "/readyz", .public_, health.ready),
            Route(.get, "/metrics", .public_, metrics.handle),
            Route(.get, "/v1/admin/tenants", .admin, registry.list),
            Route(.get, "/v1/usage", .tenant(scope: "usage"), usage.own),
            Route(.get, "/v1/dict", .tenant(scope: "dict"), dict.list),
            Route(.get, "/v1/dict/", .tenant(scope: "dict"), dict.get),
            Route(.put, "/v1/dict/", .tenant(scope: "dict"), dict.put),
            Route(.delete, "/v1/dict/", .tenant(scope: "dict"), dict.delete),
            Route(.get, "/v1/files", .tenant(scope: "files"), files.list),
            Route(.get, "/v1/files/", .tenant(scope: "files"), files.get),
            Route(.put, "/v1/files/", .tenant(scope: "files"), streamsBody: true, files.put),
            Route(.delete, "/v1/files/", .tenant(scope: "files"), files.delete),
            Route(.get, "/stats/", .admin, usage.stats),
            Route(.get, "/v1/admin/usage", .admin, usage.export),
            Route(.get, "/v1/admin/tenants/", .admin) { context, done in
                if context.pathParameter?.hasSuffix("/usage") == true { usage.stats(context, done) } else { registry.show(context, done) }
            },
        ]
        let cors = CORSStage(policy: settings.cors)
        let limits = AdmissionStage(admission: admission)
        let router = RouteStage(routes: routes)
        return Pipeline(
            requestStages: [
                RequestIDStage(),
                cors,
                router,
                AuthenticateStage(authenticator: authenticator, audit: audit, clock: clock),
            ],
            admission: limits,
            responseStages: [StampRequestIDStage(), cors, limits, MetricsStage(metrics: requestMetrics), MeteringStage(meter: meter),
                             AccessLogStage(log: settings.log, enabled: settings.accessLog)],
            streamsBody: router.streamsBody, refusals: { requestMetrics.recordRefusal(status: $0) })
    }
}

/// POST /v1/process: `{"task": NAME, "data": JSON}` runs in the tenant's worker.
struct ProcessService: Sendable {
    let work: TenantWork

    func handle(_ context: RequestContext, _ done: @escaping @Sendable (HTTPResponse) -> Void) {
        let exchange = context.exchange
        if let type = exchange.head.headers["Content-Type"],
           !type.lowercased().hasPrefix("application/json") {
            done(.error(415, "unsupported_media_type", "the body must be application/json"))
            return
        }
        let task: String, data: [UInt8]
        switch Self.parse(exchange.body) {
        case .refused(let response):
            done(response)
            return
        case .ok(let t, let d): (task, data) = (t, d)
        }
        let requestID = context.requestID
        work.run(context, task, data, done) { tenant, r in Self.response(r, tenant: tenant, task: task, requestID: requestID) }
    }

    /// The body's two members, without building a tree of `data`: the worker parses it.
    enum Parsed {
        case ok(task: String, data: [UInt8])
        case refused(HTTPResponse)
    }

    static func parse(_ body: [UInt8]) -> Parsed {
        let members: [(key: String, range: Range<Int>)]
        do { members = try JSONParser.scanTopLevelObject(body) } catch {
            return .refused(.error(400, "invalid_json", "the body must be a JSON object: \(error)"))
        }
        var task: String?
        var data: [UInt8] = Array("null".utf8)
        for member in members {
            switch member.key {
            case "task":
                guard let value = try? JSONParser.parse(Array(body[member.range])), let name = value.stringValue else {
                    return .refused(.error(400, "invalid_task", "\"task\" must be a string"))
                }
                task = name
            case "data":
                data = Array(body[member.range])
            default:
                return .refused(.error(400, "unknown_field", "unknown field \"\(AdminCommands.printable(member.key))\" (expected task and data)"))
            }
        }
        guard let task else { return .refused(.error(400, "missing_task", "\"task\" is required")) }
        guard Request.isValidTask(task) else {
            return .refused(.error(404, "unknown_task", "unknown task \"\(AdminCommands.printable(task))\""))
        }
        return .ok(task: task, data: data)
    }

    static func response(_ r: Response, tenant: String, task: String, requestID: String) -> HTTPResponse {
        // The result goes into our JSON verbatim, so it must be JSON itself.
        guard (try? JSONParser.parse(r.body)) != nil else {
            return .error(502, "worker_bad_response", "the worker's result is not valid JSON")
        }
        var body = Array(#"{"tenant_id":"#.utf8)
        appendJSONString(tenant, to: &body)
        body += Array(#","task":"#.utf8)
        appendJSONString(task, to: &body)
        body += Array(#","request_id":"#.utf8)
        appendJSONString(requestID, to: &body)
        body += Array(#","result":"#.utf8)
        body += r.body
        body.append(0x7D)
        return .json(200, body)
    }
}

/// /healthz: the process answers. /readyz: the store answers, the supervisor's loop turns,
/// the worker executable is there and, with the Redis backend, Redis is connected.
struct HealthService: Sendable {
    let store: Store
    let supervisor: SupervisorLink
    let workerExecutable: String
    let redis: RedisBackend?
    let redisRequired: Bool
    let draining: @Sendable () -> Bool

    func live(_ context: RequestContext, _ done: @escaping @Sendable (HTTPResponse) -> Void) {
        done(.json(200, Array(#"{"status":"ok"}"#.utf8)))
    }

    func ready(_ context: RequestContext, _ done: @escaping @Sendable (HTTPResponse) -> Void) {
        let storeOK = (try? store.ping()) != nil
        let workerOK = access(workerExecutable, X_OK) == 0
        let redisOK = redis?.isUp
        let redisRequired = redisRequired
        let draining = draining()
        supervisor.ping { supervisorOK in
            let ok = storeOK && workerOK && supervisorOK && (redisOK != false || !redisRequired) && !draining
            let redisCheck = redisOK.map { #","redis":\#($0)"# } ?? ""
            let status = draining ? "draining" : ok ? "ready" : "not_ready"
            let body = #"{"status":"\#(status)","checks":{"store":\#(storeOK),"supervisor":\#(supervisorOK),"worker_executable":\#(workerOK)\#(redisCheck)}}"#
            done(.json(ok ? 200 : 503, Array(body.utf8)))
        }
    }
}

/// GET /v1/admin/tenants and /v1/admin/tenants/{id}.
struct RegistryService: Sendable {
    let store: Store

    func list(_ context: RequestContext, _ done: @escaping @Sendable (HTTPResponse) -> Void) {
        guard let records = try? store.tenants() else {
            done(.error(503, "store_unavailable", "the state database does not answer"))
            return
        }
        done(.json(200, JSONValue.object(JSONObject([("tenants", .array(records.map(Self.json)))])).serialized()))
    }

    func show(_ context: RequestContext, _ done: @escaping @Sendable (HTTPResponse) -> Void) {
        let id = context.pathParameter ?? ""
        guard TenantIdentity.isValid(id: id), let record = try? store.tenant(id) else {
            done(.error(404, "tenant_not_found", "no tenant \(AdminCommands.printable(id))"))
            return
        }
        done(.json(200, Self.json(record).serialized()))
    }

    static func json(_ r: TenantRecord) -> JSONValue {
        .object(JSONObject([("id", .string(r.id)), ("name", .string(r.name)), ("status", .string(r.status.rawValue)),
                            ("uid", .number(JSONNumber(Int64(r.uid)))), ("created_at", .number(JSONNumber(r.createdAt)))]))
    }
}
