// PublicAPITests.swift: what a client module sees with a plain `import Config`.

import Config
import Testing

@Suite struct PublicAPI {
    @Test func aClientCanUseEverything() throws {
        let text = """
            [server]
            listen = [::1]:9443, unix:run/http.sock
            [ratelimit]
            rate = 20/minute
            backend = redis
            [sandbox]
            seccomp = /etc/bulkhead/seccomp.policy
            """
        let config: Config = try Config.parse(text: text, file: "client.conf", environment: ["REDIS_HOST": "cache"], workingDirectory: "/srv")
        let server: Config.Server = config.server
        #expect(server.listen.map(\.description) == ["[::1]:9443", "unix:/srv/run/http.sock"])
        let rate: Rate = config.rateLimit.rate
        #expect(rate.count == 20 && rate.unit == .minute && rate.period == .seconds(60))
        #expect(config.rateLimit.backend == Config.RateLimit.Backend.redis)
        #expect(config.rateLimit.onBackendError == Config.RateLimit.FailurePolicy.deny)
        #expect(config.rateLimit.redisEndpoint?.transport == .tcp(host: "cache", port: 6379))
        #expect(config.sandbox.seccomp == SeccompPolicy.file(path: "/etc/bulkhead/seccomp.policy"))
        #expect(config.auth.jwtAlgorithm == Config.Auth.Algorithm.hs256)

        let error = #expect(throws: ConfigError.self) {
            try Config.parse(text: "[server]\nlisten = nowhere\n", file: "client.conf", workingDirectory: "/")
        }
        #expect(error?.line == 2)
        #expect(error?.file == "client.conf")

        #expect(try ValueSyntax.duration("5m") == .seconds(300))
        #expect(throws: ValueError.self) { try ValueSyntax.size("5Q") }
        #expect(ValueError("invalid size", "5Q", "why").message(key: "k") == #"invalid size "5Q" for k: why"#)
    }
}
