// POSIX tar (ustar, with pax `path` records for long names), written to and read from a
// file descriptor as a stream: a tenant's backup never sits whole in memory. Only what a
// volume holds is written: directories and regular files. The reader reports every
// entry's type, so a restore can refuse links, devices and anything else.
import Glibc

public struct ArchiveError: Error, Sendable, CustomStringConvertible {
    public let description: String
    public init(_ d: String) { description = d }
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
    public private(set) var bytesWritten: Int64 = 0

    public init(fd: Int32) { self.fd = fd }

    public mutating func directory(_ path: String, mode: UInt32, mtime: Int64) throws(ArchiveError) {
        try header(path + "/", type: UInt8(ascii: "5"), size: 0, mode: mode, mtime: mtime)
    }

    /// The file's `size` bytes, read from `source`; a file that turns out shorter fails.
    public mutating func file(_ path: String, from source: Int32, size: Int64, mode: UInt32, mtime: Int64) throws(ArchiveError) {
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
        if name.count > 100 {
            // A pax extended header carries the whole path; the ustar name is cut.
            // "<length> path=<path>\n", the length counting its own digits.
            let tail = " path=" + path + "\n"
            var total = tail.utf8.count + 1
            while total != tail.utf8.count + String(total).count { total = tail.utf8.count + String(total).count }
            let body = Array((String(total) + tail).utf8)
            try write(Self.block(name: Array("PaxHeaders/entry".utf8), type: UInt8(ascii: "x"), size: Int64(body.count), mode: 0o644, mtime: mtime))
            try write(body)
            try pad(Int64(body.count))
        }
        try write(Self.block(name: Array(name.prefix(100)), type: type, size: size, mode: mode, mtime: mtime))
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
        put(octal(max(0, mtime), 12), 136)
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
    private var buffer: [UInt8] = []
    private var start = 0
    /// Body bytes of the current entry not yet read, and its padding.
    private var remaining: Int64 = 0
    private var padding = 0

    public init(fd: Int32) { self.fd = fd }

    /// The next entry, nil at the end of the archive. Its contents must be read (or
    /// skipped with `skip`) before the next call.
    public mutating func next() throws(ArchiveError) -> TarEntry? {
        if remaining > 0 || padding > 0 { try skip() }
        var longPath: String?
        while true {
            guard let block = try exactly(512) else {
                throw ArchiveError("the archive ends without its end marker")
            }
            if block.allSatisfy({ $0 == 0 }) { return nil }
            guard Self.checksumMatches(block) else { throw ArchiveError("a header's checksum does not match: not a tar archive, or a damaged one") }
            let type = block[156]
            guard let size = Self.number(block[124..<136]), size >= 0 else { throw ArchiveError("a header's size field is not a number") }
            let mode = UInt32(truncatingIfNeeded: Self.number(block[100..<108]) ?? 0o600)
            var name = Self.string(block[0..<100])
            if Array(block[257..<262]) == Array("ustar".utf8) {
                let prefix = Self.string(block[345..<500])
                if !prefix.isEmpty { name = prefix + "/" + name }
            }
            remaining = size
            padding = Int((512 - size % 512) % 512)
            switch type {
            case UInt8(ascii: "x"):
                guard size <= 1 << 20 else { throw ArchiveError("a pax header is larger than 1 MiB") }
                let body = try contents()
                for record in String(decoding: body, as: UTF8.self).split(separator: "\n") {
                    if let r = record.split(separator: " ", maxSplits: 1).last, r.hasPrefix("path=") { longPath = String(r.dropFirst(5)) }
                }
                continue
            case UInt8(ascii: "g"):
                try skip()
                continue
            default: break
            }
            let path = longPath ?? name
            let linkTarget = Self.string(block[157..<257])
            let kind: TarEntryType
            switch type {
            case UInt8(ascii: "0"), 0, UInt8(ascii: "7"): kind = path.hasSuffix("/") ? .directory : .file
            case UInt8(ascii: "5"): kind = .directory
            case UInt8(ascii: "1"): kind = .link(linkTarget)
            case UInt8(ascii: "2"): kind = .symlink(linkTarget)
            default: kind = .other(type)
            }
            return TarEntry(path: path, type: kind, size: size, mode: mode)
        }
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

    static func number(_ bytes: ArraySlice<UInt8>) -> Int64? {
        let text = bytes.prefix { $0 != 0 && $0 != 0x20 }.drop { $0 == 0x20 }
        if text.isEmpty { return 0 }
        return Int64(String(decoding: text, as: UTF8.self), radix: 8)
    }

    static func checksumMatches(_ block: [UInt8]) -> Bool {
        guard let stored = number(block[148..<156].drop { $0 == 0x20 }) else { return false }
        var sum: Int64 = 0
        for (i, b) in block.enumerated() { sum += (148..<156).contains(i) ? 0x20 : Int64(b) }
        return sum == stored
    }
}
