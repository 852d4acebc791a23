// ShippedFilesTests.swift: the defaults match SPEC §3, and etc/*.conf and
// docs/CONFIGURATION.md agree with the key table.

import Testing
@testable import Config

@Suite struct Defaults {
    @Test func matchTheSpecification() {
        let c = Config()
        #expect(c.server.listen == [.tcp(host: "127.0.0.1", port: 8080)])
        #expect(c.server.stateDir == "/var/lib/bulkhead")
        #expect(c.server.controlSocket == "/run/bulkhead/control.sock")
        #expect(c.server.maxBodyBytes == 10_485_760)
        #expect(c.server.drainTimeout == .seconds(30))
        #expect(c.auth.jwtSecretFile == nil)
        #expect(c.resolvedJWTSecretFile == "/var/lib/bulkhead/jwt.key")
        #expect(c.auth.jwtAlgorithm == .hs256)
        #expect(c.auth.issuer == "bulkhead")
        #expect(c.auth.audience == "bulkhead")
        #expect(c.auth.leeway == .seconds(30))
        #expect(c.rateLimit.rate == Rate(count: 1000, unit: .hour))
        #expect(c.rateLimit.rate.period == .seconds(3600))
        #expect(c.rateLimit.burst == 100)
        #expect(c.rateLimit.backend == .memory)
        #expect(c.rateLimit.redisURL == nil)
        #expect(c.rateLimit.redisEndpoint == nil)
        #expect(c.rateLimit.onBackendError == .deny)
        #expect(c.rateLimit.timeout == .milliseconds(5))
        #expect(c.rateLimit.hosts == 1)
        #expect(c.quota.maxComputeMinutesPerDay == 1000)
        #expect(c.quota.maxStorageGB == 50)
        #expect(c.volumes.prefix == "tenant")
        #expect(c.volumes.autoCreate == true)
        #expect(c.volumes.root == nil)
        #expect(c.resolvedVolumesRoot == "/var/lib/bulkhead/volumes")
        #expect(c.workers.executable == nil)
        #expect(c.workers.maxPerTenant == 4)
        #expect(c.workers.queueSize == 64)
        #expect(c.workers.idleTimeout == .seconds(60))
        #expect(c.workers.requestTimeout == .seconds(30))
        #expect(c.workers.maxRequests == 0)
        #expect(c.workers.spawnTimeout == .seconds(5))
        #expect(c.workers.restartBackoffMax == .seconds(30))
        #expect(c.sandbox.uidBase == 200_000)
        #expect(c.sandbox.uidCount == 65_536)
        #expect(c.sandbox.memoryLimit == 512 * 1024 * 1024)
        #expect(c.sandbox.cpuSeconds == 3600)
        #expect(c.sandbox.maxProcesses == 64)
        #expect(c.sandbox.maxOpenFiles == 256)
        #expect(c.sandbox.maxFileSize == 1024 * 1024 * 1024)
        #expect(c.sandbox.seccomp == .default)
        #expect(c.cors.allowedOrigins == [])
    }

    @Test func sectionInitsAreTheDefaults() {
        var c = Config()
        c.server = Config.Server()
        c.auth = Config.Auth()
        c.rateLimit = Config.RateLimit()
        c.quota = Config.Quota()
        c.volumes = Config.Volumes()
        c.workers = Config.Workers()
        c.sandbox = Config.SandboxLimits()
        c.cors = Config.CORS()
        #expect(c == Config())
    }
}

@Suite struct ShippedFiles {
    @Test func productionExampleIsTheDefaults() throws {
        let path = packageRoot() + "/etc/bulkhead.conf"
        // Every key in it is either the default or commented out.
        #expect(try Config.load(path: path, workingDirectory: "/") == Config())
        #expect(try Config.load(path: path, workingDirectory: "/tmp") == Config())
    }

    @Test func developmentConfiguration() throws {
        let config = try Config.load(path: packageRoot() + "/etc/bulkhead.dev.conf", workingDirectory: "/home/dev/bulkhead")
        #expect(config.server.listen == [.tcp(host: "127.0.0.1", port: 8080)])
        #expect(config.server.stateDir == "/home/dev/bulkhead/var")
        #expect(config.server.controlSocket == "/home/dev/bulkhead/var/control.sock")
        #expect(config.resolvedJWTSecretFile == "/home/dev/bulkhead/var/jwt.key")
        #expect(config.resolvedVolumesRoot == "/home/dev/bulkhead/var/volumes")
        #expect(config.rateLimit.backend == .memory)
        #expect(config.rateLimit.redisURL == nil)
        // Run from the checkout itself, as `make run` does.
        #expect(throws: Never.self) { try Config.load(path: "etc/bulkhead.dev.conf", workingDirectory: packageRoot()) }
    }

    /// `[section]` → keys mentioned in an example file, commented out (`; key = value`) or not.
    static func keysInExample(_ text: String) -> Set<KeyID> {
        var keys: Set<KeyID> = []
        var section = ""
        for rawLine in text.split(separator: "\n") {
            var line = Substring(ValueSyntax.trimmed(rawLine))
            if line.hasPrefix("["), let close = line.firstIndex(of: "]") {
                section = String(line[line.index(after: line.startIndex)..<close])
                continue
            }
            if line.hasPrefix(";") { line = line.dropFirst().drop(while: { $0 == " " }) }
            guard let equals = line.firstRange(of: " = ") ?? line.firstRange(of: " =") else { continue }
            let name = line[..<equals.lowerBound]
            if !name.isEmpty, name.allSatisfy({ ("a"..."z").contains($0) || $0 == "_" }) {
                keys.insert(KeyID(section: section, name: String(name)))
            }
        }
        return keys
    }

    @Test func productionExampleShowsEveryKey() throws {
        let text = try #require(packageFile("etc/bulkhead.conf"))
        let table = Set(configKeys.map { KeyID(section: $0.section, name: $0.name) })
        let shown = Self.keysInExample(text)
        #expect(table.subtracting(shown).isEmpty, "not in etc/bulkhead.conf: \(table.subtracting(shown))")
        #expect(shown.subtracting(table).isEmpty, "unknown keys in etc/bulkhead.conf: \(shown.subtracting(table))")
    }

    /// `## [section]` headings, then table rows `| `key` | ...`.
    static func keysInDocs(_ text: String) -> Set<KeyID> {
        var keys: Set<KeyID> = []
        var section: String?
        for line in text.split(separator: "\n") {
            if line.hasPrefix("## ") {
                section = nil
                if let open = line.firstIndex(of: "["), let close = line.firstIndex(of: "]"), open < close {
                    section = String(line[line.index(after: open)..<close])
                }
                continue
            }
            guard let section, line.hasPrefix("| `") else { continue }
            let cell = line.dropFirst(3).prefix(while: { $0 != "`" })
            keys.insert(KeyID(section: section, name: String(cell)))
        }
        return keys
    }

    @Test func documentationListsEveryKeyInTableOrder() throws {
        let text = try #require(packageFile("docs/CONFIGURATION.md"))
        let table = configKeys.map { KeyID(section: $0.section, name: $0.name) }
        let documented = Self.keysInDocs(text)
        #expect(Set(table).subtracting(documented).isEmpty, "undocumented: \(Set(table).subtracting(documented))")
        #expect(documented.subtracting(table).isEmpty, "documented but unknown: \(documented.subtracting(table))")
        // Sections appear in the table's order.
        let headings = text.split(separator: "\n").filter { $0.hasPrefix("## `[") }.map { String($0.dropFirst(5).prefix(while: { $0 != "]" })) }
        var order: [String] = []
        for key in configKeys where order.last != key.section { order.append(key.section) }
        #expect(headings == order)
    }
}
