// Logger: structured log records, one JSON object per line (journald reads stderr).
import Glibc
import JSON
import Synchronization

public enum LogLevel: Int, Sendable, Comparable, CustomStringConvertible {
    case debug, info, warning, error

    public static func < (a: LogLevel, b: LogLevel) -> Bool { a.rawValue < b.rawValue }

    public var description: String {
        switch self {
        case .debug: "debug"
        case .info: "info"
        case .warning: "warning"
        case .error: "error"
        }
    }
}

/// A field value. There is deliberately no case for a token or a secret: callers log a
/// key id, never the key.
public enum LogValue: Sendable, ExpressibleByStringLiteral, ExpressibleByIntegerLiteral {
    case string(String)
    case int(Int64)
    case bool(Bool)

    public init(stringLiteral s: String) { self = .string(s) }
    public init(integerLiteral i: Int64) { self = .int(i) }
    public static func of<T: BinaryInteger>(_ i: T) -> LogValue { .int(Int64(truncatingIfNeeded: i)) }
}

public struct Logger: Sendable {
    /// Shared by every copy of this logger, so a reload changes the level everywhere.
    private final class Threshold: Sendable {
        let level: Atomic<Int>
        init(_ l: LogLevel) { level = Atomic(l.rawValue) }
    }
    private let threshold: Threshold
    private let sink: @Sendable (String) -> Void

    public init(minimum: LogLevel, sink: @escaping @Sendable (String) -> Void) {
        self.threshold = Threshold(minimum)
        self.sink = sink
    }

    /// Another sink with `other`'s level (the same one, live).
    init(sharing other: Logger, sink: @escaping @Sendable (String) -> Void) {
        self.threshold = other.threshold
        self.sink = sink
    }

    /// Records below this level are dropped.
    public var minimum: LogLevel { LogLevel(rawValue: threshold.level.load(ordering: .relaxed)) ?? .info }

    /// Changes the level for this logger and every copy of it.
    public func setMinimum(_ level: LogLevel) { threshold.level.store(level.rawValue, ordering: .relaxed) }

    /// Writes each record to stderr with one write(2), so lines from threads never mix.
    public static func standardError(minimum: LogLevel = .info) -> Logger {
        Logger(minimum: minimum) { line in
            var bytes = Array(line.utf8)
            bytes.append(0x0A)
            _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        }
    }

    /// Keeps records in memory; for tests.
    public static func collecting(into store: LogStore, minimum: LogLevel = .debug) -> Logger {
        Logger(minimum: minimum) { line in store.append(line) }
    }

    public static let discard = Logger(minimum: .error) { _ in }

    public func log(_ level: LogLevel, _ event: String, _ fields: [(String, LogValue)] = []) {
        guard level >= minimum else { return }
        var out = ""
        out.reserveCapacity(320)  // one allocation for a typical record
        out += "{\"time\":\""
        out += Self.timestamp()
        out += "\",\"level\":\""
        out += level.description
        out += "\",\"event\":"
        Self.appendJSONString(event, to: &out)
        for (key, value) in fields {
            out += ","
            Self.appendJSONString(key, to: &out)
            out += ":"
            switch value {
            case .string(let s): Self.appendJSONString(s, to: &out)
            case .int(let i): out += String(i)
            case .bool(let b): out += b ? "true" : "false"
            }
        }
        out += "}"
        sink(out)
    }

    public func debug(_ event: String, _ fields: [(String, LogValue)] = []) { log(.debug, event, fields) }
    public func info(_ event: String, _ fields: [(String, LogValue)] = []) { log(.info, event, fields) }
    public func warning(_ event: String, _ fields: [(String, LogValue)] = []) { log(.warning, event, fields) }
    public func error(_ event: String, _ fields: [(String, LogValue)] = []) { log(.error, event, fields) }

    static func appendJSONString(_ s: String, to out: inout String) {
        // Most values need no escaping: copy them as they are (the request path's records).
        if s.utf8.allSatisfy({ $0 >= 0x20 && $0 != 0x22 && $0 != 0x5C && $0 < 0x7F }) {
            out += "\""
            out += s
            out += "\""
            return
        }
        out += String(decoding: JSONValue.string(s).serialized(), as: UTF8.self)
    }

    /// UTC, RFC 3339 with milliseconds.
    static func timestamp() -> String {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return UTCTime.dateTime(Int64(ts.tv_sec), milliseconds: ts.tv_nsec / 1_000_000)
    }
}

/// Lines kept by `Logger.collecting`.
public final class LogStore: Sendable {
    private let lines = Mutex<[String]>([])
    public init() {}
    public func append(_ line: String) { lines.withLock { $0.append(line) } }
    public var all: [String] { lines.withLock { $0 } }
}
