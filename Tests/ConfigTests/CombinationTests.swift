// CombinationTests.swift: rules across keys, the REDIS_* environment, and path resolution.

import Testing
@testable import Config

@Suite struct Combinations {
    @Test(arguments: [
        // Only one of the two keys set: its line.
        ("[sandbox]\n\nuid_base = 2147483000\n", "test.conf:3: uid_base + uid_count is 2147548536, more than 2^31 (2147483648)"),
        // Both set: the later line, whichever key it is.
        ("[sandbox]\nuid_count = 2000000000\n\n\nuid_base = 200000000\n", "test.conf:5: uid_base + uid_count is 2200000000, more than 2^31 (2147483648)"),
        ("[sandbox]\nuid_base = 200000000\n\nuid_count = 2000000000\n", "test.conf:4: uid_base + uid_count is 2200000000, more than 2^31 (2147483648)"),
        ("[sandbox]\nuid_count = 2000000000\n[server]\n[sandbox]\nuid_base = 200000000\n", "test.conf:5: uid_base + uid_count is 2200000000, more than 2^31 (2147483648)"),
        // backend = redis with nowhere to connect.
        ("[ratelimit]\nrate = 5/s\nbackend = redis\nburst = 3\n", "test.conf:3: backend = redis needs redis_url, or REDIS_HOST in the environment"),
        // The control socket cannot also serve HTTP.
        ("[server]\ncontrol_socket = var/c.sock\nlisten = unix:/srv/bulkhead/var/c.sock\n", "test.conf:3: control_socket /srv/bulkhead/var/c.sock is also a listen address"),
        ("[server]\nlisten = unix:var/c.sock\n[auth]\n[server]\ncontrol_socket = ./var/c.sock\n", "test.conf:5: control_socket /srv/bulkhead/var/c.sock is also a listen address"),
    ])
    func refused(text: String, expected: String) {
        #expect(failure(text) == expected)
    }

    @Test func uidRangeUpToExactly2To31() throws {
        let config = try parse("[sandbox]\nuid_base = 2147418112\nuid_count = 65536\n")
        #expect(UInt64(config.sandbox.uidBase) + UInt64(config.sandbox.uidCount) == 1 << 31)
    }

    @Test func redisBackendWithAURL() throws {
        let config = try parse("[ratelimit]\nbackend = redis\nredis_url = unix:var/redis.sock\n")
        #expect(config.rateLimit.backend == .redis)
        #expect(config.rateLimit.redisURL == "unix:/srv/bulkhead/var/redis.sock")
        #expect(config.rateLimit.redisEndpoint == RedisEndpoint(transport: .unix(path: "/srv/bulkhead/var/redis.sock")))
    }
}

@Suite struct RedisEnvironment {
    static let redis = "[ratelimit]\nbackend = redis\n"

    @Test(arguments: [
        (["REDIS_HOST": "cache.internal"], "redis://cache.internal:6379/0"),
        (["REDIS_HOST": "10.0.0.5", "REDIS_PORT": "6380"], "redis://10.0.0.5:6380/0"),
        (["REDIS_HOST": "10.0.0.5", "REDIS_PORT": "6380", "REDIS_PASSWORD": "p@ss:word/1"], "redis://:p%40ss%3Aword%2F1@10.0.0.5:6380/0"),
        (["REDIS_HOST": "::1", "REDIS_PASSWORD": ""], "redis://[::1]:6379/0"),
        (["REDIS_HOST": "cache", "REDIS_PORT": ""], "redis://cache:6379/0"),
    ])
    func buildsTheURL(environment: [String: String], url: String) throws {
        let config = try parse(Self.redis, environment: environment)
        #expect(config.rateLimit.redisURL == url)
        let endpoint = try #require(config.rateLimit.redisEndpoint)
        #expect(endpoint.transport == .tcp(host: environment["REDIS_HOST"]!, port: UInt16(environment["REDIS_PORT"] ?? "") ?? 6379))
        #expect(endpoint.password == environment["REDIS_PASSWORD"].flatMap { $0.isEmpty ? nil : $0 })
    }

    @Test func theFileWinsOverTheEnvironment() throws {
        let config = try parse(Self.redis + "redis_url = redis://file-host/2\n", environment: ["REDIS_HOST": "env-host", "REDIS_PASSWORD": "x"])
        #expect(config.rateLimit.redisURL == "redis://file-host/2")
        #expect(config.rateLimit.redisEndpoint == RedisEndpoint(transport: .tcp(host: "file-host", port: 6379), database: 2))
    }

    @Test func withoutAHostTheEnvironmentIsNotUsed() throws {
        #expect(failure(Self.redis, environment: ["REDIS_PORT": "6380", "REDIS_PASSWORD": "x"])
            == "test.conf:2: backend = redis needs redis_url, or REDIS_HOST in the environment")
        #expect(failure(Self.redis, environment: ["REDIS_HOST": ""])
            == "test.conf:2: backend = redis needs redis_url, or REDIS_HOST in the environment")
        #expect(try parse("", environment: ["REDIS_PORT": "6380"]).rateLimit.redisURL == nil)
    }

    @Test func theMemoryBackendStillSeesTheURL() throws {
        let config = try parse("", environment: ["REDIS_HOST": "cache"])
        #expect(config.rateLimit.backend == .memory)
        #expect(config.rateLimit.redisURL == "redis://cache:6379/0")
    }

    @Test(arguments: [
        (["REDIS_HOST": "cache", "REDIS_PORT": "abc"], #"test.conf: invalid REDIS_PORT "abc" in the environment: expected a number from 1 to 65535"#),
        (["REDIS_HOST": "cache", "REDIS_PORT": "0"], #"test.conf: invalid REDIS_PORT "0" in the environment: expected a number from 1 to 65535"#),
        (["REDIS_HOST": "cache", "REDIS_PORT": "70000"], #"test.conf: invalid REDIS_PORT "70000" in the environment: expected a number from 1 to 65535"#),
        (["REDIS_HOST": "ca che"], #"test.conf: invalid REDIS_HOST "ca che" in the environment: expected a host name or IP address"#),
        (["REDIS_HOST": "[::1]"], #"test.conf: invalid REDIS_HOST "[::1]" in the environment: expected a host name or IP address"#),
        (["REDIS_HOST": "*"], #"test.conf: invalid REDIS_HOST "*" in the environment: expected a host name or IP address"#),
    ])
    func badEnvironment(environment: [String: String], expected: String) {
        #expect(failure(Self.redis, environment: environment) == expected)
    }
}

@Suite struct RelativePaths {
    @Test func resolvedAgainstTheWorkingDirectory() throws {
        let text = """
            [server]
            state_dir = ./var/../state//
            control_socket = run/control.sock
            listen = unix:run/http.sock
            [auth]
            jwt_secret_file = secrets/jwt.key
            [volumes]
            root = ../volumes
            [workers]
            executable = bin/./worker
            [sandbox]
            seccomp = policy/strict
            [ratelimit]
            redis_url = unix:run/redis.sock
            """
        let config = try Config.parse(text: text, file: "t.conf", workingDirectory: "/opt/./bulkhead/")
        #expect(config.server.stateDir == "/opt/bulkhead/state")
        #expect(config.server.controlSocket == "/opt/bulkhead/run/control.sock")
        #expect(config.server.listen == [.unix(path: "/opt/bulkhead/run/http.sock")])
        #expect(config.auth.jwtSecretFile == "/opt/bulkhead/secrets/jwt.key")
        #expect(config.volumes.root == "/opt/volumes")
        #expect(config.workers.executable == "/opt/bulkhead/bin/worker")
        #expect(config.sandbox.seccomp == .file(path: "/opt/bulkhead/policy/strict"))
        #expect(config.rateLimit.redisURL == "unix:/opt/bulkhead/run/redis.sock")
    }

    @Test func defaultsFollowTheStateDirectory() throws {
        let defaults = Config()
        #expect(defaults.resolvedJWTSecretFile == "/var/lib/bulkhead/jwt.key")
        #expect(defaults.resolvedVolumesRoot == "/var/lib/bulkhead/volumes")
        #expect(defaults.workers.resolvedExecutable(daemonDirectory: "/usr/local/bin/") == "/usr/local/bin/bulkhead-worker")

        let moved = try parse("[server]\nstate_dir = var\n")
        #expect(moved.auth.jwtSecretFile == nil)
        #expect(moved.resolvedJWTSecretFile == "/srv/bulkhead/var/jwt.key")
        #expect(moved.resolvedVolumesRoot == "/srv/bulkhead/var/volumes")

        let explicit = try parse("[server]\nstate_dir = var\n[auth]\njwt_secret_file = /k\n[volumes]\nroot = /v\n[workers]\nexecutable = /w\n")
        #expect(explicit.resolvedJWTSecretFile == "/k")
        #expect(explicit.resolvedVolumesRoot == "/v")
        #expect(explicit.workers.resolvedExecutable(daemonDirectory: "/usr/bin") == "/w")
    }
}
