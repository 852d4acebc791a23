// Shared test helpers: byte literals, value builders, a seeded PRNG and an independent reference validator.

import JSON

/// The UTF-8 of `s`, where `%HH` stands for the raw byte 0xHH (so invalid UTF-8 can be written inline);
/// `%25` is a literal percent sign.
func b(_ s: String) -> [UInt8] {
    var out: [UInt8] = []
    var u = Array(s.utf8)[...]
    while let c = u.popFirst() {
        if c == UInt8(ascii: "%"), u.count >= 2, let v = UInt8(String(decoding: u.prefix(2), as: UTF8.self), radix: 16) {
            out.append(v)
            u = u.dropFirst(2)
        } else {
            out.append(c)
        }
    }
    return out
}

func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

func num(_ lexeme: String) -> JSONValue { .number(JSONNumber(lexeme)!) }

func obj(_ members: (String, JSONValue)...) -> JSONValue { .object(JSONObject(members)) }

/// Parse result as a value, for `#expect` comparisons of both outcomes at once.
func outcome(_ bytes: [UInt8], _ options: JSONParser.Options = .init()) -> Result<JSONValue, JSONError> {
    Result { () throws(JSONError) in try JSONParser.parse(bytes, options: options) }
}

func options(maxDepth: Int = 64, maxBytes: Int = 16 << 20, allowDuplicateKeys: Bool = false) -> JSONParser.Options {
    var o = JSONParser.Options()
    o.maxDepth = maxDepth
    o.maxBytes = maxBytes
    o.allowDuplicateKeys = allowDuplicateKeys
    return o
}

/// SplitMix64: tiny, fast, fully determined by its seed, so a failing fuzz case is reproducible.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// A deliberately naive, recursive RFC 8259 validator written independently of the parser
/// (Swift's own UTF-8 validation, Set-based duplicate detection), used as a differential oracle.
struct ReferenceValidator {
    let s: [UInt8]
    var i = 0
    let maxDepth: Int

    static func accepts(_ bytes: [UInt8], maxDepth: Int = 64) -> Bool {
        var v = ReferenceValidator(s: bytes, maxDepth: maxDepth)
        v.ws()
        guard v.value(depth: 0) else { return false }
        v.ws()
        return v.i == bytes.count
    }

    func peek() -> UInt8? { i < s.count ? s[i] : nil }

    mutating func ws() {
        while let c = peek(), c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D { i += 1 }
    }

    mutating func eat(_ c: UInt8) -> Bool {
        guard peek() == c else { return false }
        i += 1
        return true
    }

    mutating func value(depth: Int) -> Bool {
        guard let c = peek() else { return false }
        switch c {
        case UInt8(ascii: "{"):
            guard depth < maxDepth else { return false }
            i += 1
            ws()
            if eat(UInt8(ascii: "}")) { return true }
            var seen = Set<String>()
            while true {
                ws()
                guard let key = string(), seen.insert(key).inserted else { return false }
                ws()
                guard eat(UInt8(ascii: ":")) else { return false }
                ws()
                guard value(depth: depth + 1) else { return false }
                ws()
                if eat(UInt8(ascii: "}")) { return true }
                guard eat(UInt8(ascii: ",")) else { return false }
            }
        case UInt8(ascii: "["):
            guard depth < maxDepth else { return false }
            i += 1
            ws()
            if eat(UInt8(ascii: "]")) { return true }
            while true {
                ws()
                guard value(depth: depth + 1) else { return false }
                ws()
                if eat(UInt8(ascii: "]")) { return true }
                guard eat(UInt8(ascii: ",")) else { return false }
            }
        case UInt8(ascii: "\""): return string() != nil
        case UInt8(ascii: "t"): return word("true")
        case UInt8(ascii: "f"): return word("false")
        case UInt8(ascii: "n"): return word("null")
        default: return number()
        }
    }

    mutating func word(_ w: String) -> Bool {
        let u = Array(w.utf8)
        guard s.count - i >= u.count, Array(s[i..<i + u.count]) == u else { return false }
        i += u.count
        return true
    }

    mutating func digits() -> Int {
        let start = i
        while let c = peek(), (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) { i += 1 }
        return i - start
    }

    mutating func number() -> Bool {
        _ = eat(UInt8(ascii: "-"))
        let intStart = i
        let n = digits()
        guard n > 0, n == 1 || s[intStart] != UInt8(ascii: "0") else { return false }
        if eat(UInt8(ascii: ".")) { guard digits() > 0 else { return false } }
        if eat(UInt8(ascii: "e")) || eat(UInt8(ascii: "E")) {
            if !eat(UInt8(ascii: "+")) { _ = eat(UInt8(ascii: "-")) }
            guard digits() > 0 else { return false }
        }
        return true
    }

    mutating func hex4() -> UInt32? {
        guard s.count - i >= 4, let v = UInt32(String(decoding: s[i..<i + 4], as: UTF8.self), radix: 16),
              s[i..<i + 4].allSatisfy({ $0 != UInt8(ascii: "+") && $0 != UInt8(ascii: "-") })
        else { return nil }
        i += 4
        return v
    }

    /// The decoded string, or nil when it is not a valid JSON string.
    mutating func string() -> String? {
        guard eat(UInt8(ascii: "\"")) else { return nil }
        var decoded: [UInt8] = []
        while true {
            guard let c = peek() else { return nil }
            i += 1
            if c == UInt8(ascii: "\"") { break }
            if c < 0x20 { return nil }
            if c != UInt8(ascii: "\\") {
                decoded.append(c)
                continue
            }
            guard let e = peek() else { return nil }
            i += 1
            let simple: [UInt8: UInt8] = [0x22: 0x22, 0x5C: 0x5C, 0x2F: 0x2F, 0x62: 8, 0x66: 12, 0x6E: 10, 0x72: 13, 0x74: 9]
            if let d = simple[e] {
                decoded.append(d)
                continue
            }
            guard e == UInt8(ascii: "u"), var v = hex4() else { return nil }
            if (0xDC00...0xDFFF).contains(v) { return nil }
            if (0xD800...0xDBFF).contains(v) {
                guard eat(UInt8(ascii: "\\")), eat(UInt8(ascii: "u")), let lo = hex4(), (0xDC00...0xDFFF).contains(lo) else {
                    return nil
                }
                v = 0x10000 + (v - 0xD800) * 0x400 + (lo - 0xDC00)
            }
            decoded.append(contentsOf: String(Character(Unicode.Scalar(v)!)).utf8)
        }
        return String(validating: decoded, as: UTF8.self)
    }
}

/// The reason `bytes` is refused, or nil when it parses.
func failureReason(_ bytes: [UInt8], _ options: JSONParser.Options = .init()) -> JSONError.Reason? {
    if case .failure(let e) = outcome(bytes, options) { return e.reason }
    return nil
}
