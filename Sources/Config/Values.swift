// Values.swift owns the syntaxes of configuration values (durations, sizes, rates, paths,
// addresses, origins, Redis URLs) and the value types they produce; no Foundation.

import Glibc  // inet_pton, for IP literals only

/// Why one value could not be parsed. The loader adds the key and the file:line, giving
/// `invalid duration "60x" for idle_timeout: expected a number followed by ms, s, m, h or d`.
public struct ValueError: Error, Sendable, Equatable, CustomStringConvertible {
    /// What is wrong, e.g. `invalid duration`, `unsupported algorithm`.
    public var problem: String
    /// The offending text (for a list, the offending element).
    public var value: String
    /// What was expected instead, e.g. `expected a number followed by ms, s, m, h or d`.
    public var reason: String

    public init(_ problem: String, _ value: String, _ reason: String) {
        self.problem = problem
        self.value = value
        self.reason = reason
    }

    /// The message the loader reports for `key`.
    public func message(key: String) -> String { "\(problem) \"\(value)\" for \(key): \(reason)" }

    public var description: String { "\(problem) \"\(value)\": \(reason)" }
}

// MARK: - Value types

/// A sustained rate: `count` events per `unit`.
public struct Rate: Sendable, Equatable, Hashable, CustomStringConvertible {
    public enum Unit: String, Sendable, Equatable, Hashable, CaseIterable {
        case second, minute, hour, day

        /// The length of one unit.
        public var duration: Duration {
            switch self {
            case .second: .seconds(1)
            case .minute: .seconds(60)
            case .hour: .seconds(3600)
            case .day: .seconds(86_400)
            }
        }
    }

    public var count: UInt64
    public var unit: Unit
    /// The period `count` is measured over; derived from `unit`, so the two never disagree.
    public var period: Duration { unit.duration }

    public init(count: UInt64, unit: Unit) {
        self.count = count
        self.unit = unit
    }

    public var description: String { "\(count)/\(unit.rawValue)" }
}

/// One address `bulkheadd` accepts HTTP connections on.
public enum ListenAddress: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// `host` is an IPv4 literal, an IPv6 literal without brackets, or a host name.
    case tcp(host: String, port: UInt16)
    /// An absolute, normalised socket path.
    case unix(path: String)
    /// HTTPS: TCP with TLS (`tls://HOST:PORT`), with `[server] tls_certificate` and `tls_private_key`.
    case tls(host: String, port: UInt16)

    public var description: String {
        switch self {
        case .tcp(let host, let port): host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        case .unix(let path): "unix:\(path)"
        case .tls(let host, let port): "tls://" + ListenAddress.tcp(host: host, port: port).description
        }
    }

    /// Host and port of a TCP or TLS address.
    var tcpEndpoint: (host: String, port: UInt16)? {
        switch self {
        case .tcp(let host, let port), .tls(let host, let port): (host, port)
        case .unix: nil
        }
    }
}

/// Where the shared rate-limit store lives, parsed from `redis_url`.
public struct RedisEndpoint: Sendable, Equatable, Hashable {
    public enum Transport: Sendable, Equatable, Hashable {
        case tcp(host: String, port: UInt16)
        case unix(path: String)
    }

    public var transport: Transport
    /// Redis 6 ACL user name; nil means the `default` user.
    public var username: String?
    /// Percent-decoded password; nil means no AUTH.
    public var password: String?
    /// The logical database selected after connecting.
    public var database: Int

    public init(transport: Transport, username: String? = nil, password: String? = nil, database: Int = 0) {
        self.transport = transport
        self.username = username
        self.password = password
        self.database = database
    }
}

// MARK: - Parsers

/// The value syntaxes of the configuration file. Each parser takes the value exactly as
/// inih hands it over (surrounding whitespace already trimmed) and throws `ValueError`.
public enum ValueSyntax {
    /// Longest Unix socket path `sockaddr_un.sun_path` can hold (108 bytes with the NUL).
    public static let maxSocketPathBytes = 107
    /// Longest path accepted (PATH_MAX with the NUL).
    public static let maxPathBytes = 4095
    /// Default port of `redis://` URLs.
    public static let defaultRedisPort: UInt16 = 6379

    // MARK: Numbers

    /// `<digits>[ms|s|m|h|d]`; the unit is required unless the number is 0. The total must
    /// fit in Int64 milliseconds, so every consumer can convert without overflow.
    public static func duration(_ text: String) throws(ValueError) -> Duration {
        let expected = "expected a number followed by ms, s, m, h or d"
        let bytes = Array(text.utf8)
        let digitCount = bytes.prefix(while: isDigit).count
        guard digitCount > 0 else { throw ValueError("invalid duration", text, expected) }
        guard let number = decimal(bytes[..<digitCount], as: Int64.self) else {
            throw ValueError("invalid duration", text, "too large")
        }
        let millisecondsPerUnit: Int64
        switch String(decoding: bytes[digitCount...], as: UTF8.self) {
        case "":
            guard number == 0 else { throw ValueError("invalid duration", text, "a unit is required: ms, s, m, h or d") }
            return .zero
        case "ms": millisecondsPerUnit = 1
        case "s": millisecondsPerUnit = 1000
        case "m": millisecondsPerUnit = 60_000
        case "h": millisecondsPerUnit = 3_600_000
        case "d": millisecondsPerUnit = 86_400_000
        default: throw ValueError("invalid duration", text, expected)
        }
        let (total, overflow) = number.multipliedReportingOverflow(by: millisecondsPerUnit)
        guard !overflow else { throw ValueError("invalid duration", text, "too large") }
        return .milliseconds(total)
    }

    /// A byte count: digits, optionally followed by K, M, G or T (powers of 1024, any case),
    /// optionally followed by B or iB: `10485760`, `512M`, `1GiB`, `64kb`.
    public static func size(_ text: String) throws(ValueError) -> UInt64 {
        let expected = "expected a number of bytes, optionally followed by K, M, G or T"
        let bytes = Array(text.utf8)
        let digitCount = bytes.prefix(while: isDigit).count
        guard digitCount > 0 else { throw ValueError("invalid size", text, expected) }
        guard let number = decimal(bytes[..<digitCount], as: UInt64.self) else {
            throw ValueError("invalid size", text, "too large")
        }
        let suffix = String(decoding: bytes[digitCount...], as: UTF8.self).lowercased()
        let shift: UInt64
        switch suffix.first {
        case nil: return number
        case "k": shift = 10
        case "m": shift = 20
        case "g": shift = 30
        case "t": shift = 40
        default: throw ValueError("invalid size", text, expected)
        }
        guard ["", "b", "ib"].contains(suffix.dropFirst()) else { throw ValueError("invalid size", text, expected) }
        let (total, overflow) = number.multipliedReportingOverflow(by: 1 << shift)
        guard !overflow else { throw ValueError("invalid size", text, "too large") }
        return total
    }

    /// `N/second`, `N/minute`, `N/hour`, `N/day` (or `N/s`, `N/m`, `N/h`, `N/d`), N ≥ 1.
    public static func rate(_ text: String) throws(ValueError) -> Rate {
        let expected = "expected N/second, N/minute, N/hour or N/day"
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, !parts[0].isEmpty, parts[0].utf8.allSatisfy(isDigit) else {
            throw ValueError("invalid rate", text, expected)
        }
        let unit: Rate.Unit
        switch parts[1] {
        case "second", "s": unit = .second
        case "minute", "m": unit = .minute
        case "hour", "h": unit = .hour
        case "day", "d": unit = .day
        default: throw ValueError("invalid rate", text, expected)
        }
        guard let count = decimal(ArraySlice(parts[0].utf8), as: UInt64.self) else {
            throw ValueError("invalid rate", text, "too large")
        }
        guard count >= 1 else { throw ValueError("invalid rate", text, "the count must be at least 1") }
        return Rate(count: count, unit: unit)
    }

    /// `true`, `false`, `yes`, `no`, `on`, `off`, `1`, `0` (lower case, like every keyword).
    public static func bool(_ text: String) throws(ValueError) -> Bool {
        switch text {
        case "true", "yes", "on", "1": return true
        case "false", "no", "off", "0": return false
        default: throw ValueError("invalid boolean", text, "expected true, false, yes, no, on, off, 1 or 0")
        }
    }

    /// A whole number in `range`, written in decimal digits (a leading `-` is understood
    /// only to say that a negative number is out of range).
    public static func integer<T: FixedWidthInteger>(_ text: String, in range: ClosedRange<T>) throws(ValueError) -> T {
        var digits = Substring(text)
        let negative = digits.first == "-"
        if negative { digits = digits.dropFirst() }
        guard !digits.isEmpty, digits.utf8.allSatisfy(isDigit) else {
            throw ValueError("invalid number", text, "expected a whole number")
        }
        let outOfRange = ValueError("invalid number", text, rangeDescription(range))
        let tooLarge = range.upperBound == T.max ? ValueError("invalid number", text, "too large (max \(T.max))") : outOfRange
        guard let magnitude = decimal(ArraySlice(digits.utf8), as: UInt64.self) else {
            throw negative ? outOfRange : tooLarge
        }
        if negative {
            guard magnitude <= UInt64(Int64.max), let value = T(exactly: -Int64(magnitude)), range.contains(value) else {
                throw outOfRange
            }
            return value
        }
        guard let value = T(exactly: magnitude) else { throw tooLarge }
        guard range.contains(value) else { throw outOfRange }
        return value
    }

    /// A positive decimal number such as `50` or `0.5` (no exponent, no sign).
    public static func positiveDecimal(_ text: String) throws(ValueError) -> Double {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...2).contains(parts.count), parts.allSatisfy({ !$0.isEmpty && $0.utf8.allSatisfy(isDigit) }),
              let value = Double(text), value.isFinite
        else { throw ValueError("invalid number", text, "expected a decimal number such as 50 or 0.5") }
        guard value > 0 else { throw ValueError("invalid number", text, "must be greater than 0") }
        return value
    }

    // MARK: Paths

    /// A file system path. A relative path is taken relative to `workingDirectory` (the
    /// directory bulkheadd was started in); the result is absolute and lexically
    /// normalised: no `.` or `..` components, no repeated or trailing `/`.
    public static func path(_ text: String, relativeTo workingDirectory: String) throws(ValueError) -> String {
        guard !text.isEmpty else { throw ValueError("invalid path", text, "must not be empty") }
        guard !text.utf8.contains(0) else { throw ValueError("invalid path", text, "must not contain a NUL byte") }
        guard !text.hasPrefix("~") else {
            throw ValueError("invalid path", text, "a leading ~ is not expanded; write the full path")
        }
        let joined = text.hasPrefix("/") ? text : workingDirectory + "/" + text
        let normalised = normalise(absolutePath: joined)
        guard normalised.utf8.count <= maxPathBytes else {
            throw ValueError("invalid path", text, "too long (max \(maxPathBytes) bytes)")
        }
        return normalised
    }

    /// Lexical normalisation of a path that starts with `/`: `..` at the root stays at the root.
    public static func normalise(absolutePath: String) -> String {
        var components: [Substring] = []
        for component in absolutePath.split(separator: "/", omittingEmptySubsequences: true) {
            switch component {
            case ".": continue
            case "..": _ = components.popLast()
            default: components.append(component)
            }
        }
        return "/" + components.joined(separator: "/")
    }

    /// A path that will be bound or connected as a Unix socket, so it must fit `sun_path`.
    public static func socketPath(_ text: String, relativeTo workingDirectory: String) throws(ValueError) -> String {
        let resolved = try path(text, relativeTo: workingDirectory)
        guard resolved.utf8.count <= maxSocketPathBytes else {
            throw ValueError("invalid socket path", text,
                             "\(resolved) is \(resolved.utf8.count) bytes, a Unix socket path holds at most \(maxSocketPathBytes)")
        }
        return resolved
    }

    // MARK: Addresses

    /// `HOST:PORT`, `[IPV6]:PORT`, `*:PORT` (all IPv4 addresses, same as `0.0.0.0:PORT`)
    /// or `unix:PATH`.
    public static func listenAddress(_ text: String, relativeTo workingDirectory: String) throws(ValueError) -> ListenAddress {
        let expected = "expected HOST:PORT, [IPV6]:PORT, *:PORT, tls://HOST:PORT or unix:PATH"
        if text.hasPrefix("tls://") {
            let rest = String(text.dropFirst(6))
            guard case .tcp(let host, let port) = try listenAddress(rest, relativeTo: workingDirectory) else {
                throw ValueError("invalid address", text, "TLS listens on TCP: tls://HOST:PORT")
            }
            return .tls(host: host, port: port)
        }
        if text.hasPrefix("unix:") {
            let rest = String(text.dropFirst(5))
            guard !rest.isEmpty else { throw ValueError("invalid address", text, "the socket path is empty") }
            do {
                return .unix(path: try socketPath(rest, relativeTo: workingDirectory))
            } catch {
                throw ValueError("invalid address", text, error.reason)
            }
        }
        guard let (host, portText) = splitHostPort(text) else {
            if !text.hasPrefix("["), text.filter({ $0 == ":" }).count > 1 {
                throw ValueError("invalid address", text, "an IPv6 address must be in brackets, e.g. [::1]:8080")
            }
            throw ValueError("invalid address", text, expected)
        }
        guard let port = port(portText) else {
            throw ValueError("invalid address", text, "the port must be a number from 1 to 65535")
        }
        if host == "*" { return .tcp(host: "0.0.0.0", port: port) }
        guard isHost(host) else { throw ValueError("invalid address", text, "\"\(host)\" is not an IP address or host name") }
        return .tcp(host: host, port: port)
    }

    /// A comma-separated list of listen addresses: at least one, no duplicates, and no
    /// IPv4 wildcard sharing a port with another IPv4 address (bind would fail).
    public static func listenAddresses(_ text: String, relativeTo workingDirectory: String) throws(ValueError) -> [ListenAddress] {
        var addresses: [ListenAddress] = []
        for element in try list(text, what: "address") {
            let address = try listenAddress(element, relativeTo: workingDirectory)
            if addresses.contains(address) {
                throw ValueError("invalid address", element, "listed twice")
            }
            if let (host, port) = address.tcpEndpoint, let clash = addresses.first(where: { other in
                guard let (otherHost, otherPort) = other.tcpEndpoint, otherPort == port else { return false }
                return (host == "0.0.0.0" && isIPv4(otherHost)) || (otherHost == "0.0.0.0" && isIPv4(host))
            }) {
                throw ValueError("invalid address", element, "overlaps \(clash) (0.0.0.0 already covers every IPv4 address)")
            }
            addresses.append(address)
        }
        return addresses
    }

    /// One CORS origin: `*`, or `scheme://host[:port]` as browsers send it in `Origin`
    /// (no path, no trailing `/`). Returned in lower case, the form browsers send.
    public static func origin(_ text: String) throws(ValueError) -> String {
        let expected = "expected * or scheme://host[:port]"
        if text == "*" { return text }
        let lower = text.lowercased()
        guard let separator = lower.firstRange(of: "://") else { throw ValueError("invalid origin", text, expected) }
        let scheme = lower[..<separator.lowerBound]
        let authority = lower[separator.upperBound...]
        guard let first = scheme.unicodeScalars.first, isASCIILetter(first),
              scheme.unicodeScalars.allSatisfy({ isASCIILetter($0) || ("0"..."9").contains($0) || "+.-".unicodeScalars.contains($0) })
        else { throw ValueError("invalid origin", text, expected) }
        if authority.hasSuffix("/") {
            throw ValueError("invalid origin", text, "an origin has no path; remove the trailing \"/\"")
        }
        guard !authority.isEmpty, !authority.contains(where: { "/?#@".contains($0) }) else {
            throw ValueError("invalid origin", text, expected)
        }
        if let (host, portText) = splitHostPort(String(authority)) {
            guard port(portText) != nil else {
                throw ValueError("invalid origin", text, "the port must be a number from 1 to 65535")
            }
            guard isHost(host), host != "*" else { throw ValueError("invalid origin", text, expected) }
        } else {
            let host = authority.hasPrefix("[") && authority.hasSuffix("]") ? String(authority.dropFirst().dropLast()) : String(authority)
            guard authority.hasPrefix("[") ? isIPv6(host) : isHost(host) else {
                throw ValueError("invalid origin", text, expected)
            }
        }
        return lower
    }

    /// A comma-separated list of origins; `*` stands alone; no duplicates. Empty text is
    /// the empty list.
    public static func origins(_ text: String) throws(ValueError) -> [String] {
        if text.isEmpty { return [] }
        var origins: [String] = []
        for element in try list(text, what: "origin") {
            let origin = try origin(element)
            if origins.contains(origin) { throw ValueError("invalid origin", element, "listed twice") }
            origins.append(origin)
        }
        if origins.count > 1, origins.contains("*") {
            throw ValueError("invalid origin", "*", "* allows every origin and cannot be combined with others")
        }
        return origins
    }

    /// `redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]` (password percent-encoded, IPv6 host in
    /// brackets, port 6379 and database 0 by default) or `unix:PATH`.
    public static func redisEndpoint(_ text: String, relativeTo workingDirectory: String) throws(ValueError) -> RedisEndpoint {
        let expected = "expected redis://[:PASSWORD@]HOST[:PORT][/DB] or unix:PATH"
        // Refusals reach the log, systemd's STATUS=, bulkheadctl and the audit log: never the password.
        let shown = redactingPassword(text)
        if text.hasPrefix("unix:") {
            let rest = String(text.dropFirst(5))
            guard !rest.isEmpty else { throw ValueError("invalid Redis URL", shown, "the socket path is empty") }
            do {
                return RedisEndpoint(transport: .unix(path: try socketPath(rest, relativeTo: workingDirectory)))
            } catch {
                throw ValueError("invalid Redis URL", shown, error.reason)
            }
        }
        if text.hasPrefix("rediss://") {
            throw ValueError("invalid Redis URL", shown, "TLS (rediss://) is not supported")
        }
        guard text.hasPrefix("redis://") else { throw ValueError("invalid Redis URL", shown, expected) }
        var rest = Substring(text.dropFirst("redis://".count))

        var database = 0
        if let slash = rest.firstIndex(of: "/") {
            let dbText = rest[rest.index(after: slash)...]
            rest = rest[..<slash]
            if !dbText.isEmpty {
                guard dbText.utf8.allSatisfy(isDigit), let db = decimal(ArraySlice(dbText.utf8), as: Int32.self) else {
                    throw ValueError("invalid Redis URL", shown, "the database must be a number from 0 to \(Int32.max)")
                }
                database = Int(db)
            }
        }

        var username: String?
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let userinfo = rest[..<at]
            rest = rest[rest.index(after: at)...]
            guard let colon = userinfo.firstIndex(of: ":") else {
                throw ValueError("invalid Redis URL", shown, "the password must follow a \":\", e.g. redis://:PASSWORD@HOST")
            }
            let user = userinfo[..<colon]
            guard let decodedUser = percentDecode(user), let decodedPassword = percentDecode(userinfo[userinfo.index(after: colon)...]) else {
                throw ValueError("invalid Redis URL", shown, "bad percent-encoding in the user or password")
            }
            guard !decodedPassword.isEmpty else { throw ValueError("invalid Redis URL", shown, "the password is empty") }
            username = decodedUser.isEmpty ? nil : decodedUser
            password = decodedPassword
        }

        let host: String
        var port = defaultRedisPort
        if let (h, portText) = splitHostPort(String(rest)) {
            guard let p = self.port(portText) else {
                throw ValueError("invalid Redis URL", shown, "the port must be a number from 1 to 65535")
            }
            host = h
            port = p
        } else if rest.hasPrefix("[") && rest.hasSuffix("]") {
            host = String(rest.dropFirst().dropLast())
            guard isIPv6(host) else { throw ValueError("invalid Redis URL", shown, "\"\(host)\" is not an IPv6 address") }
        } else {
            host = String(rest)
        }
        guard !host.isEmpty else { throw ValueError("invalid Redis URL", shown, "the host is missing") }
        guard isHost(host), host != "*" else {
            throw ValueError("invalid Redis URL", shown, "\"\(host)\" is not an IP address or host name")
        }
        return RedisEndpoint(transport: .tcp(host: host, port: port), username: username, password: password, database: database)
    }

    /// `text` with the password of a `scheme://[USER]:PASSWORD@…` URL shown as `***` (all
    /// of the user information when it has no ":", as it may be a password without one),
    /// for any message that quotes a configured URL.
    public static func redactingPassword(_ text: String) -> String {
        guard let scheme = text.firstRange(of: "://"), let at = text.lastIndex(of: "@"), at > scheme.upperBound else { return text }
        let userinfo = text[scheme.upperBound..<at]
        guard let colon = userinfo.firstIndex(of: ":") else { return text[..<scheme.upperBound] + "***" + text[at...] }
        let password = userinfo[userinfo.index(after: colon)...]
        return password.isEmpty ? text : text[..<password.startIndex] + "***" + text[at...]
    }

    /// `redis://[:PASSWORD@]HOST:PORT/0` built from parts (the password percent-encoded).
    public static func redisURL(host: String, port: UInt16, password: String?) -> String {
        let hostPart = host.contains(":") ? "[\(host)]" : host
        let auth = password.map { ":" + percentEncode($0) + "@" } ?? ""
        return "redis://\(auth)\(hostPart):\(port)/0"
    }

    /// `^[a-z0-9][a-z0-9_-]{0,31}$`: the prefix of tenant volume directory names.
    public static func volumePrefix(_ text: String) throws(ValueError) -> String {
        let scalars = Array(text.unicodeScalars)
        let lowerOrDigit: (Unicode.Scalar) -> Bool = { ("a"..."z").contains($0) || ("0"..."9").contains($0) }
        guard (1...32).contains(scalars.count), lowerOrDigit(scalars[0]),
              scalars.dropFirst().allSatisfy({ lowerOrDigit($0) || $0 == "_" || $0 == "-" })
        else {
            throw ValueError("invalid prefix", text,
                             "expected 1 to 32 of a-z, 0-9, _ and -, starting with a letter or digit")
        }
        return text
    }

    /// A port written in decimal, 1...65535.
    public static func port(_ text: Substring) -> UInt16? {
        guard !text.isEmpty, text.utf8.allSatisfy(isDigit), let value = decimal(ArraySlice(text.utf8), as: UInt16.self),
              value >= 1 else { return nil }
        return value
    }

    /// An IPv4 literal, an IPv6 literal (no brackets) or a DNS host name.
    public static func isHost(_ text: String) -> Bool {
        if text.contains(":") { return isIPv6(text) }
        if text.utf8.allSatisfy({ isDigit($0) || $0 == UInt8(ascii: ".") }) { return isIPv4(text) }
        return isHostName(text)
    }

    // MARK: - Helpers

    /// Splits `host:port` or `[v6]:port`; nil when there is no port or an unbracketed IPv6.
    static func splitHostPort(_ text: String) -> (host: String, port: Substring)? {
        if text.hasPrefix("[") {
            guard let close = text.firstIndex(of: "]") else { return nil }
            let host = String(text[text.index(after: text.startIndex)..<close])
            let after = text[text.index(after: close)...]
            guard after.hasPrefix(":"), isIPv6(host) else { return nil }
            return (host, after.dropFirst())
        }
        guard let colon = text.firstIndex(of: ":"), colon == text.lastIndex(of: ":") else { return nil }
        let host = String(text[..<colon])
        guard !host.isEmpty else { return nil }
        return (host, text[text.index(after: colon)...])
    }

    static func list(_ text: String, what: String) throws(ValueError) -> [String] {
        let elements = text.split(separator: ",", omittingEmptySubsequences: false).map { trimmed($0) }
        if elements.contains(where: \.isEmpty) {
            throw ValueError("invalid list", text, "empty \(what) in the comma-separated list")
        }
        return elements
    }

    static func trimmed(_ text: Substring) -> String {
        let isBlank: (Character) -> Bool = { $0 == " " || $0 == "\t" }
        guard let first = text.firstIndex(where: { !isBlank($0) }), let last = text.lastIndex(where: { !isBlank($0) }) else {
            return ""
        }
        return String(text[first...last])
    }

    static func rangeDescription<T: FixedWidthInteger>(_ range: ClosedRange<T>) -> String {
        if range.upperBound == T.max { return "must be at least \(range.lowerBound)" }
        if range.lowerBound == T.min || (range.lowerBound == 0 && !T.isSigned) { return "must be at most \(range.upperBound)" }
        return "must be between \(range.lowerBound) and \(range.upperBound)"
    }

    /// Decimal digits to an integer; nil on overflow. The caller has checked the digits.
    static func decimal<T: FixedWidthInteger>(_ digits: ArraySlice<UInt8>, as: T.Type) -> T? {
        var value: T = 0
        for digit in digits {
            let (shifted, o1) = value.multipliedReportingOverflow(by: 10)
            let (sum, o2) = shifted.addingReportingOverflow(T(digit - UInt8(ascii: "0")))
            if o1 || o2 { return nil }
            value = sum
        }
        return value
    }

    static func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }

    static func isASCIILetter(_ scalar: Unicode.Scalar) -> Bool { ("a"..."z").contains(scalar) || ("A"..."Z").contains(scalar) }

    static func isIPv4(_ text: String) -> Bool {
        var address = in_addr()
        return inet_pton(AF_INET, text, &address) == 1
    }

    static func isIPv6(_ text: String) -> Bool {
        var address = in6_addr()
        return inet_pton(AF_INET6, text, &address) == 1
    }

    /// RFC 1123 host name: dot-separated labels of letters, digits and `-`, 1...63 bytes,
    /// no label starting or ending with `-`, 253 bytes in all; a final `.` is refused.
    static func isHostName(_ text: String) -> Bool {
        guard (1...253).contains(text.utf8.count) else { return false }
        return text.split(separator: ".", omittingEmptySubsequences: false).allSatisfy { label in
            (1...63).contains(label.utf8.count) && label.first != "-" && label.last != "-"
                && label.unicodeScalars.allSatisfy { isASCIILetter($0) || ("0"..."9").contains($0) || $0 == "-" }
        }
    }

    static func percentDecode(_ text: Substring) -> String? {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else { bytes.append(byte); continue }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else { return nil }
            bytes.append(high << 4 | low)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    static func percentEncode(_ text: String) -> String {
        let hex = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        for byte in text.utf8 {
            let unreserved = isDigit(byte) || (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) || "-._~".utf8.contains(byte)
            if unreserved {
                out.append(byte)
            } else {
                out += [UInt8(ascii: "%"), hex[Int(byte >> 4)], hex[Int(byte & 0xF)]]
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
