// Tenant file paths and the bodies of the built-in file tasks (`files.get`,
// `files.put`, `files.delete`, `files.list`), between the dispatcher and a worker.
// docs/PROTOCOL.md.
//   files.get     path                         → the file's bytes; from 256 KiB on a streamed
//                                                response: u64 size, then the bytes in DATA
//   files.put     u16 path length, path, u64 quota bytes, u64 bytes used, u64 length
//                 (all ones: unknown), streamed: the content follows in DATA frames
//                                              → u64 size, i64 change of the volume's bytes
//   files.delete  path                         → i64 change of the volume's bytes (negative)
//   files.list    prefix                       → per file: path, NUL, decimal size, NUL
public enum FilePath {
    public static let maxBytes = 1024
    public static let maxComponentBytes = 255
    /// Where the worker keeps its own state (the Dict); never reachable as a file.
    public static let reserved = ".bulkhead"

    /// The path as given, if it is a plain relative path inside the volume: components
    /// separated by single slashes, none empty, `.` or `..`, no NUL, not the reserved
    /// directory; otherwise why not. The chroot would stop an escape anyway; this
    /// refuses the attempt with a clear 400 before any file is touched.
    public static func check(_ path: String) -> String? {
        let bytes = path.utf8
        if bytes.isEmpty { return "the path is empty" }
        if bytes.count > maxBytes { return "the path is longer than \(maxBytes) bytes" }
        if bytes.contains(0) { return "the path contains NUL" }
        if bytes.first == UInt8(ascii: "/") { return "the path must be relative to the volume (no leading /)" }
        let parts = path.split(separator: "/", omittingEmptySubsequences: false)
        for part in parts {
            if part.isEmpty { return "the path has an empty component (// or a trailing /)" }
            if part == "." || part == ".." { return "the path must not contain . or .. components" }
            if part.utf8.count > maxComponentBytes { return "a path component is longer than \(maxComponentBytes) bytes" }
        }
        if parts.contains(where: { $0.hasPrefix(reserved) }) { return "names starting with \(reserved) are reserved" }
        return nil
    }

    /// The head of a streamed `files.put`; `length` nil when the client did not say.
    public static func put(path: String, quota: UInt64, used: UInt64, length: Int?) -> [UInt8] {
        let p = Array(path.utf8)
        return [UInt8(p.count >> 8), UInt8(p.count & 0xFF)] + p + u64(quota) + u64(used) + u64(length.map { UInt64($0) } ?? .max)
    }

    public static func decodePut(_ body: [UInt8]) -> (path: String, quota: UInt64, used: UInt64, length: UInt64?)? {
        guard body.count >= 2 else { return nil }
        let n = Int(body[0]) << 8 | Int(body[1])
        guard body.count == 2 + n + 24 else { return nil }
        let length = read64(body, 18 + n)
        return (String(decoding: body[2..<(2 + n)], as: UTF8.self), read64(body, 2 + n), read64(body, 10 + n),
                length == .max ? nil : length)
    }

    /// Files up to this size are answered in one piece; larger ones stream.
    public static let streamFrom = 256 * 1024

    public static func u64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8((v >> (56 - 8 * UInt64($0))) & 0xFF) } }

    public static func read64(_ b: [UInt8], _ at: Int) -> UInt64 {
        guard b.count >= at + 8 else { return 0 }
        return (0..<8).reduce(UInt64(0)) { $0 << 8 | UInt64(b[at + $1]) }
    }
}
