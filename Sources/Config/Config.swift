// Config.swift owns the typed configuration of bulkheadd: one struct per INI section,
// each `init()` giving the defaults of SPEC §3 (docs/CONFIGURATION.md lists them all).
// The section types are nested in `Config` so that `Auth` or `RateLimit` never shadow
// the modules of those names.

/// The whole configuration. `Config()` is the all-defaults configuration; `load` and
/// `parse` start from it and apply the file.
public struct Config: Sendable, Equatable {
    public var server: Server
    public var auth: Auth
    public var rateLimit: RateLimit
    public var quota: Quota
    public var volumes: Volumes
    public var workers: Workers
    public var sandbox: SandboxLimits
    public var cors: CORS
    public var metrics: Metrics
    public var log: Log

    public init() {
        server = Server()
        auth = Auth()
        rateLimit = RateLimit()
        quota = Quota()
        volumes = Volumes()
        workers = Workers()
        sandbox = SandboxLimits()
        cors = CORS()
        metrics = Metrics()
        log = Log()
    }

    /// `[auth] jwt_secret_file`, or `<state_dir>/jwt.key` when it is not set.
    public var resolvedJWTSecretFile: String { auth.jwtSecretFile ?? server.stateDir + "/jwt.key" }

    /// `[volumes] root`, or `<state_dir>/volumes` when it is not set.
    public var resolvedVolumesRoot: String { volumes.root ?? server.stateDir + "/volumes" }
}

// MARK: - Sections

extension Config {
    /// `[server]`: what bulkheadd listens on and where it keeps its state.
    public struct Server: Sendable, Equatable {
        /// `listen`: HTTP listen addresses, in the order they are bound.
        public var listen: [ListenAddress]
        /// `state_dir`: SQLite database, volumes and generated secrets (absolute).
        public var stateDir: String
        /// `control_socket`: the admin socket bulkheadctl talks to (absolute).
        public var controlSocket: String
        /// `admin_group`: besides root, members of this group may use the control socket.
        public var adminGroup: String
        /// `max_body_bytes`: larger request bodies get 413.
        public var maxBodyBytes: UInt64
        /// `drain_timeout`: how long SIGTERM waits for in-flight requests.
        public var drainTimeout: Duration
        /// `header_timeout`: a client must send a whole request head within this (slowloris).
        public var headerTimeout: Duration
        /// `body_timeout`: and its body within this after the head.
        public var bodyTimeout: Duration
        /// `keepalive_timeout`: an idle keep-alive connection is closed after this.
        public var keepaliveTimeout: Duration
        /// `max_connections`: beyond this many open connections, new ones get 503 and are closed.
        public var maxConnections: Int
        /// `event_loops`: HTTP event loop threads; 0 = one per CPU core.
        public var eventLoops: Int
        /// `tls_certificate`, `tls_private_key`: PEM files for `tls://` listeners (the
        /// certificate file may hold the chain after it). Reloaded on SIGHUP.
        public var tlsCertificate: String?
        public var tlsPrivateKey: String?

        public init() {
            listen = [.tcp(host: "127.0.0.1", port: 8080)]
            stateDir = "/var/lib/bulkhead"
            controlSocket = "/run/bulkhead/control.sock"
            adminGroup = "bulkhead"
            maxBodyBytes = 10_485_760
            drainTimeout = .seconds(30)
            headerTimeout = .seconds(10)
            bodyTimeout = .seconds(60)
            keepaliveTimeout = .seconds(75)
            maxConnections = 10_000
            eventLoops = 0
            tlsCertificate = nil
            tlsPrivateKey = nil
        }
    }

    /// `[auth]`: how tokens are issued and checked.
    public struct Auth: Sendable, Equatable {
        /// The JWT signing algorithms this server can issue and verify.
        public enum Algorithm: String, Sendable, Equatable, CaseIterable {
            case hs256 = "HS256"
        }

        /// `jwt_secret_file`; nil means `<state_dir>/jwt.key` (see `Config.resolvedJWTSecretFile`).
        public var jwtSecretFile: String?
        /// `jwt_algorithm`: fixed by configuration, never taken from a token (RFC 8725).
        public var jwtAlgorithm: Algorithm
        /// `issuer`: the `iss` claim issued and required.
        public var issuer: String
        /// `audience`: the `aud` claim issued and required.
        public var audience: String
        /// `leeway`: clock skew tolerated on `exp` and `nbf`.
        public var leeway: Duration
        /// `external_issuer`: the `iss` of a SaaS's own short-lived tokens (nil: none accepted).
        public var externalIssuer: String?
        /// `external_algorithm`: RS256, ES256 or EdDSA — fixed here, never taken from a token.
        public var externalAlgorithm: String?
        /// `external_public_key_file`: the issuer's public key (PEM).
        public var externalPublicKeyFile: String?
        /// `external_tenant_claim`: the claim that carries the tenant id.
        public var externalTenantClaim: String

        public init() {
            jwtSecretFile = nil
            jwtAlgorithm = .hs256
            issuer = "bulkhead"
            audience = "bulkhead"
            leeway = .seconds(30)
            externalIssuer = nil
            externalAlgorithm = nil
            externalPublicKeyFile = nil
            externalTenantClaim = "tenant_id"
        }
    }

    /// `[ratelimit]`: per-tenant request rate limiting.
    public struct RateLimit: Sendable, Equatable {
        /// Where the token buckets live.
        public enum Backend: String, Sendable, Equatable, CaseIterable {
            case memory, redis
        }

        /// Whether the default policy refuses (`enforce`) or only counts and logs (`shadow`).
        public enum Mode: String, Sendable, Equatable, CaseIterable {
            case enforce, shadow
        }

        /// What to do with a request when the Redis backend cannot be reached in time.
        public enum FailurePolicy: String, Sendable, Equatable, CaseIterable {
            /// Fail closed: answer 503.
            case deny
            /// Fail open: fall back to an in-process limiter with `rate / hosts`.
            case allow
        }

        /// `rate`: the sustained per-tenant rate.
        public var rate: Rate
        /// `burst`: requests allowed at once above the sustained rate.
        public var burst: UInt64
        /// `mode`: of the default policy; tenants' own policies carry their own.
        public var mode: Mode
        /// `backend`
        public var backend: Backend
        /// The effective Redis URL: `redis_url` if set, else one built from `REDIS_HOST`,
        /// `REDIS_PORT` and `REDIS_PASSWORD` in the environment, else nil. A `unix:` path is
        /// stored absolute.
        public var redisURL: String?
        /// `on_backend_error`
        public var onBackendError: FailurePolicy
        /// `timeout`: how long one Redis round trip may take before `on_backend_error` applies.
        public var timeout: Duration
        /// `hosts`: how many bulkheadd hosts share the Redis limits; the in-process fallback
        /// allows `rate / hosts` so the fleet as a whole stays near `rate`.
        public var hosts: UInt32

        public init() {
            rate = Rate(count: 1000, unit: .hour)
            burst = 100
            mode = .enforce
            backend = .memory
            redisURL = nil
            onBackendError = .deny
            timeout = .milliseconds(5)
            hosts = 1
        }

        /// `redisURL` parsed, or nil when there is none (or it was set to something invalid
        /// after loading).
        public var redisEndpoint: RedisEndpoint? {
            guard let redisURL else { return nil }
            return try? ValueSyntax.redisEndpoint(redisURL, relativeTo: "/")
        }
    }

    /// `[quota]`: per-tenant usage ceilings (tenants may get overrides through bulkheadctl).
    public struct Quota: Sendable, Equatable {
        /// `max_compute_minutes_per_day`: over it → 429 `quota_exceeded`.
        public var maxComputeMinutesPerDay: UInt64
        /// `max_storage_gb`: per tenant volume, in GiB.
        public var maxStorageGB: Double
        /// `max_concurrent_requests`: a tenant's requests in flight on one host; 0 = no cap.
        public var maxConcurrentRequests: UInt64

        public init() {
            maxConcurrentRequests = 0
            maxComputeMinutesPerDay = 1000
            maxStorageGB = 50
        }
    }

    /// `[volumes]`: the per-tenant directories workers are chrooted into.
    public struct Volumes: Sendable, Equatable {
        /// `prefix`: volume directories are `<prefix>-<tenant_id>-data`.
        public var prefix: String
        /// `auto_create`: provision a volume on tenant creation or first use.
        public var autoCreate: Bool
        /// `root`; nil means `<state_dir>/volumes` (see `Config.resolvedVolumesRoot`).
        public var root: String?

        public init() {
            prefix = "tenant"
            autoCreate = true
            root = nil
        }
    }

    /// `[workers]`: the per-tenant worker pools.
    public struct Workers: Sendable, Equatable {
        /// `executable`; nil means the `bulkhead-worker` installed beside bulkheadd.
        public var executable: String?
        /// `max_per_tenant`: pool size cap, 1...1024.
        public var maxPerTenant: Int
        /// `queue_size`: requests that may wait for a busy pool, per tenant; more get 503.
        public var queueSize: Int
        /// `idle_timeout`: idle workers are reaped after this.
        public var idleTimeout: Duration
        /// `request_timeout`: a longer request gets its worker killed and 504.
        public var requestTimeout: Duration
        /// `max_requests`: recycle a worker after this many requests; 0 = never.
        public var maxRequests: Int
        /// `spawn_timeout`: a new worker must say HELLO within this.
        public var spawnTimeout: Duration
        /// `restart_backoff_max`: the ceiling of the back-off between restarts of a crashing worker.
        public var restartBackoffMax: Duration
        /// `pipeline_depth`: requests one worker may have in flight (answered in order).
        public var pipelineDepth: Int

        public init() {
            executable = nil
            maxPerTenant = 4
            queueSize = 64
            idleTimeout = .seconds(60)
            requestTimeout = .seconds(30)
            maxRequests = 0
            spawnTimeout = .seconds(5)
            restartBackoffMax = .seconds(30)
            pipelineDepth = 16
        }

        /// The worker executable: `executable`, or `bulkhead-worker` in `daemonDirectory`
        /// (the directory of the running bulkheadd).
        public func resolvedExecutable(daemonDirectory: String) -> String {
            executable ?? ValueSyntax.normalise(absolutePath: daemonDirectory + "/bulkhead-worker")
        }
    }

    /// `[sandbox]`: uid allocation and per-worker resource limits.
    public struct SandboxLimits: Sendable, Equatable {
        /// `uid_base`: the first tenant uid/gid, at least 1000.
        public var uidBase: UInt32
        /// `uid_count`: how many uids/gids tenants are given from `uidBase`;
        /// `uidBase + uidCount` is at most 2^31.
        public var uidCount: UInt32
        /// `memory_limit`: address space / memory cgroup limit per worker, in bytes.
        public var memoryLimit: UInt64
        /// `cpu_seconds`: RLIMIT_CPU over the worker's life.
        public var cpuSeconds: UInt64
        /// `max_processes`: RLIMIT_NPROC for the tenant uid.
        public var maxProcesses: UInt64
        /// `max_open_files`: RLIMIT_NOFILE, at least 4.
        public var maxOpenFiles: UInt64
        /// `max_file_size`: RLIMIT_FSIZE, in bytes.
        public var maxFileSize: UInt64
        /// `seccomp`
        public var seccomp: SeccompPolicy

        public init() {
            uidBase = 200_000
            uidCount = 65_536
            memoryLimit = 512 << 20
            cpuSeconds = 3600
            maxProcesses = 64
            maxOpenFiles = 256
            maxFileSize = 1 << 30
            seccomp = .default
        }
    }

    /// `[log]`: the daemon's log on stderr.
    public struct Log: Sendable, Equatable {
        public enum Level: String, Sendable, Equatable, CaseIterable {
            case debug, info, warning, error
        }
        /// `level`: records below it are not written (changes on reload).
        public var level: Level
        /// `requests`: one `request` record per answered request, at info (changes on reload).
        public var requests: Bool

        public init() {
            level = .info
            requests = true
        }
    }

    /// `[metrics]`: what `/metrics` shows.
    public struct Metrics: Sendable, Equatable {
        /// `per_tenant`: also series labelled with each tenant (one series per tenant:
        /// off by default, to keep the cardinality low).
        public var perTenant: Bool

        public init() {
            perTenant = false
        }
    }

    /// `[cors]`: cross-origin access for browser clients.
    public struct CORS: Sendable, Equatable {
        /// `allowed_origins`: `*`, or exact origins (lower case); empty = no CORS headers.
        public var allowedOrigins: [String]

        public init() {
            allowedOrigins = []
        }
    }
}

/// The seccomp filter a worker runs under.
public enum SeccompPolicy: Sendable, Equatable, Hashable {
    /// The built-in allowlist (`seccomp = default`).
    case `default`
    /// A policy file (absolute path).
    case file(path: String)
}
