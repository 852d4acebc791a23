// The tar writer and reader that backups use, on their own: names come back byte for
// byte (a newline in a long name included), sizes of 8 GiB and more travel in a pax
// record, pax records are read by their length and refused when it lies, and both sides
// stop at the same limits.
import Archive
import Foundation
import Glibc
import Testing

/// A file in a fresh temporary directory, removed with it.
final class ScratchFile {
    let directory: String
    let path: String

    init() throws {
        directory = try makeTemporaryDirectory()
        path = directory + "/archive.tar"
    }

    deinit { try? FileManager.default.removeItem(atPath: directory) }

    func open(_ flags: Int32) throws -> Int32 {
        let fd = Glibc.open(path, flags | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw TestFailure("open \(path): \(String(cString: strerror(errno)))") }
        return fd
    }

    func write(_ bytes: [UInt8]) throws { try Data(bytes).write(to: URL(fileURLWithPath: path)) }
    func read() throws -> [UInt8] { Array(try Data(contentsOf: URL(fileURLWithPath: path))) }
}

let noLimits = ArchiveLimits(contentBytes: .max, entries: .max)

/// Every entry of the archive in `file`, with its contents.
func entries(_ file: ScratchFile, limits: ArchiveLimits = noLimits) throws -> [(TarEntry, [UInt8])] {
    let fd = try file.open(O_RDONLY)
    defer { close(fd) }
    var reader = TarReader(fd: fd, limits: limits)
    var all: [(TarEntry, [UInt8])] = []
    while let entry = try reader.next() {
        var body: [UInt8] = []
        try reader.read { (piece: [UInt8]) throws(ArchiveError) in body += piece }
        all.append((entry, body))
    }
    return all
}

/// A ustar header block (the test's own) with the given raw size field.
func header(_ name: String, type: UInt8 = UInt8(ascii: "0"), sizeField: [UInt8]) -> [UInt8] {
    var b = [UInt8](repeating: 0, count: 512)
    for (i, c) in name.utf8.enumerated() { b[i] = c }
    for (i, c) in "0000644\u{0}".utf8.enumerated() { b[100 + i] = c }
    for (i, c) in sizeField.enumerated() { b[124 + i] = c }
    b[156] = type
    for (i, c) in "ustar\u{0}00".utf8.enumerated() { b[257 + i] = c }
    for i in 148..<156 { b[i] = 0x20 }
    let sum = String(b.reduce(0) { $0 + Int($1) }, radix: 8)
    for (i, c) in (String(repeating: "0", count: 6 - sum.count) + sum + "\u{0} ").utf8.enumerated() { b[148 + i] = c }
    return b
}

func padded(_ bytes: [UInt8]) -> [UInt8] { bytes + [UInt8](repeating: 0, count: (512 - bytes.count % 512) % 512) }

struct ArchiveTests {
    @Test(arguments: [
        "short",
        "short\nwith a newline",
        String(repeating: "a", count: 100),
        String(repeating: "b", count: 101),
        String(repeating: "L", count: 110) + "\nrenamed",
        "dir/" + String(repeating: "é", count: 80) + "\n\n7 path=evil\n",
    ])
    func namesComeBackExactly(name: String) throws {
        let file = try ScratchFile()
        let source = try ScratchFile()
        try source.write(Array("content".utf8))
        let out = try file.open(O_WRONLY | O_CREAT | O_TRUNC)
        let input = try source.open(O_RDONLY)
        var writer = TarWriter(fd: out, limits: noLimits)
        try writer.directory("dir", mode: 0o700, mtime: 0)
        try writer.file(name, from: input, size: 7, mode: 0o600, mtime: 1_700_000_000)
        try writer.finish()
        close(out)
        close(input)
        let read = try entries(file)
        #expect(read.map(\.0.path) == ["dir/", name])
        #expect(read.last?.0.type == .file && read.last?.1 == Array("content".utf8))
    }

    @Test func sizesOf8GiBAndMoreTravelInAPaxRecord() throws {
        // Only the headers are needed: the empty source makes the writer stop after them.
        let big: Int64 = (1 << 33) + 5
        let file = try ScratchFile()
        let empty = try ScratchFile()
        try empty.write([])
        let out = try file.open(O_WRONLY | O_CREAT | O_TRUNC)
        let input = try empty.open(O_RDONLY)
        var writer = TarWriter(fd: out, limits: noLimits)
        #expect(throws: ArchiveError.self) { try writer.file("huge.bin", from: input, size: big, mode: 0o600, mtime: 0) }
        close(out)
        close(input)
        let bytes = try file.read()
        #expect(bytes.count == 1536)  // the pax header and its record, then the entry's header
        #expect(String(decoding: bytes[512..<1024].prefix { $0 != 0 }, as: UTF8.self) == "19 size=8589934597\n")
        try file.write(bytes + tarEnd)
        let fd = try file.open(O_RDONLY)
        defer { close(fd) }
        var reader = TarReader(fd: fd, limits: noLimits)
        let entry = try #require(try reader.next())
        #expect(entry.path == "huge.bin" && entry.size == big)
    }

    @Test func theReaderTakesPaxAndBase256Sizes() throws {
        let file = try ScratchFile()
        let pax = Array("10 size=5\n".utf8)
        let base256: [UInt8] = [0x80] + [UInt8](repeating: 0, count: 10) + [5]
        try file.write(header("PaxHeaders/x", type: UInt8(ascii: "x"), sizeField: Array("00000000012\u{0}".utf8)) + padded(pax)
            + header("pax.txt", sizeField: Array("00000000000\u{0}".utf8)) + padded(Array("hello".utf8))
            + header("gnu.txt", sizeField: base256) + padded(Array("world".utf8)) + tarEnd)
        let read = try entries(file)
        #expect(read.map(\.0.path) == ["pax.txt", "gnu.txt"])
        #expect(read.map(\.1) == [Array("hello".utf8), Array("world".utf8)])

        let negative: [UInt8] = [0xFF] + [UInt8](repeating: 0xFF, count: 11)
        try file.write(header("neg.txt", sizeField: negative) + tarEnd)
        #expect(throws: ArchiveError.self) { try entries(file) }
    }

    @Test(arguments: [
        "99 path=x\n",          // longer than the header
        "5 path=x\n",           // shorter than its record
        "9 path=x\n\n",         // a stray byte after the records
        "path=x\n",             // no length
        "11 pathxyz\n",         // no key=value
        "10 =value\n",          // no key
        "10 path=x\n9 a=b\n",   // a record past the end
    ])
    func paxRecordsThatLieAreRefused(body: String) throws {
        let file = try ScratchFile()
        try file.write(header("PaxHeaders/x", type: UInt8(ascii: "x"), sizeField: Array(String(format: "%011o\u{0}", body.utf8.count).utf8))
            + padded(Array(body.utf8)) + header("ok.txt", sizeField: Array("00000000000\u{0}".utf8)) + tarEnd)
        #expect(throws: ArchiveError.self) { try entries(file) }
    }

    @Test func bothSidesStopAtTheSameLimits() throws {
        let file = try ScratchFile()
        let source = try ScratchFile()
        try source.write([UInt8](repeating: 1, count: 100))
        let limits = ArchiveLimits(contentBytes: 150, entries: 3)
        let out = try file.open(O_WRONLY | O_CREAT | O_TRUNC)
        var writer = TarWriter(fd: out, limits: limits)
        func add(_ name: String) throws(ArchiveError) {
            let input = open(source.path, O_RDONLY | O_CLOEXEC)
            defer { close(input) }
            try writer.file(name, from: input, size: 100, mode: 0o600, mtime: 0)
        }
        try add("one")
        let before = writer.bytesWritten
        do {
            try add("two")
            Issue.record("150 bytes allowed, 200 written")
        } catch {
            #expect(error.code == .overLimit)
        }
        #expect(writer.bytesWritten == before)  // nothing of the refused file was written
        try writer.directory("a", mode: 0o700, mtime: 0)
        try writer.directory("b", mode: 0o700, mtime: 0)
        #expect(throws: ArchiveError.self) { try writer.directory("c", mode: 0o700, mtime: 0) }
        try writer.finish()
        close(out)
        #expect(try entries(file, limits: limits).count == 3)
        #expect(throws: ArchiveError.self) { try entries(file, limits: ArchiveLimits(contentBytes: 99, entries: 3)) }
        #expect(throws: ArchiveError.self) { try entries(file, limits: ArchiveLimits(contentBytes: 150, entries: 2)) }
    }
}
