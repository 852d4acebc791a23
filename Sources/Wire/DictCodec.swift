// The bodies of the built-in Dict tasks (`dict.get`, `dict.put`, `dict.delete`,
// `dict.list`) between the dispatcher and a worker: binary and length-prefixed, because
// values are bytes and keys are any UTF-8 but NUL. docs/PROTOCOL.md.
//   dict.put     u16 key length, key, u8 content-type length, content type, value
//   dict.get     key            → u8 content-type length, content type, value
//   dict.delete  key            → empty
//   dict.list    u16 prefix length, prefix, u16 after length, after, u16 limit
//                               → the keys, each followed by a NUL byte
public enum DictCodec {
    /// The Dict's limits, enforced by the dispatcher (HTTP status) and the worker alike:
    /// keys 1–512 bytes of UTF-8, values at most 1 MiB, content types at most 127 bytes.
    public static let maxKeyBytes = 512
    public static let maxValueBytes = 1 << 20
    public static let maxContentTypeBytes = 127

    public static func put(key: String, contentType: String, value: [UInt8]) -> [UInt8] {
        let k = Array(key.utf8), c = Array(contentType.utf8)
        return u16(k.count) + k + [UInt8(min(c.count, 255))] + c.prefix(255) + value
    }

    public static func decodePut(_ body: [UInt8]) -> (key: String, contentType: String, value: [UInt8])? {
        guard body.count >= 3 else { return nil }
        let kn = Int(body[0]) << 8 | Int(body[1])
        guard body.count >= 2 + kn + 1 else { return nil }
        let cn = Int(body[2 + kn])
        guard body.count >= 3 + kn + cn else { return nil }
        return (text(body[2..<(2 + kn)]), text(body[(3 + kn)..<(3 + kn + cn)]), Array(body[(3 + kn + cn)...]))
    }

    public static func entry(contentType: String, value: [UInt8]) -> [UInt8] {
        let c = Array(contentType.utf8.prefix(255))
        return [UInt8(c.count)] + c + value
    }

    public static func decodeEntry(_ body: [UInt8]) -> (contentType: String, value: [UInt8])? {
        guard let n = body.first.map(Int.init), body.count >= 1 + n else { return nil }
        return (text(body[1..<(1 + n)]), Array(body[(1 + n)...]))
    }

    public static func list(prefix: String, after: String?, limit: Int) -> [UInt8] {
        let p = Array(prefix.utf8), a = Array((after ?? "").utf8)
        return u16(p.count) + p + u16(a.count) + a + u16(limit)
    }

    public static func decodeList(_ body: [UInt8]) -> (prefix: String, after: String?, limit: Int)? {
        guard body.count >= 2 else { return nil }
        let pn = Int(body[0]) << 8 | Int(body[1])
        guard body.count >= 2 + pn + 2 else { return nil }
        let an = Int(body[2 + pn]) << 8 | Int(body[3 + pn])
        guard body.count == 4 + pn + an + 2 else { return nil }
        let after = text(body[(4 + pn)..<(4 + pn + an)])
        let limit = Int(body[4 + pn + an]) << 8 | Int(body[5 + pn + an])
        return (text(body[2..<(2 + pn)]), after.isEmpty ? nil : after, limit)
    }

    public static func keys(_ keys: [String]) -> [UInt8] { keys.flatMap { Array($0.utf8) + [0] } }

    public static func decodeKeys(_ body: [UInt8]) -> [String] {
        body.split(separator: 0, omittingEmptySubsequences: true).map { text($0) }
    }

    static func u16(_ n: Int) -> [UInt8] { [UInt8((n >> 8) & 0xFF), UInt8(n & 0xFF)] }
    static func text(_ bytes: ArraySlice<UInt8>) -> String { String(decoding: bytes, as: UTF8.self) }
}
