// ValueSyntaxTests.swift: the value parsers on their own, good and bad input.

import Testing
@testable import Config

@Suite struct DurationSyntax {
    @Test(arguments: [
        ("0", Duration.zero), ("0s", .zero), ("250ms", .milliseconds(250)), ("60s", .seconds(60)),
        ("5m", .seconds(300)), ("2h", .seconds(7200)), ("1d", .seconds(86_400)), ("007s", .seconds(7)),
        ("9223372036854775807ms", .milliseconds(Int64.max)),
    ])
    func good(text: String, expected: Duration) throws {
        #expect(try ValueSyntax.duration(text) == expected)
    }

    @Test(arguments: [
        ("30", "a unit is required: ms, s, m, h or d"),
        ("60x", "expected a number followed by ms, s, m, h or d"),
        ("30sec", "expected a number followed by ms, s, m, h or d"),
        ("-5s", "expected a number followed by ms, s, m, h or d"),
        ("1.5s", "expected a number followed by ms, s, m, h or d"),
        ("5 s", "expected a number followed by ms, s, m, h or d"),
        ("s", "expected a number followed by ms, s, m, h or d"),
        ("", "expected a number followed by ms, s, m, h or d"),
        ("5S", "expected a number followed by ms, s, m, h or d"),
        ("9223372036854775808ms", "too large"),
        ("106751991168d", "too large"),
        ("99999999999999999999999s", "too large"),
    ])
    func bad(text: String, reason: String) {
        #expect(throws: ValueError("invalid duration", text, reason)) { try ValueSyntax.duration(text) }
    }
}

@Suite struct SizeSyntax {
    static let goodSizes: [(String, UInt64)] = [
        ("0", 0), ("10485760", 10_485_760), ("512M", 536_870_912), ("512m", 536_870_912), ("1G", 1_073_741_824),
        ("1GiB", 1_073_741_824), ("1gib", 1_073_741_824), ("64KB", 65_536), ("64k", 65_536), ("2T", 2_199_023_255_552),
        ("3MB", 3_145_728), ("16777215T", 18_446_742_974_197_923_840),
    ]

    @Test(arguments: goodSizes)
    func good(text: String, expected: UInt64) throws {
        #expect(try ValueSyntax.size(text) == expected)
    }

    @Test(arguments: [
        ("ten", "expected a number of bytes, optionally followed by K, M, G or T"),
        ("1.5M", "expected a number of bytes, optionally followed by K, M, G or T"),
        ("-1", "expected a number of bytes, optionally followed by K, M, G or T"),
        ("5 M", "expected a number of bytes, optionally followed by K, M, G or T"),
        ("1P", "expected a number of bytes, optionally followed by K, M, G or T"),
        ("1MiBB", "expected a number of bytes, optionally followed by K, M, G or T"),
        ("100B", "expected a number of bytes, optionally followed by K, M, G or T"),
        ("M", "expected a number of bytes, optionally followed by K, M, G or T"),
        ("18446744073709551616", "too large"),
        ("16777216T", "too large"),
    ])
    func bad(text: String, reason: String) {
        #expect(throws: ValueError("invalid size", text, reason)) { try ValueSyntax.size(text) }
    }
}

@Suite struct RateSyntax {
    @Test(arguments: [
        ("1000/hour", Rate(count: 1000, unit: .hour)), ("10/second", Rate(count: 10, unit: .second)),
        ("10/s", Rate(count: 10, unit: .second)), ("60/minute", Rate(count: 60, unit: .minute)),
        ("60/m", Rate(count: 60, unit: .minute)), ("5/h", Rate(count: 5, unit: .hour)),
        ("100000/day", Rate(count: 100_000, unit: .day)), ("1/d", Rate(count: 1, unit: .day)),
    ])
    func good(text: String, expected: Rate) throws {
        #expect(try ValueSyntax.rate(text) == expected)
    }

    @Test func periodFollowsUnit() {
        #expect(Rate(count: 1, unit: .second).period == .seconds(1))
        #expect(Rate(count: 1, unit: .minute).period == .seconds(60))
        #expect(Rate(count: 1, unit: .hour).period == .seconds(3600))
        #expect(Rate(count: 1, unit: .day).period == .seconds(86_400))
        #expect(Rate(count: 1000, unit: .hour).description == "1000/hour")
    }

    @Test(arguments: [
        ("1000", "expected N/second, N/minute, N/hour or N/day"),
        ("10/week", "expected N/second, N/minute, N/hour or N/day"),
        ("/hour", "expected N/second, N/minute, N/hour or N/day"),
        ("ten/hour", "expected N/second, N/minute, N/hour or N/day"),
        ("10 / hour", "expected N/second, N/minute, N/hour or N/day"),
        ("10/Hour", "expected N/second, N/minute, N/hour or N/day"),
        ("10/hour/day", "expected N/second, N/minute, N/hour or N/day"),
        ("-1/hour", "expected N/second, N/minute, N/hour or N/day"),
        ("0/hour", "the count must be at least 1"),
        ("18446744073709551616/s", "too large"),
    ])
    func bad(text: String, reason: String) {
        #expect(throws: ValueError("invalid rate", text, reason)) { try ValueSyntax.rate(text) }
    }
}

@Suite struct BoolSyntax {
    @Test(arguments: [("true", true), ("yes", true), ("on", true), ("1", true), ("false", false), ("no", false), ("off", false), ("0", false)])
    func good(text: String, expected: Bool) throws {
        #expect(try ValueSyntax.bool(text) == expected)
    }

    @Test(arguments: ["maybe", "True", "YES", "2", "", "t"])
    func bad(text: String) {
        #expect(throws: ValueError("invalid boolean", text, "expected true, false, yes, no, on, off, 1 or 0")) {
            try ValueSyntax.bool(text)
        }
    }
}

@Suite struct IntegerSyntax {
    @Test func inRange() throws {
        #expect(try ValueSyntax.integer("4", in: 1...1024) == 4)
        #expect(try ValueSyntax.integer("0", in: 0...Int.max) == 0)
        #expect(try ValueSyntax.integer("4294967295", in: 1...UInt32.max) == UInt32.max)
        #expect(try ValueSyntax.integer("18446744073709551615", in: 0...UInt64.max) == UInt64.max)
    }

    @Test func outOfRange() {
        #expect(throws: ValueError("invalid number", "0", "must be between 1 and 1024")) { try ValueSyntax.integer("0", in: 1...1024) }
        #expect(throws: ValueError("invalid number", "-3", "must be between 1 and 1024")) { try ValueSyntax.integer("-3", in: 1...1024) }
        #expect(throws: ValueError("invalid number", "99999999999999999999", "must be between 1 and 1024")) {
            try ValueSyntax.integer("99999999999999999999", in: 1...1024)
        }
        #expect(throws: ValueError("invalid number", "-1", "must be at least 0")) { try ValueSyntax.integer("-1", in: 0...UInt64.max) }
        #expect(throws: ValueError("invalid number", "4294967296", "too large (max 4294967295)")) {
            try ValueSyntax.integer("4294967296", in: 1...UInt32.max)
        }
        #expect(throws: ValueError("invalid number", "-99999999999999999999", "must be at least 1")) {
            try ValueSyntax.integer("-99999999999999999999", in: 1...UInt64.max)
        }
    }

    @Test(arguments: ["", "-", "+5", "1e3", "1.0", "0x10", "1_000", " 1", "one"])
    func notANumber(text: String) {
        #expect(throws: ValueError("invalid number", text, "expected a whole number")) { try ValueSyntax.integer(text, in: 0...Int.max) }
    }

    @Test func decimals() throws {
        #expect(try ValueSyntax.positiveDecimal("50") == 50)
        #expect(try ValueSyntax.positiveDecimal("0.5") == 0.5)
        #expect(try ValueSyntax.positiveDecimal("1.25") == 1.25)
        for text in ["-1", "1e3", "inf", "nan", ".5", "5.", "1.2.3", "", "5 "] {
            #expect(throws: ValueError("invalid number", text, "expected a decimal number such as 50 or 0.5")) {
                try ValueSyntax.positiveDecimal(text)
            }
        }
        #expect(throws: ValueError("invalid number", "0.0", "must be greater than 0")) { try ValueSyntax.positiveDecimal("0.0") }
    }
}

@Suite struct PathSyntax {
    @Test(arguments: [
        ("/var/lib/bulkhead", "/var/lib/bulkhead"), ("var", "/srv/bulkhead/var"), ("./var/", "/srv/bulkhead/var"),
        ("a/../b//c/./d/", "/srv/bulkhead/b/c/d"), ("../../../../etc", "/etc"), ("/", "/"), ("/a/..", "/"),
        ("..", "/srv"), ("/x/./y/../z", "/x/z"), (".", "/srv/bulkhead"), ("tenant data", "/srv/bulkhead/tenant data"),
    ])
    func resolved(text: String, expected: String) throws {
        #expect(try ValueSyntax.path(text, relativeTo: testWorkingDirectory) == expected)
    }

    @Test func refused() {
        #expect(throws: ValueError("invalid path", "", "must not be empty")) { try ValueSyntax.path("", relativeTo: "/") }
        #expect(throws: ValueError("invalid path", "a\0b", "must not contain a NUL byte")) { try ValueSyntax.path("a\0b", relativeTo: "/") }
        #expect(throws: ValueError("invalid path", "~/x", "a leading ~ is not expanded; write the full path")) {
            try ValueSyntax.path("~/x", relativeTo: "/")
        }
        let long = "/" + String(repeating: "x", count: 4095)
        #expect(throws: ValueError("invalid path", long, "too long (max 4095 bytes)")) { try ValueSyntax.path(long, relativeTo: "/") }
        let socket = "/" + String(repeating: "s", count: 107)
        #expect(throws: ValueError("invalid socket path", socket, "\(socket) is 108 bytes, a Unix socket path holds at most 107")) {
            try ValueSyntax.socketPath(socket, relativeTo: "/")
        }
        #expect(throws: Never.self) { try ValueSyntax.socketPath(String(socket.dropLast()), relativeTo: "/") }
    }
}

@Suite struct ListenSyntax {
    @Test(arguments: [
        ("127.0.0.1:8080", ListenAddress.tcp(host: "127.0.0.1", port: 8080), "127.0.0.1:8080"),
        ("[::1]:8080", .tcp(host: "::1", port: 8080), "[::1]:8080"),
        ("[::]:80", .tcp(host: "::", port: 80), "[::]:80"),
        ("*:80", .tcp(host: "0.0.0.0", port: 80), "0.0.0.0:80"),
        ("0.0.0.0:65535", .tcp(host: "0.0.0.0", port: 65535), "0.0.0.0:65535"),
        ("localhost:1", .tcp(host: "localhost", port: 1), "localhost:1"),
        ("api.example.com:443", .tcp(host: "api.example.com", port: 443), "api.example.com:443"),
        ("unix:/run/bulkhead/http.sock", .unix(path: "/run/bulkhead/http.sock"), "unix:/run/bulkhead/http.sock"),
        ("unix:var/http.sock", .unix(path: "/srv/bulkhead/var/http.sock"), "unix:/srv/bulkhead/var/http.sock"),
    ])
    func good(text: String, expected: ListenAddress, description: String) throws {
        let address = try ValueSyntax.listenAddress(text, relativeTo: testWorkingDirectory)
        #expect(address == expected)
        #expect(address.description == description)
    }

    @Test func lists() throws {
        #expect(try ValueSyntax.listenAddresses("127.0.0.1:8080, [::1]:8080,unix:x.sock", relativeTo: "/w") == [
            .tcp(host: "127.0.0.1", port: 8080), .tcp(host: "::1", port: 8080), .unix(path: "/w/x.sock"),
        ])
        // Different ports, or a wildcard of the other family, do not clash.
        #expect(throws: Never.self) { try ValueSyntax.listenAddresses("0.0.0.0:80, 127.0.0.1:81, [::1]:80", relativeTo: "/") }
    }
}

@Suite struct OriginSyntax {
    @Test(arguments: [
        ("*", "*"), ("https://example.com", "https://example.com"), ("http://localhost:3000", "http://localhost:3000"),
        ("HTTPS://App.Example.COM", "https://app.example.com"), ("http://[::1]:8080", "http://[::1]:8080"),
        ("http://127.0.0.1", "http://127.0.0.1"), ("chrome-extension://abcdef", "chrome-extension://abcdef"),
    ])
    func good(text: String, expected: String) throws {
        #expect(try ValueSyntax.origin(text) == expected)
    }

    @Test func lists() throws {
        #expect(try ValueSyntax.origins("") == [])
        #expect(try ValueSyntax.origins("https://a.com, http://localhost:3000") == ["https://a.com", "http://localhost:3000"])
    }
}

@Suite struct RedisSyntax {
    @Test(arguments: [
        ("redis://localhost", RedisEndpoint(transport: .tcp(host: "localhost", port: 6379))),
        ("redis://10.0.0.1:6380/2", RedisEndpoint(transport: .tcp(host: "10.0.0.1", port: 6380), database: 2)),
        ("redis://:secret@redis:6379/0", RedisEndpoint(transport: .tcp(host: "redis", port: 6379), password: "secret")),
        ("redis://app:p%40ss%3Aw@redis/1", RedisEndpoint(transport: .tcp(host: "redis", port: 6379), username: "app", password: "p@ss:w", database: 1)),
        ("redis://[::1]:7000", RedisEndpoint(transport: .tcp(host: "::1", port: 7000))),
        ("redis://[::1]", RedisEndpoint(transport: .tcp(host: "::1", port: 6379))),
        ("redis://h/", RedisEndpoint(transport: .tcp(host: "h", port: 6379))),
        ("unix:/run/redis/redis.sock", RedisEndpoint(transport: .unix(path: "/run/redis/redis.sock"))),
        ("unix:var/redis.sock", RedisEndpoint(transport: .unix(path: "/srv/bulkhead/var/redis.sock"))),
    ])
    func good(text: String, expected: RedisEndpoint) throws {
        #expect(try ValueSyntax.redisEndpoint(text, relativeTo: testWorkingDirectory) == expected)
    }

    @Test func builtURLsRoundTrip() throws {
        let url = ValueSyntax.redisURL(host: "::1", port: 6380, password: "p@ss/:w rd%")
        #expect(url == "redis://:p%40ss%2F%3Aw%20rd%25@[::1]:6380/0")
        #expect(try ValueSyntax.redisEndpoint(url, relativeTo: "/")
            == RedisEndpoint(transport: .tcp(host: "::1", port: 6380), password: "p@ss/:w rd%"))
    }
}

@Suite struct PrefixSyntax {
    @Test(arguments: ["tenant", "t", "0", "a_b-c", "abcdefghijklmnopqrstuvwxyz012345"])
    func good(text: String) throws {
        #expect(try ValueSyntax.volumePrefix(text) == text)
    }

    @Test(arguments: ["", "Tenant", "-tenant", "_x", "ten ant", "tenant.x", "abcdefghijklmnopqrstuvwxyz0123456", "ténant"])
    func bad(text: String) {
        #expect(throws: ValueError("invalid prefix", text, "expected 1 to 32 of a-z, 0-9, _ and -, starting with a letter or digit")) {
            try ValueSyntax.volumePrefix(text)
        }
    }
}
