// Query strings and percent-encoded path parameters, as the tenant endpoints read them.

enum Query {
    /// `a=b&c=d`, values percent-decoded, with only `allowed` names, each at most once; nil
    /// for anything else (the caller answers 400 with what it accepts).
    static func parse(_ text: String?, allowed: Set<String>) -> [String: String]? {
        var out: [String: String] = [:]
        guard let text, !text.isEmpty else { return out }
        for pair in text.split(separator: "&", omittingEmptySubsequences: false) {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(kv[0])
            guard allowed.contains(name), kv.count == 2, out[name] == nil, let value = PercentDecoding.decode(String(kv[1])) else {
                return nil
            }
            out[name] = value
        }
        return out
    }
}

/// RFC 3986 percent-decoding into UTF-8 text; nil for a malformed escape, invalid UTF-8
/// or a NUL.
enum PercentDecoding {
    static func decode(_ text: String) -> String? {
        var bytes: [UInt8] = []
        var it = Array(text.utf8)[...]
        while let b = it.popFirst() {
            if b == UInt8(ascii: "%") {
                guard let h = it.popFirst().flatMap(hex), let l = it.popFirst().flatMap(hex) else { return nil }
                bytes.append(h << 4 | l)
            } else {
                bytes.append(b)
            }
        }
        guard !bytes.contains(0), let s = String(validating: bytes, as: UTF8.self) else { return nil }
        return s
    }

    static func hex(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x41...0x46: c - 0x41 + 10
        case 0x61...0x66: c - 0x61 + 10
        default: nil
        }
    }
}
