// The daemon's wiring: command line, configuration, event loops, supervisor, signals,
// systemd (socket activation, sd_notify; Operator.swift).
import Auth
import Config
import Control
import Dispatcher
import EventLoop
import HTTPParser
import HTTPServer
import Glibc
import Log
import Metering
import Posix
import RateLimit
import Sandbox
import Store
import Supervisor
import Systemd
import Tenants
import TLS

enum Daemon {
    static let usage = """
        usage: bulkheadd [--config FILE]
               bulkheadd --check-config FILE
               bulkheadd --version | --help

          --config FILE        run with FILE (default \(defaultConfig))
          --check-config FILE  parse and validate FILE, print the result, exit 0 if it is good
        """
    static let defaultConfig = "/etc/bulkhead/bulkhead.conf"
    static let version = "bulkheadd 0.1.0"

    static func main(_ argv: [String]) -> Never {
        var configPath = defaultConfig
        var checkOnly = false
        var i = 1
        while i < argv.count {
            switch argv[i] {
            case "--help", "-h":
                print(usage)
                exit(0)
            case "--version":
                print(version)
                exit(0)
            case "--config", "--check-config":
                guard i + 1 < argv.count else { usageError("\(argv[i]) needs a file") }
                checkOnly = checkOnly || argv[i] == "--check-config"
                configPath = argv[i + 1]
                i += 2
            default:
                usageError("unknown argument \(argv[i])")
            }
        }
        let config = load(configPath)
        if checkOnly {
            print("\(configPath): configuration ok")
            exit(0)
        }
        do {
            try run(config, path: configPath)
            exit(0)
        } catch {
            fatal("bulkheadd: \(error)")
        }
    }

    static func load(_ path: String) -> Config {
        do { return try readConfig(path) } catch { fatal(error.description) }
    }

    /// The file as the daemon reads it: with the REDIS_* environment, relative paths from
    /// the working directory (the same at start and on reload).
    static func readConfig(_ path: String) throws(ConfigError) -> Config {
        var env: [String: String] = [:]
        for key in ["REDIS_HOST", "REDIS_PORT", "REDIS_PASSWORD"] {
            if let v = getenv(key) { env[key] = String(cString: v) }
        }
        var cwd = [CChar](repeating: 0, count: Int(PATH_MAX))
        guard getcwd(&cwd, cwd.count) != nil else { fatal("bulkheadd: getcwd failed") }
        return try Config.load(path: path, environment: env, workingDirectory: String(decoding: cwd.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
    }

    static func logLevel(_ config: Config) -> LogLevel {
        switch config.log.level {
        case .debug: .debug
        case .info: .info
        case .warning: .warning
        case .error: .error
        }
    }

    static func run(_ config: Config, path: String) throws {
        // Sockets passed by systemd come first, before anything else takes a descriptor.
        let inherited = ListenFDs.take()
        let notifier = Notifier()
        let log = Logger.standardError(minimum: logLevel(config))
        let external = try externalIssuer(config)  // checked before anything is created
        let https = inherited.isEmpty ? config.server.listen.contains { if case .tls = $0 { true } else { false } }
            : inherited.contains { $0.name == "https" }
        let tls = https ? try tlsContext(config) : nil  // an expired or mismatched certificate stops the start here
        // One descriptor per client connection: take all the hard limit allows.
        var nofile = rlimit()
        if getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max {
            nofile.rlim_cur = nofile.rlim_max
            _ = setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &nofile)
        }
        try makeDirectory(config.server.stateDir, mode: 0o700)
        try makeDirectory(parent(of: config.server.controlSocket), mode: 0o755)

        // State: the store, the signing secret, and the in-memory views the request path reads.
        let store = try Store(path: config.server.stateDir + "/bulkhead.db")
        let env = getenv("BULKHEAD_JWT_SECRET").map { String(cString: $0) }
        let secret = try Secret.load(environmentValue: env, file: config.resolvedJWTSecretFile)
        let directory = TenantDirectory(try store.tenants())
        let keys = KeyRegistry(try store.allKeys())

        // Threads: one HTTP event loop per core, the first of which also runs the
        // supervisor (its connections reach workers without a thread hop); the control
        // socket on a loop of its own, so slow SQLite writes never stall requests; this
        // thread only waits for signals.
        let server = try HTTPServer(settings: httpSettings(config), log: log)
        let supervisorLoop = server.loops[0]
        let loop = try EventLoop()
        let settings = supervisorSettings(config)
        let supervisor = try Supervisor(loop: supervisorLoop, settings: settings, log: log)

        // Rate limits and quotas: defaults from the configuration, each tenant's own from
        // the store; with Redis, each HTTP loop has its own connection to it.
        let limits = LimitTable(defaults: limitDefaults(config),
                                overrides: try store.allLimits().mapValues(AdminCommands.rateLimitOverrides))
        let redis = try config.rateLimit.backend == .redis
            ? RedisBackend(settings: redisSettings(config), log: log, loops: server.loops) : nil
        let admission = Admission(
            table: limits, backend: redis ?? MemoryBackend(clock: { Int64(Posix.monotonicNanoseconds()) }),
            settings: AdmissionSettings(onBackendError: config.rateLimit.onBackendError == .allow ? .allow : .deny,
                                        hosts: config.rateLimit.hosts),
            log: log, wallClock: { Int64(time(nil)) }, monotonic: { Int64(Posix.monotonicNanoseconds()) })
        // Usage: in memory, written to SQLite every second by a thread of its own. The
        // compute quota picks up today's CPU time from the store after a restart.
        let volumesRoot = config.resolvedVolumesRoot, prefix = config.volumes.prefix
        Volumes.removeLeftovers(root: volumesRoot, log: log)  // volumes a purge set aside but did not finish removing
        let meter = try UsageMeter(store: store, log: log, volumes: {
            directory.ids.map { ($0, Volumes.path(root: volumesRoot, prefix: prefix, tenant: $0)) }
        })
        let today = UsageMeter.day(Int64(time(nil)))
        for row in try store.usage(tenant: nil, from: today, to: today) {
            admission.recordCompute(row.tenantID, nanoseconds: UInt64(row.cpuMicros) * 1000)
        }
        supervisor.onCPU = { tenant, nanoseconds in
            admission.recordCompute(tenant, nanoseconds: nanoseconds)
            meter.cpu(tenant, nanoseconds: nanoseconds)
        }
        let controlLoop = try EventLoop()
        let cors = CORSPolicy(allowedOrigins: config.cors.allowedOrigins)
        let accessLog = AccessLogSwitch(config.log.requests)
        let accessSink = BatchedSink()  // the request records, written together (BatchedSink.swift)
        let operations = Operator(path: path, config: config, server: server, limits: limits, cors: cors,
                                  accessLog: accessLog, log: log,
                                  supervisor: SupervisorLink(supervisor, loop: supervisorLoop), notifier: notifier)
        let commands = AdminCommands(
            store: store, issuer: TokenIssuer(secret: secret), settings: tenantSettings(config), directory: directory,
            keys: keys, supervisor: SupervisorLink(supervisor, loop: supervisorLoop), admission: admission, meter: meter, log: log,
            operations: operations, clock: { Int64(time(nil)) })
        // Backups and restores run on a job thread of their own, off the control loop.
        let control = try ControlServer(loop: controlLoop, path: config.server.controlSocket,
                                        adminGroup: config.server.adminGroup, handler: commands,
                                        jobs: AdminCommands.jobCommands, log: log)
        let controlThread = LoopThread(controlLoop)

        // The request path.
        let audit = AuditWriter(store: store, log: log)
        let verifier = TokenVerifier(secret: secret, policy: verifierPolicy(config), external: external)
        let authenticator = Authenticator(verifier: CachingVerifier(verifier: verifier), keys: keys, tenants: directory)
        let pipeline = Dispatcher.pipeline(
            settings: DispatcherSettings(cors: cors, workerExecutable: settings.executable,
                                         redis: redis, redisRequired: config.rateLimit.onBackendError == .deny,
                                         connections: { server.openConnections }, perTenantMetrics: config.metrics.perTenant,
                                         draining: { server.isDraining }, log: log.batched(accessSink), accessLog: accessLog,
                                         maxFileSize: { operations.current.sandbox.maxFileSize }),
            authenticator: authenticator, tenants: directory, store: store,
            supervisor: SupervisorLink(supervisor, loop: supervisorLoop), audit: audit, admission: admission, meter: meter,
            clock: { Int64(time(nil)) })

        var stopping = false
        try loop.handleSignals([SIGTERM, SIGINT, SIGHUP]) { sig in
            guard !stopping else { return }
            if sig == SIGHUP {
                _ = try? operations.reload(trigger: "SIGHUP")  // a refusal is logged; the running configuration stays
                return
            }
            stopping = true
            operations.stopping()
            log.info("stopping", [("signal", .of(sig)), ("connections", .of(server.openConnections))])
            let bound = LoopBound(control, loop: controlLoop)
            controlLoop.execute { bound.value.close() }
            // Stop accepting, let requests in flight finish, then stop the workers.
            let sup = LoopBound(supervisor, loop: supervisorLoop)
            server.drain(deadline: operations.current.server.drainTimeout) {
                supervisorLoop.execute {
                    sup.value.shutdown(deadline: .seconds(5)) {
                        log.info("stopped")
                        loop.stop()
                    }
                }
            }
        }
        signal(SIGPIPE, SIG_IGN)
        redis?.start()
        meter.start()
        let listen: [HTTPListenAddress]
        if inherited.isEmpty {
            listen = config.server.listen.map { address in
                switch address {
                case .tcp(let host, let port): return .tcp(host: host, port: port)
                case .tls(let host, let port): return .tls(host: host, port: port)
                case .unix(let path): return .unix(path: path)
                }
            }
        } else {
            listen = inherited.map { .inherited(fd: $0.fd, name: $0.name, tls: $0.name == "https") }
        }
        if let tls {
            server.setTLS(tls)
            log.info("tls_certificate", [("subject", .string(tls.certificateSubject)), ("not_after", .string(tls.certificateNotAfter))])
        }
        try server.start(listen, handler: pipeline)
        for socket in inherited { close(socket.fd) }  // every loop has its own duplicate
        controlThread.start()
        let listening = inherited.isEmpty ? config.server.listen.map(\.description).joined(separator: ",")
            : "systemd sockets " + inherited.map { "\($0.name) (fd \($0.fd))" }.joined(separator: ", ")
        operations.ready()
        operations.startReporting(on: loop, loops: server.loops + [controlLoop])
        log.info("started", [("version", .string(version)), ("listen", .string(listening)),
                             ("event_loops", .of(server.loops.count)), ("workers", .string(settings.executable)),
                             ("volumes", .string(settings.volumesRoot)), ("control_socket", .string(config.server.controlSocket)),
                             ("tenants", .of(directory.count)), ("secret_key_id", .string(secret.keyID))])
        try loop.run()
        redis?.stop()
        server.stop()
        controlThread.stop()
        meter.stop()  // after the workers: their last CPU time is in
        audit.flush()
        accessSink.flush()
        withExtendedLifetime((commands, control, store)) {}
    }

    /// The HTTPS listeners' certificate and key, checked (match, validity) before use.
    static func tlsContext(_ config: Config) throws -> TLSContext {
        guard let certificate = config.server.tlsCertificate, let key = config.server.tlsPrivateKey else {
            throw StartupError("HTTPS listeners need [server] tls_certificate and tls_private_key")
        }
        do { return try TLSContext(certificate: certificate, privateKey: key) } catch { throw StartupError(error.description) }
    }

    /// The SaaS's own issuer, if configured: all three keys or none, and a public key of
    /// the configured algorithm's type (refused at start otherwise).
    static func externalIssuer(_ config: Config) throws -> ExternalIssuer? {
        let a = config.auth
        switch (a.externalIssuer, a.externalAlgorithm, a.externalPublicKeyFile) {
        case (nil, nil, nil): return nil
        case (let issuer?, let algorithm?, let keyFile?):
            guard let alg = ExternalIssuer.Algorithm(rawValue: algorithm) else { throw StartupError("unknown external_algorithm") }
            guard let f = fopen(keyFile, "r") else {
                throw StartupError("[auth] external_public_key_file \(keyFile): \(String(cString: strerror(errno)))")
            }
            defer { fclose(f) }
            var pem: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let n = fread(&chunk, 1, chunk.count, f)
                if n <= 0 { break }
                pem += chunk[..<n]
                if pem.count > 1 << 20 { throw StartupError("[auth] external_public_key_file \(keyFile) is larger than 1 MiB") }
            }
            do {
                return try ExternalIssuer(issuer: issuer, audience: a.audience, algorithm: alg, publicKeyPEM: pem,
                                          tenantClaim: a.externalTenantClaim)
            } catch {
                throw StartupError("[auth] external_public_key_file \(keyFile): \(error.detail)")
            }
        default:
            throw StartupError("[auth] external_issuer, external_algorithm and external_public_key_file go together: set all three or none")
        }
    }

    static func verifierPolicy(_ config: Config) -> VerifierPolicy {
        var p = VerifierPolicy(issuer: config.auth.issuer, audience: config.auth.audience)
        p.leewaySeconds = Int64(config.auth.leeway.components.seconds)
        return p
    }

    static func httpSettings(_ config: Config) -> HTTPServerSettings {
        // Bodies held whole stop at max_body_bytes; a file upload streams to the worker and
        // is bounded by what a worker may write (max_file_size) and the tenant's quota.
        var limits = HTTPLimits()
        let buffered = Int(clamping: config.server.maxBodyBytes)
        limits.maxBodyBytes = max(buffered, Int(clamping: config.sandbox.maxFileSize))
        var settings = HTTPServerSettings(limits: limits, headerTimeout: config.server.headerTimeout, bodyTimeout: config.server.bodyTimeout,
                                          keepaliveTimeout: config.server.keepaliveTimeout, maxConnections: config.server.maxConnections,
                                          eventLoops: config.server.eventLoops)
        settings.maxBufferedBody = buffered
        return settings
    }

    /// `[ratelimit]` and `[quota]` as the limits of a tenant without overrides.
    static func limitDefaults(_ config: Config) -> TenantLimits {
        let r = config.rateLimit
        let policy = RatePolicy(name: RatePolicy.defaultName, count: r.rate.count,
                                periodSeconds: UInt64(r.rate.period.components.seconds), burst: r.burst,
                                mode: r.mode == .shadow ? .shadow : .enforce)
        return TenantLimits(policies: [policy], concurrency: Int(config.quota.maxConcurrentRequests),
                            computeMinutesPerDay: config.quota.maxComputeMinutesPerDay, storageGB: config.quota.maxStorageGB)
    }

    static func redisSettings(_ config: Config) throws -> RedisBackend.Settings {
        guard let endpoint = config.rateLimit.redisEndpoint else { throw StartupError("[ratelimit] backend = redis needs redis_url") }
        return RedisBackend.Settings(target: endpoint, timeout: config.rateLimit.timeout)
    }

    static func tenantSettings(_ config: Config) -> TenantSettings {
        TenantSettings(uidBase: config.sandbox.uidBase, uidCount: config.sandbox.uidCount,
                       volumesRoot: config.resolvedVolumesRoot, volumePrefix: config.volumes.prefix,
                       autoCreateVolumes: config.volumes.autoCreate, issuer: config.auth.issuer,
                       audience: config.auth.audience)
    }

    static func parent(of path: String) -> String {
        String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
    }

    /// mkdir -p; the last component gets `mode` when it is created.
    static func makeDirectory(_ path: String, mode: mode_t) throws {
        var prefix = ""
        let parts = path.split(separator: "/")
        for (i, part) in parts.enumerated() {
            prefix += "/" + part
            if mkdir(prefix, i == parts.count - 1 ? mode : 0o755) != 0 && errno != EEXIST {
                throw StartupError("cannot create \(prefix): \(String(cString: strerror(errno)))")
            }
        }
    }

    static func supervisorSettings(_ config: Config) -> SupervisorSettings {
        let w = config.workers
        let s = config.sandbox
        var policyFile: String?
        if case .file(let path) = s.seccomp { policyFile = path }
        return SupervisorSettings(
            executable: w.resolvedExecutable(daemonDirectory: executableDirectory()),
            volumesRoot: config.resolvedVolumesRoot, volumePrefix: config.volumes.prefix,
            autoCreateVolumes: config.volumes.autoCreate, maxWorkersPerTenant: w.maxPerTenant, queueLimit: w.queueSize,
            idleTimeout: w.idleTimeout, requestTimeout: w.requestTimeout, streamStallTimeout: config.server.bodyTimeout,
            maxRequestsPerWorker: w.maxRequests,
            spawnTimeout: w.spawnTimeout, restartBackoffMax: w.restartBackoffMax,
            limits: ResourceLimits(memoryBytes: s.memoryLimit, cpuSeconds: s.cpuSeconds, processes: s.maxProcesses,
                                   openFiles: s.maxOpenFiles, fileSizeBytes: s.maxFileSize),
            seccompPolicyFile: policyFile,
            maxFramePayload: SupervisorSettings.maxFramePayload(bodyBytes: config.server.maxBodyBytes), pipelineDepth: w.pipelineDepth)
    }

    /// The directory of this executable, where the stock worker is installed beside it.
    static func executableDirectory() -> String {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX))
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        guard n > 0 else { return "." }
        let path = String(decoding: buf[..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
    }

    static func usageError(_ message: String) -> Never {
        writeStderr("bulkheadd: \(message)\n\(usage)\n")
        exit(2)
    }

    static func fatal(_ message: String) -> Never {
        writeStderr(message + "\n")
        exit(1)
    }
}

/// One write(2) to stderr (the C `stderr` global is not concurrency-safe in Swift 6).
func writeStderr(_ text: String) {
    let bytes = Array(text.utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}

struct StartupError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
