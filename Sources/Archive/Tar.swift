// POSIX tar (ustar, with pax `path` and `size` records for long names and files of 8 GiB
// and more), written to and read from a file descriptor as a stream: a tenant's backup
// never sits whole in memory. Only what a volume holds is written: directories and
// regular files. The reader reports every entry's type, so a restore can refuse links,
// devices and anything else; both sides stop at the same limits (ArchiveLimits).
import Glibc

public struct ArchiveError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable, Equatable {
        /// A damaged or unacceptable archive, or a failed read or write.
        case invalid
        /// Past one of the `ArchiveLimits`.
        case overLimit
    }
    public let code: Code
    public let description: String
    public init(_ d: String) { self.init(.invalid, d) }
    public init(_ code: Code, _ d: String) {
        self.code = code
        description = d
    }
}

/// What one archive may hold: the writer refuses to write more, the reader to read more,
/// so a backup that is written can also be restored.
public struct ArchiveLimits: Sendable, Equatable {
    /// The files' sizes added up (their apparent sizes: a sparse file counts whole).
    public var contentBytes: Int64
    /// Files and directories.
    public var entries: Int

    public init(contentBytes: Int64, entries: Int) {
        self.contentBytes = contentBytes
        self.entries = entries
    }

    /// Counts one more entry of `size` content bytes into `counted`, or throws.
    func admit(_ size: Int64, into counted: inout (entries: Int, bytes: Int64)) throws(ArchiveError) {
        guard counted.entries < entries else {
            throw ArchiveError(.overLimit, "more than \(entries) files and directories")
        }
        guard size <= contentBytes - counted.bytes else {
            throw ArchiveError(.overLimit, "files adding up to more than \(contentBytes) bytes")
        }
        counted.entries += 1
        counted.bytes += size
    }
}

public enum TarEntryType: Sendable, Equatable {
    case file, directory
    /// A hard or symbolic link (with its target), a device, a FIFO, or an unknown type.
    case link(String), symlink(String), other(UInt8)
}

public struct TarEntry: Sendable, Equatable {
    public var path: String
    public var type: TarEntryType
    public var size: Int64
    public var mode: UInt32
}

/// Writes an archive to `fd`.
public struct TarWriter {
    private let fd: Int32
    private let limits: ArchiveLimits
    private var counted: (entries: Int, bytes: Int64) = (0, 0)
    public private(set) var bytesWritten: Int64 = 0

    /// The largest size the ustar header's 11 octal digits hold; a pax record carries more.
    static let maxOctalSize: Int64 = (1 << 33) - 1

    public init(fd: Int32, limits: ArchiveLimits) {
        self.fd = fd
        self.limits = limits
    }

    public mutating func directory(_ path: String, mode: UInt32, mtime: Int64) throws(ArchiveError) {
        try limits.admit(0, into: &counted)
        try header(path + "/", type: UInt8(ascii: "5"), size: 0, mode: mode, mtime: mtime)
    }

    /// The file's `size` bytes, read from `source`; a file that turns out shorter fails.
    /// Past the limits it throws before writing anything of the file.
    public mutating func file(_ path: String, from source: Int32, size: Int64, mode: UInt32, mtime: Int64) throws(ArchiveError) {
        try limits.admit(size, into: &counted)
        try header(path, type: UInt8(ascii: "0"), size: size, mode: mode, mtime: mtime)
        var left = size
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while left > 0 {
            let want = Int(min(Int64(buffer.count), left))
            let n = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, want) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw ArchiveError("\(path) became shorter while it was archived") }
            try write(Array(buffer[..<n]))
            left -= Int64(n)
        }
        try pad(size)
    }

    /// The two zero blocks that end an archive.
    public mutating func finish() throws(ArchiveError) {
        try write([UInt8](repeating: 0, count: 1024))
    }

    private mutating func header(_ path: String, type: UInt8, size: Int64, mode: UInt32, mtime: Int64) throws(ArchiveError) {
        let name = Array(path.utf8)
        // A pax extended header carries what the ustar fields cannot: the whole path (the
        // ustar name is cut) and a size of 8 GiB or more (the ustar size is then 0).
        var body: [UInt8] = []
        if name.count > 100 { body += Self.paxRecord("path", name) }
        if size > Self.maxOctalSize { body += Self.paxRecord("size", Array(String(size).utf8)) }
        if !body.isEmpty {
            try write(Self.block(name: Array("PaxHeaders/entry".utf8), type: UInt8(ascii: "x"), size: Int64(body.count), mode: 0o644, mtime: mtime))
            try write(body)
            try pad(Int64(body.count))
        }
        try write(Self.block(name: Array(name.prefix(100)), type: type, size: size > Self.maxOctalSize ? 0 : size, mode: mode, mtime: mtime))
    }

    /// "<length> <key>=<value>\n", the length counting the whole record, its own digits too.
    static func paxRecord(_ key: String, _ value: [UInt8]) -> [UInt8] {
        let rest = 1 + key.utf8.count + 1 + value.count + 1
        var length = rest + 1
        while length != rest + String(length).utf8.count { length = rest + String(length).utf8.count }
        return Array(String(length).utf8) + [0x20] + Array(key.utf8) + [0x3D] + value + [0x0A]
    }

    static func block(name: [UInt8], type: UInt8, size: Int64, mode: UInt32, mtime: Int64) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: 512)
        func put(_ bytes: [UInt8], _ at: Int) { for (i, c) in bytes.enumerated() { b[at + i] = c } }
        func octal(_ v: Int64, _ width: Int) -> [UInt8] {
            let digits = String(v, radix: 8)
            return Array((String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits).utf8) + [0]
        }
        put(name, 0)
        put(octal(Int64(mode & 0o7777), 8), 100)
        put(octal(0, 8), 108)  // uid and gid: a restore gives everything to the tenant
        put(octal(0, 8), 116)
        put(octal(size, 12), 124)
        put(octal(min(max(0, mtime), maxOctalSize), 12), 136)
        put(Array(repeating: 0x20, count: 8), 148)
        b[156] = type
        put(Array("ustar\u{0}00".utf8), 257)
        let sum = b.reduce(0) { $0 + Int64($1) }
        put(octal(sum, 7) + [0x20], 148)
        return b
    }

    private mutating func pad(_ size: Int64) throws(ArchiveError) {
        let rest = Int(size % 512)
        if rest != 0 { try write([UInt8](repeating: 0, count: 512 - rest)) }
    }

    private mutating func write(_ bytes: [UInt8]) throws(ArchiveError) {
        var done = 0
        while done < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + done, $0.count - done) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw ArchiveError("writing the archive: \(String(cString: strerror(errno)))") }
            done += n
        }
        bytesWritten += Int64(bytes.count)
    }
}

/// Reads an archive from `fd`, entry by entry.
public struct TarReader {
    private let fd: Int32
    private let limits: ArchiveLimits
    private var counted: (entries: Int, bytes: Int64) = (0, 0)
    private var buffer: [UInt8] = []
    private var start = 0
    /// Body bytes of the current entry not yet read, and its padding.
    private var remaining: Int64 = 0
    private var padding = 0

    public init(fd: Int32, limits: ArchiveLimits) {
        self.fd = fd
        self.limits = limits
    }

    /// The next entry, nil at the end of the archive. Its contents must be read (or
    /// skipped with `skip`) before the next call.
    public mutating func next() throws(ArchiveError) -> TarEntry? {
        if remaining > 0 || padding > 0 { try skip() }
        // What a pax extended header says about the entry that follows it.
        var paxPath: String?
        var paxSize: Int64?
        while true {
            guard let block = try exactly(512) else {
                throw ArchiveError("the archive ends without its end marker")
            }
            if block.allSatisfy({ $0 == 0 }) {
                guard paxPath == nil && paxSize == nil else { throw ArchiveError("a pax header is not followed by an entry") }
                return nil
            }
            guard Self.checksumMatches(block) else { throw ArchiveError("a header's checksum does not match: not a tar archive, or a damaged one") }
            let type = block[156]
            guard let field = Self.number(block[124..<136]), field >= 0 else {
                throw ArchiveError("a header's size field is not a number")
            }
            let mode = UInt32(truncatingIfNeeded: Self.number(block[100..<108]) ?? 0o600)
            var name = try Self.name(block[0..<100])
            if Array(block[257..<262]) == Array("ustar".utf8) {
                let prefix = try Self.name(block[345..<500])
                if !prefix.isEmpty { name = prefix + "/" + name }
            }
            switch type {
            case UInt8(ascii: "x"), UInt8(ascii: "g"):
                guard field <= 1 << 20 else { throw ArchiveError("a pax header is larger than 1 MiB") }
                begin(body: field)
                let body = try contents()
                // Global records ("g") would apply to every later entry: none is honoured.
                guard type == UInt8(ascii: "x") else { continue }
                for (key, value) in try Self.paxRecords(body) {
                    switch key {
                    case "path":
                        guard let text = String(validating: value, as: UTF8.self) else {
                            throw ArchiveError("a pax path is not UTF-8")
                        }
                        paxPath = text
                    case "size":
                        guard let n = Self.decimal(value) else { throw ArchiveError("a pax size record is not a number") }
                        paxSize = n
                    default: break  // times, owners, charsets: a restore sets its own
                    }
                }
                continue
            default: break
            }
            let size = paxSize ?? field
            let path = paxPath ?? name
            let linkTarget = Self.string(block[157..<257])
            let kind: TarEntryType
            switch type {
            case UInt8(ascii: "0"), 0, UInt8(ascii: "7"): kind = path.hasSuffix("/") ? .directory : .file
            case UInt8(ascii: "5"): kind = .directory
            case UInt8(ascii: "1"): kind = .link(linkTarget)
            case UInt8(ascii: "2"): kind = .symlink(linkTarget)
            default: kind = .other(type)
            }
            try limits.admit(kind == .file ? size : 0, into: &counted)
            begin(body: size)
            return TarEntry(path: path, type: kind, size: size, mode: mode)
        }
    }

    /// The body of `size` bytes (and its padding) is next in the stream.
    private mutating func begin(body size: Int64) {
        remaining = size
        padding = Int((512 - size % 512) % 512)
    }

    /// The records of a pax extended header, each "<length> <key>=<value>\n" and read by
    /// its length (a value may hold a newline); anything else is refused.
    static func paxRecords(_ body: [UInt8]) throws(ArchiveError) -> [(key: String, value: [UInt8])] {
        var records: [(key: String, value: [UInt8])] = []
        var at = 0
        while at < body.count {
            var digits = at
            while digits < body.count, digits - at < 8, (0x30...0x39).contains(body[digits]) { digits += 1 }
            guard digits > at, digits < body.count, body[digits] == 0x20, let length = Int(String(decoding: body[at..<digits], as: UTF8.self)),
                  length > digits - at + 1, length <= body.count - at, body[at + length - 1] == 0x0A else {
                throw ArchiveError("a pax header record is malformed (its length does not match it)")
            }
            let record = body[(digits + 1)..<(at + length - 1)]
            guard let equals = record.firstIndex(of: 0x3D), equals > record.startIndex,
                  let key = String(validating: record[..<equals], as: UTF8.self) else {
                throw ArchiveError("a pax header record has no key=value")
            }
            records.append((key, Array(record[(equals + 1)...])))
            at += length
        }
        return records
    }

    /// The current entry's contents, piece by piece.
    public mutating func read(_ handle: ([UInt8]) throws(ArchiveError) -> Void) throws(ArchiveError) {
        while remaining > 0 {
            let want = Int(min(remaining, 64 * 1024))
            guard let piece = try exactly(want) else { throw ArchiveError("the archive ends inside a file") }
            remaining -= Int64(want)
            try handle(piece)
        }
        if padding > 0 {
            guard try exactly(padding) != nil else { throw ArchiveError("the archive ends inside a file's padding") }
            padding = 0
        }
    }

    public mutating func skip() throws(ArchiveError) { try read { _ throws(ArchiveError) in } }

    private mutating func contents() throws(ArchiveError) -> [UInt8] {
        var all: [UInt8] = []
        try read { (piece: [UInt8]) throws(ArchiveError) in all += piece }
        return all
    }

    /// `count` bytes, or nil at the end of the stream before any of them.
    private mutating func exactly(_ count: Int) throws(ArchiveError) -> [UInt8]? {
        while buffer.count - start < count {
            if start > 0 {
                buffer.removeSubrange(0..<start)
                start = 0
            }
            var chunk = [UInt8](repeating: 0, count: 64 * 1024)
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            if n < 0 { throw ArchiveError("reading the archive: \(String(cString: strerror(errno)))") }
            if n == 0 {
                if buffer.count == start { return nil }
                throw ArchiveError("the archive is cut short")
            }
            buffer += chunk[..<n]
        }
        let out = Array(buffer[start..<(start + count)])
        start += count
        return out
    }

    static func string(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes.prefix { $0 != 0 }, as: UTF8.self)
    }

    /// A name field: refused unless UTF-8, so no name is changed on its way to the disk.
    static func name(_ bytes: ArraySlice<UInt8>) throws(ArchiveError) -> String {
        guard let text = String(validating: bytes.prefix { $0 != 0 }, as: UTF8.self) else {
            throw ArchiveError("an entry's name is not UTF-8")
        }
        return text
    }

    /// An octal field, or base-256 (GNU tar's form for large values: the first byte 0x80,
    /// then the value big-endian); a negative base-256 value is not a number.
    static func number(_ bytes: ArraySlice<UInt8>) -> Int64? {
        if let first = bytes.first, first & 0x80 != 0 {
            guard first == 0x80 else { return nil }
            var value: Int64 = 0
            for b in bytes.dropFirst() {
                guard value <= (Int64.max - Int64(b)) >> 8 else { return nil }
                value = value << 8 | Int64(b)
            }
            return value
        }
        let text = bytes.prefix { $0 != 0 && $0 != 0x20 }.drop { $0 == 0x20 }
        if text.isEmpty { return 0 }
        return Int64(String(decoding: text, as: UTF8.self), radix: 8)
    }

    /// Decimal digits only (a pax size), at most 18 of them.
    static func decimal(_ bytes: [UInt8]) -> Int64? {
        guard !bytes.isEmpty, bytes.count <= 18, bytes.allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
        return Int64(String(decoding: bytes, as: UTF8.self))
    }

    static func checksumMatches(_ block: [UInt8]) -> Bool {
        guard let stored = number(block[148..<156].drop { $0 == 0x20 }) else { return false }
        var sum: Int64 = 0
        for (i, b) in block.enumerated() { sum += (148..<156).contains(i) ? 0x20 : Int64(b) }
        return sum == stored
    }
}
