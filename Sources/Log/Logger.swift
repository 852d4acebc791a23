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
    /// Receives each record as UTF-8, newline included.
    private let sink: @Sendable ([UInt8]) -> Void

    public init(minimum: LogLevel, sink: @escaping @Sendable ([UInt8]) -> Void) {
        self.threshold = Threshold(minimum)
        self.sink = sink
    }

    /// Another sink with `other`'s level (the same one, live).
    init(sharing other: Logger, sink: @escaping @Sendable ([UInt8]) -> Void) {
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
            _ = line.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
        }
    }

    /// Keeps records in memory; for tests.
    public static func collecting(into store: LogStore, minimum: LogLevel = .debug) -> Logger {
        Logger(minimum: minimum) { line in store.append(String(decoding: line.dropLast(), as: UTF8.self)) }
    }

    public static let discard = Logger(minimum: .error) { _ in }

    /// The record is built as bytes, not as a String: the access log writes one per
    /// request, and String appends cost several times more (measured: 8% of the daemon).
    public func log(_ level: LogLevel, _ event: String, _ fields: [(String, LogValue)] = []) {
        guard level >= minimum else { return }
        var out: [UInt8] = []
        out.reserveCapacity(320)  // one allocation for a typical record
        out += #"{"time":""#.utf8
        Self.appendTimestamp(to: &out)
        out += #"","level":""#.utf8
        out += level.description.utf8
        out += #"","event":"#.utf8
        Self.appendJSONString(event, to: &out)
        for (key, value) in fields {
            out.append(UInt8(ascii: ","))
            Self.appendJSONString(key, to: &out)
            out.append(UInt8(ascii: ":"))
            switch value {
            case .string(let s): Self.appendJSONString(s, to: &out)
            case .int(let i): Self.appendDecimal(i, to: &out)
            case .bool(let b): out += (b ? "true" : "false").utf8
            }
        }
        out += "}\n".utf8
        sink(out)
    }

    public func debug(_ event: String, _ fields: [(String, LogValue)] = []) { log(.debug, event, fields) }
    public func info(_ event: String, _ fields: [(String, LogValue)] = []) { log(.info, event, fields) }
    public func warning(_ event: String, _ fields: [(String, LogValue)] = []) { log(.warning, event, fields) }
    public func error(_ event: String, _ fields: [(String, LogValue)] = []) { log(.error, event, fields) }

    static func appendJSONString(_ s: String, to out: inout [UInt8]) {
        JSONValue.string(s).serialize(into: &out)
    }

    static func appendDecimal(_ value: Int64, to out: inout [UInt8]) {
        if value < 0 { out.append(UInt8(ascii: "-")) }
        var magnitude = value.magnitude
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in  // 20 digits at most, written backwards
            var n = 0
            repeat {
                digits[19 - n] = UInt8(ascii: "0") + UInt8(magnitude % 10)
                magnitude /= 10
                n += 1
            } while magnitude > 0
            out += digits[(20 - n)...]
        }
    }

    /// UTC, RFC 3339 with milliseconds: `2026-12-04T21:55:35.123Z`.
    static func appendTimestamp(to out: inout [UInt8]) {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        var t = tm()
        var seconds = ts.tv_sec
        gmtime_r(&seconds, &t)
        func two(_ v: Int32) {
            out.append(UInt8(ascii: "0") + UInt8(v / 10))
            out.append(UInt8(ascii: "0") + UInt8(v % 10))
        }
        let year = t.tm_year + 1900
        two(year / 100)
        two(year % 100)
        out.append(UInt8(ascii: "-"))
        two(t.tm_mon + 1)
        out.append(UInt8(ascii: "-"))
        two(t.tm_mday)
        out.append(UInt8(ascii: "T"))
        two(t.tm_hour)
        out.append(UInt8(ascii: ":"))
        two(t.tm_min)
        out.append(UInt8(ascii: ":"))
        two(t.tm_sec)
        out.append(UInt8(ascii: "."))
        let ms = Int32(ts.tv_nsec / 1_000_000)
        out.append(UInt8(ascii: "0") + UInt8(ms / 100))
        two(ms % 100)
        out.append(UInt8(ascii: "Z"))
    }

    /// The current time as a log record writes it.
    static func timestamp() -> String {
        var out: [UInt8] = []
        appendTimestamp(to: &out)
        return String(decoding: out, as: UTF8.self)
    }
}

/// Lines kept by `Logger.collecting`.
public final class LogStore: Sendable {
    private let lines = Mutex<[String]>([])
    public init() {}
    public func append(_ line: String) { lines.withLock { $0.append(line) } }
    public var all: [String] { lines.withLock { $0 } }
}
