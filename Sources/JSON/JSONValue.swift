// Owns the JSON value model (JSONValue, JSONNumber, JSONObject, JSONError) and the compact writer.
//
// Imports nothing on purpose: sandboxed workers link this and must start fast.

/// One JSON value. Objects keep their members in document order so that writing is deterministic.
///
/// Equality is structural; strings (and object keys) compare with Swift `String` equality, i.e.
/// canonical equivalence, numbers compare by lexeme (`1.0 != 1`, because the text is what round trips).
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)
}

extension JSONValue {
    /// The member named `key` when this is an object that has one; `nil` otherwise.
    public subscript(key: String) -> JSONValue? { objectValue?[key] }

    public var stringValue: String? { if case .string(let s) = self { s } else { nil } }
    public var objectValue: JSONObject? { if case .object(let o) = self { o } else { nil } }
    public var arrayValue: [JSONValue]? { if case .array(let a) = self { a } else { nil } }
    public var boolValue: Bool? { if case .bool(let b) = self { b } else { nil } }
    public var isNull: Bool { if case .null = self { true } else { false } }
    /// Only integer lexemes (no fraction, no exponent) that fit in `Int64`; see `JSONNumber.int64`.
    public var intValue: Int64? { if case .number(let n) = self { n.int64 } else { nil } }
    /// Finite doubles only; see `JSONNumber.double`.
    public var doubleValue: Double? { if case .number(let n) = self { n.double } else { nil } }
}

/// A JSON number kept as its original, already validated text, so a parse/write round trip is exact
/// and no precision is lost before the caller decides which numeric type it wants.
public struct JSONNumber: Sendable, Equatable {
    /// Always a valid RFC 8259 number; every initialiser guarantees it, so the writer can copy it out.
    public let lexeme: String

    init(unchecked lexeme: String) { self.lexeme = lexeme }

    /// A number from JSON text such as `"-12.5e3"`; `nil` unless the text is exactly one RFC 8259 number.
    public init?(_ lexeme: String) {
        guard case .number(let n)? = try? JSONParser.parse(lexeme), n.lexeme == lexeme else { return nil }
        self = n
    }

    public init(_ value: Int64) { lexeme = String(value) }
    public init(_ value: Int) { lexeme = String(value) }

    /// `nil` for NaN and infinities, which JSON cannot express. Swift's shortest round-trip
    /// description ("0.1", "1e-07", "-0.0") is always valid JSON number text.
    public init?(_ value: Double) {
        guard value.isFinite else { return nil }
        lexeme = value.description
    }

    /// The exact value when the lexeme is an integer (no "." and no exponent) within `Int64`;
    /// `1.0` and `1e2` give `nil` so that callers never get a silently reinterpreted value.
    public var int64: Int64? {
        let utf8 = lexeme.utf8
        // 20 bytes hold "-9223372036854775808"; without leading zeros anything longer overflows.
        guard utf8.count <= 20 else { return nil }
        var negative = false
        var value: Int64 = 0  // accumulated negatively so that Int64.min is reachable
        for c in utf8 {
            if c == UInt8(ascii: "-") { negative = true; continue }
            guard c &- UInt8(ascii: "0") < 10 else { return nil }
            let (m, o1) = value.multipliedReportingOverflow(by: 10)
            let (s, o2) = m.subtractingReportingOverflow(Int64(c &- UInt8(ascii: "0")))
            if o1 || o2 { return nil }
            value = s
        }
        if negative { return value }
        return value == .min ? nil : -value
    }

    /// The nearest `Double`, or `nil` when the magnitude overflows to infinity ("1e309"):
    /// the text is still valid JSON, it just has no finite `Double`.
    public var double: Double? {
        guard let d = Double(lexeme), d.isFinite else { return nil }
        return d
    }
}

/// A JSON object: members in document order. Duplicate keys only exist if the parser was told to
/// allow them (or the caller built them); lookups then see the first occurrence.
public struct JSONObject: Sendable, Equatable {
    public private(set) var members: [(key: String, value: JSONValue)]
    /// Key → first member position, built only for larger objects so repeated lookups stay O(1)
    /// and small objects pay nothing.
    private var index: [String: Int]?

    /// Objects up to this size are searched linearly (faster than hashing when small).
    static let indexThreshold = 12

    public init(_ members: [(String, JSONValue)]) {
        self.init(members: members.map { (key: $0.0, value: $0.1) }, index: nil)
    }

    init(members: [(key: String, value: JSONValue)], index: [String: Int]?) {
        self.members = members
        if let index {
            self.index = index
        } else if members.count > Self.indexThreshold {
            var built = [String: Int](minimumCapacity: members.count)
            for (i, m) in members.enumerated() where built[m.key] == nil { built[m.key] = i }
            self.index = built
        }
    }

    public var count: Int { members.count }

    public subscript(key: String) -> JSONValue? {
        if let index { return index[key].map { members[$0].value } }
        for m in members where m.key == key { return m.value }
        return nil
    }

    /// By hand because tuples are not Equatable. Order matters: two objects that would be written
    /// differently are different values. The lookup index is derived, so it is ignored.
    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.members.count == rhs.members.count else { return false }
        for (l, r) in zip(lhs.members, rhs.members) where l.key != r.key || l.value != r.value {
            return false
        }
        return true
    }
}

/// Why and where (byte offset into the input) a document was refused.
public struct JSONError: Error, Sendable, Equatable, CustomStringConvertible {
    public var offset: Int
    public var reason: Reason

    public enum Reason: Sendable, Equatable {
        case unexpectedEnd
        case unexpectedByte(UInt8)
        case invalidNumber
        case invalidEscape
        case invalidUnicodeEscape
        case loneSurrogate
        case invalidUTF8
        case controlCharacterInString
        case duplicateKey(String)
        case tooDeep(limit: Int)
        case trailingData
        case tooLarge
    }

    public init(offset: Int, reason: Reason) {
        self.offset = offset
        self.reason = reason
    }

    public var description: String { "offset \(offset): \(message)" }

    private var message: String {
        switch reason {
        case .unexpectedEnd: return "unexpected end of input"
        case .unexpectedByte(let b):
            let hex = String(b, radix: 16, uppercase: true)
            let code = "0x" + (b < 0x10 ? "0" : "") + hex
            return (0x21...0x7E).contains(b) ? "unexpected byte \(code) '\(Character(Unicode.Scalar(b)))'" : "unexpected byte \(code)"
        case .invalidNumber: return "invalid number"
        case .invalidEscape: return "invalid escape sequence"
        case .invalidUnicodeEscape: return "invalid \\u escape (four hex digits expected)"
        case .loneSurrogate: return "unpaired UTF-16 surrogate in \\u escape"
        case .invalidUTF8: return "invalid UTF-8"
        case .controlCharacterInString: return "unescaped control character in string"
        case .duplicateKey(let key):
            // The key is attacker-chosen: escape it and cap its length before it reaches a log.
            var quoted: [UInt8] = []
            JSONValue.writeString(key.count > 64 ? String(key.prefix(64)) + "…" : key, into: &quoted)
            return "duplicate object key \(String(decoding: quoted, as: UTF8.self))"
        case .tooDeep(let limit): return "nesting deeper than \(limit) levels"
        case .trailingData: return "data after the JSON value"
        case .tooLarge: return "input exceeds the size limit"
        }
    }
}

// MARK: - Writer

extension JSONValue {
    /// Compact UTF-8 text: no whitespace, object members in stored order, numbers as their lexeme.
    public func serialized() -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(64)
        serialize(into: &out)
        return out
    }

    /// Appends the compact text to `out`. Iterative, so a hand-built deep value cannot overflow the stack here.
    public func serialize(into out: inout [UInt8]) {
        enum Open {
            case array([JSONValue], next: Int)
            case object([(key: String, value: JSONValue)], next: Int)
        }
        var stack: [Open] = []
        var current = self
        while true {
            switch current {
            case .null: out.append(contentsOf: "null".utf8)
            case .bool(let b): out.append(contentsOf: b ? "true".utf8 : "false".utf8)
            case .number(let n): out.append(contentsOf: n.lexeme.utf8)
            case .string(let s): Self.writeString(s, into: &out)
            case .array(let a):
                out.append(UInt8(ascii: "["))
                if let first = a.first {
                    stack.append(.array(a, next: 1))
                    current = first
                    continue
                }
                out.append(UInt8(ascii: "]"))
            case .object(let o):
                out.append(UInt8(ascii: "{"))
                if let first = o.members.first {
                    Self.writeString(first.key, into: &out)
                    out.append(UInt8(ascii: ":"))
                    stack.append(.object(o.members, next: 1))
                    current = first.value
                    continue
                }
                out.append(UInt8(ascii: "}"))
            }
            // `current` is complete: close finished containers until one has a next element.
            climb: while true {
                guard let top = stack.popLast() else { return }
                switch top {
                case .array(let a, let i):
                    if i < a.count {
                        out.append(UInt8(ascii: ","))
                        stack.append(.array(a, next: i + 1))
                        current = a[i]
                        break climb
                    }
                    out.append(UInt8(ascii: "]"))
                case .object(let m, let i):
                    if i < m.count {
                        out.append(UInt8(ascii: ","))
                        Self.writeString(m[i].key, into: &out)
                        out.append(UInt8(ascii: ":"))
                        stack.append(.object(m, next: i + 1))
                        current = m[i].value
                        break climb
                    }
                    out.append(UInt8(ascii: "}"))
                }
            }
        }
    }

    /// Quotes `s`, escaping only what RFC 8259 requires: `"`, `\` and C0 controls. "/" and
    /// non-ASCII are written raw; Swift strings are valid Unicode, so the output is valid UTF-8.
    static func writeString(_ s: String, into out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        var s = s
        s.withUTF8 { u in
            var run = 0  // start of the pending run of bytes that need no escaping
            for i in 0..<u.count {
                let b = u[i]
                if b >= 0x20 && b != UInt8(ascii: "\"") && b != UInt8(ascii: "\\") { continue }
                if run < i { out.append(contentsOf: UnsafeBufferPointer(rebasing: u[run..<i])) }
                run = i + 1
                out.append(UInt8(ascii: "\\"))
                switch b {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"): out.append(b)
                case 0x0A: out.append(UInt8(ascii: "n"))
                case 0x09: out.append(UInt8(ascii: "t"))
                case 0x0D: out.append(UInt8(ascii: "r"))
                case 0x08: out.append(UInt8(ascii: "b"))
                case 0x0C: out.append(UInt8(ascii: "f"))
                default:
                    let hex: StaticString = "0123456789abcdef"
                    out.append(UInt8(ascii: "u"))
                    out.append(UInt8(ascii: "0"))
                    out.append(UInt8(ascii: "0"))
                    out.append(hex.utf8Start[Int(b >> 4)])
                    out.append(hex.utf8Start[Int(b & 0xF)])
                }
            }
            if run < u.count { out.append(contentsOf: UnsafeBufferPointer(rebasing: u[run..<u.count])) }
        }
        out.append(UInt8(ascii: "\""))
    }
}
