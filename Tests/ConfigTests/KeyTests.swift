// KeyTests.swift: every key of the table, with a good value and with each kind of bad value.

import Testing
@testable import Config

/// `[section] key = value` should change the defaults exactly as `change` does.
struct GoodValue: Sendable, CustomTestStringConvertible {
    let section: String
    let key: String
    let value: String
    let change: @Sendable (inout Config) -> Void

    init(_ section: String, _ key: String, _ value: String, _ change: @escaping @Sendable (inout Config) -> Void) {
        self.section = section
        self.key = key
        self.value = value
        self.change = change
    }

    var testDescription: String { "[\(section)] \(key) = \(value)" }
}

let goodValues: [GoodValue] = [
    GoodValue("server", "listen", "0.0.0.0:80, [::]:80, unix:run/http.sock") {
        $0.server.listen = [.tcp(host: "0.0.0.0", port: 80), .tcp(host: "::", port: 80), .unix(path: "/srv/bulkhead/run/http.sock")]
    },
    GoodValue("server", "state_dir", "/data/bulkhead") { $0.server.stateDir = "/data/bulkhead" },
    GoodValue("server", "control_socket", "var/ctl.sock") { $0.server.controlSocket = "/srv/bulkhead/var/ctl.sock" },
    GoodValue("server", "admin_group", "ops_team") { $0.server.adminGroup = "ops_team" },
    GoodValue("server", "header_timeout", "2s") { $0.server.headerTimeout = .seconds(2) },
    GoodValue("server", "body_timeout", "500ms") { $0.server.bodyTimeout = .milliseconds(500) },
    GoodValue("server", "keepalive_timeout", "1m") { $0.server.keepaliveTimeout = .seconds(60) },
    GoodValue("server", "max_connections", "100") { $0.server.maxConnections = 100 },
    GoodValue("server", "event_loops", "2") { $0.server.eventLoops = 2 },
    GoodValue("server", "max_body_bytes", "1M") { $0.server.maxBodyBytes = 1_048_576 },
    GoodValue("server", "tls_certificate", "/etc/bulkhead/tls.crt") { $0.server.tlsCertificate = "/etc/bulkhead/tls.crt" },
    GoodValue("server", "tls_private_key", "tls.key") { $0.server.tlsPrivateKey = "/srv/bulkhead/tls.key" },
    GoodValue("server", "drain_timeout", "10s") { $0.server.drainTimeout = .seconds(10) },
    GoodValue("auth", "jwt_secret_file", "/etc/bulkhead/jwt.key") { $0.auth.jwtSecretFile = "/etc/bulkhead/jwt.key" },
    GoodValue("auth", "jwt_algorithm", "HS256") { $0.auth.jwtAlgorithm = .hs256 },
    GoodValue("auth", "issuer", "https://auth.example.com") { $0.auth.issuer = "https://auth.example.com" },
    GoodValue("auth", "audience", "api example") { $0.auth.audience = "api example" },
    GoodValue("auth", "leeway", "250ms") { $0.auth.leeway = .milliseconds(250) },
    GoodValue("auth", "external_issuer", "https://auth.example") { $0.auth.externalIssuer = "https://auth.example" },
    GoodValue("auth", "external_algorithm", "EdDSA") { $0.auth.externalAlgorithm = "EdDSA" },
    GoodValue("auth", "external_public_key_file", "keys/issuer.pem") { $0.auth.externalPublicKeyFile = "/srv/bulkhead/keys/issuer.pem" },
    GoodValue("auth", "external_tenant_claim", "org") { $0.auth.externalTenantClaim = "org" },
    GoodValue("ratelimit", "rate", "50/second") { $0.rateLimit.rate = Rate(count: 50, unit: .second) },
    GoodValue("ratelimit", "burst", "7") { $0.rateLimit.burst = 7 },
    GoodValue("ratelimit", "mode", "shadow") { $0.rateLimit.mode = .shadow },
    GoodValue("ratelimit", "backend", "redis") {
        $0.rateLimit.backend = .redis
        $0.rateLimit.redisURL = "redis://127.0.0.1:6379/0"
    },
    GoodValue("ratelimit", "redis_url", "redis://:pw@cache:6380/3") { $0.rateLimit.redisURL = "redis://:pw@cache:6380/3" },
    GoodValue("ratelimit", "on_backend_error", "allow") { $0.rateLimit.onBackendError = .allow },
    GoodValue("ratelimit", "timeout", "20ms") { $0.rateLimit.timeout = .milliseconds(20) },
    GoodValue("ratelimit", "hosts", "3") { $0.rateLimit.hosts = 3 },
    GoodValue("quota", "max_compute_minutes_per_day", "0") { $0.quota.maxComputeMinutesPerDay = 0 },
    GoodValue("quota", "max_storage_gb", "0.5") { $0.quota.maxStorageGB = 0.5 },
    GoodValue("quota", "max_concurrent_requests", "8") { $0.quota.maxConcurrentRequests = 8 },
    GoodValue("volumes", "prefix", "acme_t-1") { $0.volumes.prefix = "acme_t-1" },
    GoodValue("volumes", "auto_create", "off") { $0.volumes.autoCreate = false },
    GoodValue("volumes", "root", "/srv/volumes/") { $0.volumes.root = "/srv/volumes" },
    GoodValue("workers", "executable", ".build/release/my-worker") { $0.workers.executable = "/srv/bulkhead/.build/release/my-worker" },
    GoodValue("workers", "max_per_tenant", "1024") { $0.workers.maxPerTenant = 1024 },
    GoodValue("workers", "queue_size", "0") { $0.workers.queueSize = 0 },
    GoodValue("workers", "idle_timeout", "5m") { $0.workers.idleTimeout = .seconds(300) },
    GoodValue("workers", "request_timeout", "2h") { $0.workers.requestTimeout = .seconds(7200) },
    GoodValue("workers", "max_requests", "10000") { $0.workers.maxRequests = 10_000 },
    GoodValue("workers", "spawn_timeout", "1500ms") { $0.workers.spawnTimeout = .milliseconds(1500) },
    GoodValue("workers", "restart_backoff_max", "1d") { $0.workers.restartBackoffMax = .seconds(86_400) },
    GoodValue("workers", "pipeline_depth", "1") { $0.workers.pipelineDepth = 1 },
    GoodValue("sandbox", "uid_base", "1000") { $0.sandbox.uidBase = 1000 },
    GoodValue("sandbox", "uid_count", "1") { $0.sandbox.uidCount = 1 },
    GoodValue("sandbox", "memory_limit", "1GiB") { $0.sandbox.memoryLimit = 1 << 30 },
    GoodValue("sandbox", "cpu_seconds", "60") { $0.sandbox.cpuSeconds = 60 },
    GoodValue("sandbox", "max_processes", "1") { $0.sandbox.maxProcesses = 1 },
    GoodValue("sandbox", "max_open_files", "4") { $0.sandbox.maxOpenFiles = 4 },
    GoodValue("sandbox", "max_file_size", "0") { $0.sandbox.maxFileSize = 0 },
    GoodValue("sandbox", "seccomp", "policies/strict.policy") { $0.sandbox.seccomp = .file(path: "/srv/bulkhead/policies/strict.policy") },
    GoodValue("cors", "allowed_origins", "https://app.example.com, http://localhost:3000") {
        $0.cors.allowedOrigins = ["https://app.example.com", "http://localhost:3000"]
    },
    GoodValue("metrics", "per_tenant", "yes") { $0.metrics.perTenant = true },
    GoodValue("log", "level", "debug") { $0.log.level = .debug },
    GoodValue("log", "requests", "off") { $0.log.requests = false },
]

@Suite struct GoodValues {
    @Test(arguments: goodValues)
    func landsInTheStruct(_ good: GoodValue) throws {
        let environment = ["REDIS_HOST": "127.0.0.1"]  // lets backend = redis stand alone
        var expected = Config()
        expected.rateLimit.redisURL = "redis://127.0.0.1:6379/0"
        good.change(&expected)
        let parsed = try parse("[\(good.section)]\n\(good.key) = \(good.value)\n", environment: environment)
        #expect(parsed == expected)
    }

    @Test func everyKeyOfTheTableIsCovered() {
        let covered = Set(goodValues.map { KeyID(section: $0.section, name: $0.key) })
        let table = Set(configKeys.map { KeyID(section: $0.section, name: $0.name) })
        #expect(covered == table)
        #expect(configKeys.count == table.count, "a key is listed twice in the table")
    }

    @Test func theSameValuesTogetherInOneFile() throws {
        var expected = Config()
        var text = ""
        for good in goodValues where good.key != "backend" {
            good.change(&expected)
            text += "[\(good.section)]\n  \(good.key) = \(good.value) ; inline comment\n"
        }
        #expect(try parse(text) == expected)
    }

    @Test func seccompDefaultKeyword() throws {
        var config = try parse("[sandbox]\nseccomp = policies/x\n")
        #expect(config.sandbox.seccomp == .file(path: "/srv/bulkhead/policies/x"))
        config = try parse("[sandbox]\nseccomp = default\n")
        #expect(config.sandbox.seccomp == .default)
    }

    @Test func emptyOriginsMeanNone() throws {
        #expect(try parse("[cors]\nallowed_origins =\n").cors.allowedOrigins == [])
    }
}

/// `[section] key = value` on line 7 of a 9-line file should be refused with `message`.
struct BadValue: Sendable, CustomTestStringConvertible {
    let section: String
    let key: String
    let value: String
    let message: String

    init(_ section: String, _ key: String, _ value: String, _ message: String) {
        self.section = section
        self.key = key
        self.value = value
        self.message = message
    }

    var testDescription: String { "[\(section)] \(key) = \(value)" }
}

private let durationReason = "expected a number followed by ms, s, m, h or d"
private let sizeReason = "expected a number of bytes, optionally followed by K, M, G or T"
private let rateReason = "expected N/second, N/minute, N/hour or N/day"
private let listenReason = "expected HOST:PORT, [IPV6]:PORT, *:PORT, tls://HOST:PORT or unix:PATH"
private let originReason = "expected * or scheme://host[:port]"
private let redisReason = "expected redis://[:PASSWORD@]HOST[:PORT][/DB] or unix:PATH"
private let prefixReason = "expected 1 to 32 of a-z, 0-9, _ and -, starting with a letter or digit"
private let longSocket = "/run/" + String(repeating: "s", count: 103)

let badValues: [BadValue] = [
    // [server]
    BadValue("server", "listen", "localhost", #"invalid address "localhost" for listen: \#(listenReason)"#),
    BadValue("server", "listen", ":8080", #"invalid address ":8080" for listen: \#(listenReason)"#),
    BadValue("server", "listen", "[::1]8080", #"invalid address "[::1]8080" for listen: \#(listenReason)"#),
    BadValue("server", "listen", "[1.2.3.4]:80", #"invalid address "[1.2.3.4]:80" for listen: \#(listenReason)"#),
    BadValue("server", "listen", "127.0.0.1:0", #"invalid address "127.0.0.1:0" for listen: the port must be a number from 1 to 65535"#),
    BadValue("server", "listen", "127.0.0.1:65536", #"invalid address "127.0.0.1:65536" for listen: the port must be a number from 1 to 65535"#),
    BadValue("server", "listen", "127.0.0.1:http", #"invalid address "127.0.0.1:http" for listen: the port must be a number from 1 to 65535"#),
    BadValue("server", "listen", "127.0.0.1:", #"invalid address "127.0.0.1:" for listen: the port must be a number from 1 to 65535"#),
    BadValue("server", "listen", "::1:8080", #"invalid address "::1:8080" for listen: an IPv6 address must be in brackets, e.g. [::1]:8080"#),
    BadValue("server", "listen", "999.1.1.1:80", #"invalid address "999.1.1.1:80" for listen: "999.1.1.1" is not an IP address or host name"#),
    BadValue("server", "listen", "bad_host!:80", #"invalid address "bad_host!:80" for listen: "bad_host!" is not an IP address or host name"#),
    BadValue("server", "listen", "127.0.0.1:8080,,[::1]:8080",
             #"invalid list "127.0.0.1:8080,,[::1]:8080" for listen: empty address in the comma-separated list"#),
    BadValue("server", "listen", "127.0.0.1:8080, 127.0.0.1:8080", #"invalid address "127.0.0.1:8080" for listen: listed twice"#),
    BadValue("server", "listen", "*:80, 10.0.0.1:80",
             #"invalid address "10.0.0.1:80" for listen: overlaps 0.0.0.0:80 (0.0.0.0 already covers every IPv4 address)"#),
    BadValue("server", "listen", "unix:", #"invalid address "unix:" for listen: the socket path is empty"#),
    BadValue("server", "listen", "unix:" + longSocket,
             #"invalid address "unix:\#(longSocket)" for listen: \#(longSocket) is 108 bytes, a Unix socket path holds at most 107"#),
    BadValue("server", "listen", "", "missing value for listen in [server]"),
    BadValue("server", "state_dir", "~/state", #"invalid path "~/state" for state_dir: a leading ~ is not expanded; write the full path"#),
    BadValue("server", "state_dir", "", "missing value for state_dir in [server]"),
    BadValue("server", "header_timeout", "0", #"invalid duration "0" for header_timeout: must be greater than 0"#),
    BadValue("server", "body_timeout", "5x", #"invalid duration "5x" for body_timeout: \#(durationReason)"#),
    BadValue("server", "keepalive_timeout", "0", #"invalid duration "0" for keepalive_timeout: must be greater than 0"#),
    BadValue("server", "max_connections", "0", #"invalid number "0" for max_connections: must be between 1 and 1000000"#),
    BadValue("server", "event_loops", "257", #"invalid number "257" for event_loops: must be between 0 and 256"#),
    BadValue("server", "admin_group", "Ops Team",
             #"invalid group name "Ops Team" for admin_group: expected 1 to 32 characters of a-z, 0-9, _ and -"#),
    BadValue("server", "control_socket", longSocket,
             #"invalid socket path "\#(longSocket)" for control_socket: \#(longSocket) is 108 bytes, a Unix socket path holds at most 107"#),
    BadValue("server", "tls_certificate", "~/tls.crt", #"invalid path "~/tls.crt" for tls_certificate: a leading ~ is not expanded; write the full path"#),
    BadValue("server", "tls_private_key", "~/tls.key", #"invalid path "~/tls.key" for tls_private_key: a leading ~ is not expanded; write the full path"#),
    BadValue("server", "listen", "tls://unix:/x.sock", #"invalid address "tls://unix:/x.sock" for listen: TLS listens on TCP: tls://HOST:PORT"#),
    BadValue("server", "max_body_bytes", "ten", #"invalid size "ten" for max_body_bytes: \#(sizeReason)"#),
    BadValue("server", "max_body_bytes", "1.5M", #"invalid size "1.5M" for max_body_bytes: \#(sizeReason)"#),
    BadValue("server", "max_body_bytes", "-1", #"invalid size "-1" for max_body_bytes: \#(sizeReason)"#),
    BadValue("server", "max_body_bytes", "18446744073709551616", #"invalid size "18446744073709551616" for max_body_bytes: too large"#),
    BadValue("server", "max_body_bytes", "17179869184G", #"invalid size "17179869184G" for max_body_bytes: too large"#),
    BadValue("server", "drain_timeout", "30", #"invalid duration "30" for drain_timeout: a unit is required: ms, s, m, h or d"#),
    BadValue("server", "drain_timeout", "1.5s", #"invalid duration "1.5s" for drain_timeout: \#(durationReason)"#),
    BadValue("server", "drain_timeout", "106751991168d", #"invalid duration "106751991168d" for drain_timeout: too large"#),
    // [auth]
    BadValue("auth", "jwt_secret_file", "", "missing value for jwt_secret_file in [auth]"),
    BadValue("auth", "jwt_algorithm", "RS256", #"unsupported algorithm "RS256" for jwt_algorithm: only HS256 is supported"#),
    BadValue("auth", "jwt_algorithm", "none", #"unsupported algorithm "none" for jwt_algorithm: only HS256 is supported"#),
    BadValue("auth", "jwt_algorithm", "hs256", #"unsupported algorithm "hs256" for jwt_algorithm: only HS256 is supported"#),
    BadValue("auth", "issuer", "", "missing value for issuer in [auth]"),
    BadValue("auth", "audience", "", "missing value for audience in [auth]"),
    BadValue("auth", "external_issuer", "", "missing value for external_issuer in [auth]"),
    BadValue("auth", "external_algorithm", "HS256", #"unsupported algorithm "HS256" for external_algorithm: expected RS256, ES256 or EdDSA"#),
    BadValue("auth", "external_public_key_file", "~/k.pem", #"invalid path "~/k.pem" for external_public_key_file: a leading ~ is not expanded; write the full path"#),
    BadValue("auth", "external_tenant_claim", "a b", #"invalid claim name "a b" for external_tenant_claim: expected 1 to 64 printable characters without spaces"#),
    BadValue("auth", "leeway", "30x", #"invalid duration "30x" for leeway: \#(durationReason)"#),
    // [ratelimit]
    BadValue("ratelimit", "rate", "1000", #"invalid rate "1000" for rate: \#(rateReason)"#),
    BadValue("ratelimit", "rate", "10/week", #"invalid rate "10/week" for rate: \#(rateReason)"#),
    BadValue("ratelimit", "rate", "0/hour", #"invalid rate "0/hour" for rate: the count must be at least 1"#),
    BadValue("ratelimit", "rate", "99999999999999999999/s", #"invalid rate "99999999999999999999/s" for rate: too large"#),
    BadValue("ratelimit", "burst", "0", #"invalid number "0" for burst: must be at least 1"#),
    BadValue("ratelimit", "burst", "lots", #"invalid number "lots" for burst: expected a whole number"#),
    BadValue("ratelimit", "burst", "18446744073709551616", #"invalid number "18446744073709551616" for burst: too large (max 18446744073709551615)"#),
    BadValue("ratelimit", "mode", "dry-run", #"invalid value "dry-run" for mode: expected enforce or shadow"#),
    BadValue("ratelimit", "backend", "Redis", #"invalid value "Redis" for backend: expected memory or redis"#),
    BadValue("ratelimit", "redis_url", "http://cache", #"invalid Redis URL "http://cache" for redis_url: \#(redisReason)"#),
    BadValue("ratelimit", "redis_url", "redis://", #"invalid Redis URL "redis://" for redis_url: the host is missing"#),
    BadValue("ratelimit", "redis_url", "redis://cache:0", #"invalid Redis URL "redis://cache:0" for redis_url: the port must be a number from 1 to 65535"#),
    BadValue("ratelimit", "redis_url", "redis://cache/x", #"invalid Redis URL "redis://cache/x" for redis_url: the database must be a number from 0 to 2147483647"#),
    BadValue("ratelimit", "redis_url", "rediss://cache", #"invalid Redis URL "rediss://cache" for redis_url: TLS (rediss://) is not supported"#),
    BadValue("ratelimit", "redis_url", "redis://pw@cache", #"invalid Redis URL "redis://***@cache" for redis_url: the password must follow a ":", e.g. redis://:PASSWORD@HOST"#),
    BadValue("ratelimit", "redis_url", "redis://:@cache", #"invalid Redis URL "redis://:@cache" for redis_url: the password is empty"#),
    BadValue("ratelimit", "redis_url", "redis://:p%zz@cache", #"invalid Redis URL "redis://:***@cache" for redis_url: bad percent-encoding in the user or password"#),
    BadValue("ratelimit", "redis_url", "redis://ca che", #"invalid Redis URL "redis://ca che" for redis_url: "ca che" is not an IP address or host name"#),
    BadValue("ratelimit", "redis_url", "unix:", #"invalid Redis URL "unix:" for redis_url: the socket path is empty"#),
    BadValue("ratelimit", "redis_url", "", "missing value for redis_url in [ratelimit]"),
    BadValue("ratelimit", "on_backend_error", "fail", #"invalid value "fail" for on_backend_error: expected deny or allow"#),
    BadValue("ratelimit", "timeout", "0", #"invalid duration "0" for timeout: must be greater than 0"#),
    BadValue("ratelimit", "timeout", "5", #"invalid duration "5" for timeout: a unit is required: ms, s, m, h or d"#),
    BadValue("ratelimit", "hosts", "0", #"invalid number "0" for hosts: must be at least 1"#),
    BadValue("ratelimit", "hosts", "4294967296", #"invalid number "4294967296" for hosts: too large (max 4294967295)"#),
    // [quota]
    BadValue("quota", "max_compute_minutes_per_day", "-1", #"invalid number "-1" for max_compute_minutes_per_day: must be at least 0"#),
    BadValue("quota", "max_compute_minutes_per_day", "1.5", #"invalid number "1.5" for max_compute_minutes_per_day: expected a whole number"#),
    BadValue("quota", "max_storage_gb", "0", #"invalid number "0" for max_storage_gb: must be greater than 0"#),
    BadValue("quota", "max_concurrent_requests", "1000001", #"invalid number "1000001" for max_concurrent_requests: must be at most 1000000"#),
    BadValue("quota", "max_storage_gb", "-1", #"invalid number "-1" for max_storage_gb: expected a decimal number such as 50 or 0.5"#),
    BadValue("quota", "max_storage_gb", "50GB", #"invalid number "50GB" for max_storage_gb: expected a decimal number such as 50 or 0.5"#),
    // [volumes]
    BadValue("volumes", "prefix", "Tenant", #"invalid prefix "Tenant" for prefix: \#(prefixReason)"#),
    BadValue("volumes", "prefix", "-tenant", #"invalid prefix "-tenant" for prefix: \#(prefixReason)"#),
    BadValue("volumes", "prefix", String(repeating: "t", count: 33), #"invalid prefix "\#(String(repeating: "t", count: 33))" for prefix: \#(prefixReason)"#),
    BadValue("volumes", "auto_create", "maybe", #"invalid boolean "maybe" for auto_create: expected true, false, yes, no, on, off, 1 or 0"#),
    BadValue("volumes", "auto_create", "True", #"invalid boolean "True" for auto_create: expected true, false, yes, no, on, off, 1 or 0"#),
    BadValue("volumes", "root", "~tenant/volumes", #"invalid path "~tenant/volumes" for root: a leading ~ is not expanded; write the full path"#),
    // [workers]
    BadValue("workers", "executable", "", "missing value for executable in [workers]"),
    BadValue("workers", "max_per_tenant", "0", #"invalid number "0" for max_per_tenant: must be between 1 and 1024"#),
    BadValue("workers", "max_per_tenant", "1025", #"invalid number "1025" for max_per_tenant: must be between 1 and 1024"#),
    BadValue("workers", "queue_size", "-1", #"invalid number "-1" for queue_size: must be at least 0"#),
    BadValue("workers", "idle_timeout", "60x", #"invalid duration "60x" for idle_timeout: \#(durationReason)"#),
    BadValue("workers", "idle_timeout", "0", #"invalid duration "0" for idle_timeout: must be greater than 0"#),
    BadValue("workers", "request_timeout", "0s", #"invalid duration "0s" for request_timeout: must be greater than 0"#),
    BadValue("workers", "max_requests", "-5", #"invalid number "-5" for max_requests: must be at least 0"#),
    BadValue("workers", "spawn_timeout", "5 s", #"invalid duration "5 s" for spawn_timeout: \#(durationReason)"#),
    BadValue("workers", "pipeline_depth", "0", #"invalid number "0" for pipeline_depth: must be between 1 and 256"#),
    BadValue("workers", "restart_backoff_max", "0ms", #"invalid duration "0ms" for restart_backoff_max: must be greater than 0"#),
    // [sandbox]
    BadValue("sandbox", "uid_base", "999", #"invalid number "999" for uid_base: must be at least 1000"#),
    BadValue("sandbox", "uid_base", "4294967296", #"invalid number "4294967296" for uid_base: too large (max 4294967295)"#),
    BadValue("sandbox", "uid_base", "2147483648", "uid_base + uid_count is 2147549184, more than 2^31 (2147483648)"),
    BadValue("sandbox", "uid_count", "0", #"invalid number "0" for uid_count: must be at least 1"#),
    BadValue("sandbox", "uid_count", "2147483647", "uid_base + uid_count is 2147683647, more than 2^31 (2147483648)"),
    BadValue("sandbox", "memory_limit", "0", #"invalid size "0" for memory_limit: must be greater than 0"#),
    BadValue("sandbox", "memory_limit", "512X", #"invalid size "512X" for memory_limit: \#(sizeReason)"#),
    BadValue("sandbox", "cpu_seconds", "0", #"invalid number "0" for cpu_seconds: must be at least 1"#),
    BadValue("sandbox", "max_processes", "0", #"invalid number "0" for max_processes: must be at least 1"#),
    BadValue("sandbox", "max_open_files", "3", #"invalid number "3" for max_open_files: must be at least 4"#),
    BadValue("sandbox", "max_file_size", "1P", #"invalid size "1P" for max_file_size: \#(sizeReason)"#),
    BadValue("sandbox", "seccomp", "", "missing value for seccomp in [sandbox]"),
    // [cors]
    BadValue("cors", "allowed_origins", "example.com", #"invalid origin "example.com" for allowed_origins: \#(originReason)"#),
    BadValue("cors", "allowed_origins", "https://example.com/",
             #"invalid origin "https://example.com/" for allowed_origins: an origin has no path; remove the trailing "/""#),
    BadValue("cors", "allowed_origins", "https://example.com/app", #"invalid origin "https://example.com/app" for allowed_origins: \#(originReason)"#),
    BadValue("cors", "allowed_origins", "https://user@example.com", #"invalid origin "https://user@example.com" for allowed_origins: \#(originReason)"#),
    BadValue("cors", "allowed_origins", "1http://example.com", #"invalid origin "1http://example.com" for allowed_origins: \#(originReason)"#),
    BadValue("cors", "allowed_origins", "https://a.com:0", #"invalid origin "https://a.com:0" for allowed_origins: the port must be a number from 1 to 65535"#),
    BadValue("cors", "allowed_origins", "https://a.com, https://A.com", #"invalid origin "https://A.com" for allowed_origins: listed twice"#),
    BadValue("cors", "allowed_origins", "*, https://a.com", #"invalid origin "*" for allowed_origins: * allows every origin and cannot be combined with others"#),
    BadValue("cors", "allowed_origins", "https://a.com,", #"invalid list "https://a.com," for allowed_origins: empty origin in the comma-separated list"#),
    // [metrics]
    BadValue("log", "requests", "some", #"invalid boolean "some" for requests: expected true, false, yes, no, on, off, 1 or 0"#),
    BadValue("log", "level", "verbose", #"invalid value "verbose" for level: expected debug, info, warning or error"#),
    BadValue("metrics", "per_tenant", "sometimes", #"invalid boolean "sometimes" for per_tenant: expected true, false, yes, no, on, off, 1 or 0"#),
]

@Suite struct BadValues {
    /// The bad line is line 7 of 9; the filler sets a key of another section.
    static func file(_ bad: BadValue) -> String {
        let filler = bad.section == "quota" ? "[cors]\nallowed_origins = https://example.com" : "[quota]\nmax_storage_gb = 10"
        return """
            ; a test configuration
            \(filler)

            [\(bad.section)]
            ; the key under test
            \(bad.key) = \(bad.value)
            ; after it
            [volumes]
            """
    }

    @Test(arguments: badValues)
    func refusedWithItsLine(_ bad: BadValue) {
        let text = Self.file(bad)
        #expect(text.split(separator: "\n", omittingEmptySubsequences: false).count == 9)
        #expect(failure(text) == "test.conf:7: \(bad.message)")
    }

    @Test func everyKeyHasAtLeastOneBadValue() {
        let covered = Set(badValues.map { KeyID(section: $0.section, name: $0.key) })
        let missing = configKeys.map { KeyID(section: $0.section, name: $0.name) }.filter { !covered.contains($0) }
        #expect(missing.isEmpty, "no bad value for \(missing)")
    }
}
