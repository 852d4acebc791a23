// ConfigLoader.swift owns turning an INI file into a `Config`: reading the file, driving
// inih line by line (so every error has its line), the key table, and cross-key checks.

@preconcurrency import CInih  // its option globals are written once, see `inihOptionsSet`
import Glibc

/// Why the configuration was refused. `description` is the `file:line: message` bulkheadd
/// prints before exiting; `line` is 0 for errors about the whole file or the environment.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var message: String

    public init(file: String, line: Int, message: String) {
        self.file = file
        self.line = line
        self.message = message
    }

    public var description: String { line == 0 ? "\(file): \(message)" : "\(file):\(line): \(message)" }
}

extension Config {
    /// Longest line accepted, in bytes, not counting the line ending.
    public static let maxLineBytes = 4096
    /// Largest configuration file accepted, in bytes.
    public static let maxFileBytes = 1 << 20

    /// Reads and parses the file at `path` (relative paths are relative to
    /// `workingDirectory`); errors name the file as `path` was written.
    public static func load(
        path: String, environment: [String: String] = [:], workingDirectory: String
    ) throws(ConfigError) -> Config {
        let absolute = path.hasPrefix("/") ? path : workingDirectory + "/" + path
        let bytes = try ConfigLoader.readFile(absolute, reportedAs: path)
        return try ConfigLoader.parse(bytes: bytes, file: path, environment: environment, workingDirectory: workingDirectory)
    }

    /// Parses configuration text; `file` is the name errors carry.
    /// - Parameters:
    ///   - environment: the daemon's environment (only `REDIS_HOST`, `REDIS_PORT` and
    ///     `REDIS_PASSWORD` are read), passed in rather than read with getenv.
    ///   - workingDirectory: absolute; relative paths in the file are resolved against it.
    public static func parse(
        text: String, file: String, environment: [String: String] = [:], workingDirectory: String
    ) throws(ConfigError) -> Config {
        try ConfigLoader.parse(bytes: Array(text.utf8), file: file, environment: environment, workingDirectory: workingDirectory)
    }
}

// MARK: - The key table

/// What the value setters may need besides the value.
struct ValueContext: Sendable {
    let workingDirectory: String
}

/// One `[section] key`: how its value is parsed and where it lands.
struct ConfigKey: Sendable {
    typealias Setter = @Sendable (inout Config, String, ValueContext) throws(ValueError) -> Void

    let section: String
    let name: String
    /// Whether `key =` (an empty value) is meaningful; otherwise it is an error.
    let acceptsEmpty: Bool
    let set: Setter

    init(_ section: String, _ name: String, acceptsEmpty: Bool = false, _ set: @escaping Setter) {
        self.section = section
        self.name = name
        self.acceptsEmpty = acceptsEmpty
        self.set = set
    }
}

/// Every key the file may set, in the order docs/CONFIGURATION.md and etc/bulkhead.conf
/// list them (a test holds the three together).
let configKeys: [ConfigKey] = [
    ConfigKey("server", "listen") { c, v, x throws(ValueError) in
        c.server.listen = try ValueSyntax.listenAddresses(v, relativeTo: x.workingDirectory)
    },
    ConfigKey("server", "state_dir") { c, v, x throws(ValueError) in
        c.server.stateDir = try ValueSyntax.path(v, relativeTo: x.workingDirectory)
    },
    ConfigKey("server", "control_socket") { c, v, x throws(ValueError) in
        c.server.controlSocket = try ValueSyntax.socketPath(v, relativeTo: x.workingDirectory)
    },
    ConfigKey("server", "admin_group") { c, v, _ throws(ValueError) in
        // A POSIX portable group name.
        guard (1...32).contains(v.utf8.count), v.utf8.first != 0x2D,
              v.utf8.allSatisfy({ ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x5F || $0 == 0x2D }) else {
            throw ValueError("invalid group name", v, "expected 1 to 32 characters of a-z, 0-9, _ and -")
        }
        c.server.adminGroup = v
    },
    ConfigKey("server", "tls_certificate") { c, v, x throws(ValueError) in c.server.tlsCertificate = try ValueSyntax.path(v, relativeTo: x.workingDirectory) },
    ConfigKey("server", "tls_private_key") { c, v, x throws(ValueError) in c.server.tlsPrivateKey = try ValueSyntax.path(v, relativeTo: x.workingDirectory) },
    ConfigKey("server", "max_body_bytes") { c, v, _ throws(ValueError) in c.server.maxBodyBytes = try ValueSyntax.size(v) },
    ConfigKey("server", "drain_timeout") { c, v, _ throws(ValueError) in c.server.drainTimeout = try ValueSyntax.duration(v) },
    ConfigKey("server", "header_timeout") { c, v, _ throws(ValueError) in c.server.headerTimeout = try positiveDuration(v) },
    ConfigKey("server", "body_timeout") { c, v, _ throws(ValueError) in c.server.bodyTimeout = try positiveDuration(v) },
    ConfigKey("server", "keepalive_timeout") { c, v, _ throws(ValueError) in c.server.keepaliveTimeout = try positiveDuration(v) },
    ConfigKey("server", "max_connections") { c, v, _ throws(ValueError) in c.server.maxConnections = try ValueSyntax.integer(v, in: 1...1_000_000) },
    ConfigKey("server", "event_loops") { c, v, _ throws(ValueError) in c.server.eventLoops = try ValueSyntax.integer(v, in: 0...256) },

    ConfigKey("auth", "jwt_secret_file") { c, v, x throws(ValueError) in
        c.auth.jwtSecretFile = try ValueSyntax.path(v, relativeTo: x.workingDirectory)
    },
    ConfigKey("auth", "jwt_algorithm") { c, v, _ throws(ValueError) in
        guard let algorithm = Config.Auth.Algorithm(rawValue: v) else {
            throw ValueError("unsupported algorithm", v, "only HS256 is supported")
        }
        c.auth.jwtAlgorithm = algorithm
    },
    ConfigKey("auth", "issuer") { c, v, _ in c.auth.issuer = v },
    ConfigKey("auth", "audience") { c, v, _ in c.auth.audience = v },
    ConfigKey("auth", "leeway") { c, v, _ throws(ValueError) in c.auth.leeway = try ValueSyntax.duration(v) },
    ConfigKey("auth", "external_issuer") { c, v, _ in c.auth.externalIssuer = v },
    ConfigKey("auth", "external_algorithm") { c, v, _ throws(ValueError) in
        guard ["RS256", "ES256", "EdDSA"].contains(v) else {
            throw ValueError("unsupported algorithm", v, "expected RS256, ES256 or EdDSA")
        }
        c.auth.externalAlgorithm = v
    },
    ConfigKey("auth", "external_public_key_file") { c, v, x throws(ValueError) in
        c.auth.externalPublicKeyFile = try ValueSyntax.path(v, relativeTo: x.workingDirectory)
    },
    ConfigKey("auth", "external_tenant_claim") { c, v, _ throws(ValueError) in
        guard (1...64).contains(v.utf8.count), v.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw ValueError("invalid claim name", v, "expected 1 to 64 printable characters without spaces")
        }
        c.auth.externalTenantClaim = v
    },

    ConfigKey("ratelimit", "rate") { c, v, _ throws(ValueError) in c.rateLimit.rate = try ValueSyntax.rate(v) },
    ConfigKey("ratelimit", "burst") { c, v, _ throws(ValueError) in c.rateLimit.burst = try ValueSyntax.integer(v, in: 1...UInt64.max) },
    ConfigKey("ratelimit", "mode") { c, v, _ throws(ValueError) in c.rateLimit.mode = try keyword(v) },
    ConfigKey("ratelimit", "backend") { c, v, _ throws(ValueError) in c.rateLimit.backend = try keyword(v) },
    ConfigKey("ratelimit", "redis_url") { c, v, x throws(ValueError) in
        // A unix: path is stored resolved so `redisEndpoint` needs no working directory.
        let endpoint = try ValueSyntax.redisEndpoint(v, relativeTo: x.workingDirectory)
        if case .unix(let path) = endpoint.transport { c.rateLimit.redisURL = "unix:" + path } else { c.rateLimit.redisURL = v }
    },
    ConfigKey("ratelimit", "on_backend_error") { c, v, _ throws(ValueError) in c.rateLimit.onBackendError = try keyword(v) },
    ConfigKey("ratelimit", "timeout") { c, v, _ throws(ValueError) in c.rateLimit.timeout = try positiveDuration(v) },
    ConfigKey("ratelimit", "hosts") { c, v, _ throws(ValueError) in c.rateLimit.hosts = try ValueSyntax.integer(v, in: 1...UInt32.max) },

    ConfigKey("quota", "max_compute_minutes_per_day") { c, v, _ throws(ValueError) in
        c.quota.maxComputeMinutesPerDay = try ValueSyntax.integer(v, in: 0...UInt64.max)
    },
    ConfigKey("quota", "max_storage_gb") { c, v, _ throws(ValueError) in c.quota.maxStorageGB = try ValueSyntax.positiveDecimal(v) },
    ConfigKey("quota", "max_concurrent_requests") { c, v, _ throws(ValueError) in
        c.quota.maxConcurrentRequests = try ValueSyntax.integer(v, in: 0...1_000_000)
    },

    ConfigKey("volumes", "prefix") { c, v, _ throws(ValueError) in c.volumes.prefix = try ValueSyntax.volumePrefix(v) },
    ConfigKey("volumes", "auto_create") { c, v, _ throws(ValueError) in c.volumes.autoCreate = try ValueSyntax.bool(v) },
    ConfigKey("volumes", "root") { c, v, x throws(ValueError) in
        c.volumes.root = try ValueSyntax.path(v, relativeTo: x.workingDirectory)
    },

    ConfigKey("workers", "executable") { c, v, x throws(ValueError) in
        c.workers.executable = try ValueSyntax.path(v, relativeTo: x.workingDirectory)
    },
    ConfigKey("workers", "max_per_tenant") { c, v, _ throws(ValueError) in c.workers.maxPerTenant = try ValueSyntax.integer(v, in: 1...1024) },
    ConfigKey("workers", "queue_size") { c, v, _ throws(ValueError) in c.workers.queueSize = try ValueSyntax.integer(v, in: 0...Int.max) },
    ConfigKey("workers", "idle_timeout") { c, v, _ throws(ValueError) in c.workers.idleTimeout = try positiveDuration(v) },
    ConfigKey("workers", "request_timeout") { c, v, _ throws(ValueError) in c.workers.requestTimeout = try positiveDuration(v) },
    ConfigKey("workers", "max_requests") { c, v, _ throws(ValueError) in c.workers.maxRequests = try ValueSyntax.integer(v, in: 0...Int.max) },
    ConfigKey("workers", "spawn_timeout") { c, v, _ throws(ValueError) in c.workers.spawnTimeout = try positiveDuration(v) },
    ConfigKey("workers", "restart_backoff_max") { c, v, _ throws(ValueError) in c.workers.restartBackoffMax = try positiveDuration(v) },
    ConfigKey("workers", "pipeline_depth") { c, v, _ throws(ValueError) in c.workers.pipelineDepth = try ValueSyntax.integer(v, in: 1...256) },

    ConfigKey("sandbox", "uid_base") { c, v, _ throws(ValueError) in c.sandbox.uidBase = try ValueSyntax.integer(v, in: 1000...UInt32.max) },
    ConfigKey("sandbox", "uid_count") { c, v, _ throws(ValueError) in c.sandbox.uidCount = try ValueSyntax.integer(v, in: 1...UInt32.max) },
    ConfigKey("sandbox", "memory_limit") { c, v, _ throws(ValueError) in
        c.sandbox.memoryLimit = try ValueSyntax.size(v)
        guard c.sandbox.memoryLimit > 0 else { throw ValueError("invalid size", v, "must be greater than 0") }
    },
    ConfigKey("sandbox", "cpu_seconds") { c, v, _ throws(ValueError) in c.sandbox.cpuSeconds = try ValueSyntax.integer(v, in: 1...UInt64.max) },
    ConfigKey("sandbox", "max_processes") { c, v, _ throws(ValueError) in c.sandbox.maxProcesses = try ValueSyntax.integer(v, in: 1...UInt64.max) },
    ConfigKey("sandbox", "max_open_files") { c, v, _ throws(ValueError) in c.sandbox.maxOpenFiles = try ValueSyntax.integer(v, in: 4...UInt64.max) },
    ConfigKey("sandbox", "max_file_size") { c, v, _ throws(ValueError) in c.sandbox.maxFileSize = try ValueSyntax.size(v) },
    ConfigKey("sandbox", "seccomp") { c, v, x throws(ValueError) in
        c.sandbox.seccomp = v == "default" ? .default : .file(path: try ValueSyntax.path(v, relativeTo: x.workingDirectory))
    },

    ConfigKey("cors", "allowed_origins", acceptsEmpty: true) { c, v, _ throws(ValueError) in
        c.cors.allowedOrigins = try ValueSyntax.origins(v)
    },

    ConfigKey("metrics", "per_tenant") { c, v, _ throws(ValueError) in c.metrics.perTenant = try ValueSyntax.bool(v) },
    ConfigKey("log", "level") { c, v, _ throws(ValueError) in c.log.level = try keyword(v) },
    ConfigKey("log", "requests") { c, v, _ throws(ValueError) in c.log.requests = try ValueSyntax.bool(v) },
]

/// A lower-case keyword naming an enum case: `invalid value "mem" for backend: expected memory or redis`.
private func keyword<E: RawRepresentable & CaseIterable>(_ text: String) throws(ValueError) -> E where E.RawValue == String {
    if let value = E(rawValue: text) { return value }
    let names = E.allCases.map(\.rawValue)
    let expected = names.count == 1 ? names[0] : names.dropLast().joined(separator: ", ") + " or " + names.last!
    throw ValueError("invalid value", text, "expected \(expected)")
}

/// Timeouts of 0 would fire at once (and a 0 back-off would respawn hot), so they are refused.
private func positiveDuration(_ text: String) throws(ValueError) -> Duration {
    let duration = try ValueSyntax.duration(text)
    guard duration > .zero else { throw ValueError("invalid duration", text, "must be greater than 0") }
    return duration
}

// MARK: - Driving inih

/// Debian's libinih 55 turns its compile-time options into globals that ini_parse_stream
/// reads on every call (the line buffer is a VLA of `ini_max_line` bytes). They are written
/// here exactly once, under the lazy-global `swift_once`, before the first parse, and
/// nothing else in the process writes them; that is what makes the @preconcurrency
/// import above sound.
private let inihOptionsSet: Bool = {
    ini_use_stack = true
    ini_max_line = Int32(Config.maxLineBytes + 3)  // + "\r\n\0", as ini.h asks
    ini_allow_multiline = false  // an indented "key = value" is a key, never a continuation
    ini_stop_on_first_error = false
    return true
}()

/// Identifies a key in bookkeeping tables.
struct KeyID: Hashable {
    let section: String
    let name: String
}

enum ConfigLoader {
    static let keysByID: [KeyID: ConfigKey] = Dictionary(
        uniqueKeysWithValues: configKeys.map { (KeyID(section: $0.section, name: $0.name), $0) })
    static let sections: Set<String> = Set(configKeys.map(\.section))

    static func parse(
        bytes: [UInt8], file: String, environment: [String: String], workingDirectory: String
    ) throws(ConfigError) -> Config {
        precondition(workingDirectory.hasPrefix("/"), "workingDirectory must be absolute: \(workingDirectory)")
        _ = inihOptionsSet
        let state = ParseState(
            bytes: bytes, file: file, context: ValueContext(workingDirectory: ValueSyntax.normalise(absolutePath: workingDirectory)))

        // The handler always returns 1, so inih's result is its own first syntax error.
        let syntaxErrorLine = withExtendedLifetime(state) {
            let opaque = Unmanaged.passUnretained(state).toOpaque()
            return ini_parse_stream(
                { buffer, capacity, stream in
                    guard let buffer, let stream else { return nil }
                    return ParseState.from(stream).nextLine(into: buffer, capacity: Int(capacity))
                },
                opaque,
                { user, _, name, value in
                    guard let user, let name, let value else { return 1 }
                    ParseState.from(user).handle(name: String(cString: name), value: String(cString: value))
                    return 1
                },
                opaque)
        }
        if syntaxErrorLine < 0 {
            throw ConfigError(file: file, line: 0, message: "cannot parse (inih error \(syntaxErrorLine))")
        }
        // Lines reach inih and the handler in file order, so the smaller line is the first error.
        if syntaxErrorLine > 0, Int(syntaxErrorLine) < state.error?.line ?? .max {
            throw ConfigError(file: file, line: Int(syntaxErrorLine), message: state.syntaxErrorMessage(line: Int(syntaxErrorLine)))
        }
        if let error = state.error { throw error }
        return try checkCombinations(state.config, keyLines: state.keyLines, file: file, environment: environment)
    }

    /// Rules that involve more than one key, or the environment. An error points at the
    /// line of the later key involved when there is one.
    static func checkCombinations(
        _ parsed: Config, keyLines: [KeyID: Int], file: String, environment: [String: String]
    ) throws(ConfigError) -> Config {
        var config = parsed
        func line(_ section: String, _ names: String...) -> Int {
            names.compactMap { keyLines[KeyID(section: section, name: $0)] }.max() ?? 0
        }

        let uidEnd = UInt64(config.sandbox.uidBase) + UInt64(config.sandbox.uidCount)
        if uidEnd > 1 << 31 {
            throw ConfigError(
                file: file, line: line("sandbox", "uid_base", "uid_count"),
                message: "uid_base + uid_count is \(uidEnd), more than 2^31 (2147483648)")
        }

        if config.server.listen.contains(.unix(path: config.server.controlSocket)) {
            throw ConfigError(
                file: file, line: line("server", "listen", "control_socket"),
                message: "control_socket \(config.server.controlSocket) is also a listen address")
        }

        let tls = config.server.listen.contains { if case .tls = $0 { true } else { false } }
        if tls, config.server.tlsCertificate == nil || config.server.tlsPrivateKey == nil {
            throw ConfigError(
                file: file, line: line("server", "listen", "tls_certificate", "tls_private_key"),
                message: "a tls:// listen address needs tls_certificate and tls_private_key")
        }

        if config.rateLimit.redisURL == nil, let host = environment["REDIS_HOST"], !host.isEmpty {
            guard ValueSyntax.isHost(host), host != "*" else {
                throw ConfigError(
                    file: file, line: 0, message: "invalid REDIS_HOST \"\(host)\" in the environment: expected a host name or IP address")
            }
            var port = ValueSyntax.defaultRedisPort
            if let text = environment["REDIS_PORT"], !text.isEmpty {
                guard let value = ValueSyntax.port(Substring(text)) else {
                    throw ConfigError(
                        file: file, line: 0, message: "invalid REDIS_PORT \"\(text)\" in the environment: expected a number from 1 to 65535")
                }
                port = value
            }
            let password = environment["REDIS_PASSWORD"].flatMap { $0.isEmpty ? nil : $0 }
            config.rateLimit.redisURL = ValueSyntax.redisURL(host: host, port: port, password: password)
        }
        if config.rateLimit.backend == .redis, config.rateLimit.redisURL == nil {
            throw ConfigError(
                file: file, line: line("ratelimit", "backend"),
                message: "backend = redis needs redis_url, or REDIS_HOST in the environment")
        }
        return config
    }

    /// Reads the whole file. The fd is closed before returning; Config has no Posix
    /// dependency, so this is the one raw open/read/close of the module.
    static func readFile(_ path: String, reportedAs file: String) throws(ConfigError) -> [UInt8] {
        func failure(_ what: String) -> ConfigError {
            ConfigError(file: file, line: 0, message: "cannot \(what): \(String(cString: strerror(errno)))")
        }
        var fd: Int32
        repeat { fd = open(path, O_RDONLY | O_CLOEXEC) } while fd < 0 && errno == EINTR
        guard fd >= 0 else { throw failure("open") }
        defer { close(fd) }

        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw failure("read")
            }
            if count == 0 { return bytes }
            bytes += chunk[..<count]
            if bytes.count > Config.maxFileBytes {
                throw ConfigError(file: file, line: 0, message: "file too large (max \(Config.maxFileBytes) bytes)")
            }
        }
    }
}

/// The state of one parse, shared by the reader and the handler through inih's `void*`
/// arguments. Confined to the thread running `ini_parse_stream`.
final class ParseState {
    let bytes: [UInt8]
    let file: String
    let context: ValueContext

    var position = 0
    /// The line most recently handed to inih: the line of the key being handled.
    var lineNumber = 0
    /// Tracked here from the headers the reader sees, not taken from inih (which truncates
    /// section names to 49 bytes).
    var section: String?
    var config = Config()
    var keyLines: [KeyID: Int] = [:]
    /// The first error; once set, the reader reports end of file.
    var error: ConfigError?

    init(bytes: [UInt8], file: String, context: ValueContext) {
        self.bytes = bytes
        self.file = file
        self.context = context
    }

    static func from(_ pointer: UnsafeMutableRawPointer) -> ParseState {
        Unmanaged<ParseState>.fromOpaque(pointer).takeUnretainedValue()
    }

    func fail(_ message: String) {
        if error == nil { error = ConfigError(file: file, line: lineNumber, message: message) }
    }

    /// The ini_reader: copies the next line (without its line ending, BOM or leading
    /// whitespace) into inih's buffer of `capacity` bytes. A line that must not reach inih
    /// (too long, NUL, bad UTF-8, unknown section) is recorded and handed over empty.
    func nextLine(into buffer: UnsafeMutablePointer<CChar>, capacity: Int) -> UnsafeMutablePointer<CChar>? {
        guard error == nil, position < bytes.count, capacity > 0 else { return nil }
        let newline = bytes[position...].firstIndex(of: UInt8(ascii: "\n")) ?? bytes.count
        var start = position
        var end = newline
        position = min(newline + 1, bytes.count)
        lineNumber += 1

        if end > start, bytes[end - 1] == UInt8(ascii: "\r") { end -= 1 }
        if lineNumber == 1, bytes[start..<end].starts(with: [0xEF, 0xBB, 0xBF]) { start += 3 }
        let limit = min(Config.maxLineBytes, capacity - 1)
        if end - start > limit {
            fail("line too long (max \(limit) bytes)")
        } else if bytes[start..<end].contains(0) {
            fail("NUL byte in line")
        } else if String(validating: bytes[start..<end], as: UTF8.self) == nil {
            fail("invalid UTF-8")
        } else {
            while start < end, isSpace(bytes[start]) { start += 1 }
            if start < end, bytes[start] == UInt8(ascii: "[") { sectionHeader(bytes[start..<end]) }
        }
        if error != nil { end = start }

        let count = end - start
        bytes.withUnsafeBufferPointer { source in
            UnsafeMutableRawPointer(buffer).copyMemory(from: source.baseAddress! + start, byteCount: count)
        }
        buffer[count] = 0
        return buffer
    }

    /// Follows inih's own rule for a header (the first "]" not inside an inline comment);
    /// a header without one is left for inih to report as a syntax error.
    private func sectionHeader(_ line: ArraySlice<UInt8>) {
        var index = line.startIndex + 1
        var wasSpace = false
        while index < line.endIndex, line[index] != UInt8(ascii: "]"), !(wasSpace && line[index] == UInt8(ascii: ";")) {
            wasSpace = isSpace(line[index])
            index += 1
        }
        guard index < line.endIndex, line[index] == UInt8(ascii: "]") else { return }
        let name = String(decoding: line[(line.startIndex + 1)..<index], as: UTF8.self)
        let rest = line[(index + 1)...].drop(while: isSpace)
        if let first = rest.first, first != UInt8(ascii: ";"), first != UInt8(ascii: "#") {
            fail("unexpected text after [\(name)]")
        } else if !ConfigLoader.sections.contains(name) {
            fail("unknown section [\(name)]")
        } else {
            section = name
        }
    }

    /// The ini_handler, for the key on line `lineNumber`.
    func handle(name: String, value: String) {
        guard error == nil else { return }
        guard !name.isEmpty else { return fail("missing key name before \"=\"") }
        guard let section else { return fail("key \"\(name)\" is outside any section") }
        let id = KeyID(section: section, name: name)
        guard let key = ConfigLoader.keysByID[id] else { return fail("unknown key \"\(name)\" in [\(section)]") }
        if let first = keyLines[id] {
            return fail("duplicate key \"\(name)\" in [\(section)] (first set on line \(first))")
        }
        keyLines[id] = lineNumber
        if value.isEmpty, !key.acceptsEmpty { return fail("missing value for \(name) in [\(section)]") }
        do {
            try key.set(&config, value, context)
        } catch {
            fail(error.message(key: name))
        }
    }

    /// Words inih's parse error on `line`: an unclosed "[" or a line without "=".
    func syntaxErrorMessage(line: Int) -> String {
        var start = 0
        for _ in 1..<line {
            guard let newline = bytes[start...].firstIndex(of: UInt8(ascii: "\n")) else { break }
            start = newline + 1
        }
        if line == 1, bytes.starts(with: [0xEF, 0xBB, 0xBF]) { start = 3 }
        let text = bytes[start...].prefix(while: { $0 != UInt8(ascii: "\n") }).drop(while: isSpace)
        return text.first == UInt8(ascii: "[")
            ? "syntax error: missing \"]\" in section header" : "syntax error: expected \"key = value\""
    }
}

/// C `isspace` in the "C" locale, which is what inih strips.
private func isSpace(_ byte: UInt8) -> Bool {
    byte == 0x20 || (0x09...0x0D).contains(byte)
}
