// The built-in file tasks (bodies in Wire/FilesCodec.swift): files in the tenant's
// volume, served inside the jail, where "/" is the volume. Contents stream in and out in
// 64 KiB pieces, so a file's size is bounded by the disk, not by memory. A write goes to a
// temporary file (TemporaryFiles) that is renamed over the old one only once it is
// complete and on disk, so a refused, failed or abandoned write leaves the previous file
// intact. Sizes are counted in 4 KiB blocks, as the daemon's storage scan counts them.
import CBulkhead
import Glibc
import Wire

enum FileTasks {
    static var all: [(String, TaskHandler)] { [
        ("files.put", { request throws(TaskError) in
            guard request.streamed, let put = FilePath.decodePut(request.body) else { throw .badRequest("malformed files.put") }
            return try write(try path(Array(put.path.utf8)), request, length: put.length, quota: put.quota, used: put.used)
        }),
        ("files.delete", { request throws(TaskError) in try delete(try path(request.body)) }),
        ("files.list", { request throws(TaskError) in
            let prefix = String(decoding: request.body, as: UTF8.self)
            var found: [(String, Int64)] = []
            walk("", &found)
            // Bytes, not Characters: a prefix ending before a combining mark still matches.
            let chosen = found.filter { $0.0.utf8.starts(with: prefix.utf8) }
                .sorted { $0.0.utf8.lexicographicallyPrecedes($1.0.utf8) }.prefix(1000)
            var out: [UInt8] = []
            for (path, size) in chosen {
                out += Array(path.utf8)
                out.append(0)
                out += Array(String(size).utf8)
                out.append(0)
            }
            return out
        }),
    ] }

    static var streaming: [(String, StreamingTaskHandler)] { [
        ("files.get", { request, stream throws(TaskError) in try get(try path(request.body), stream) }),
    ] }

    static func path(_ body: [UInt8]) throws(TaskError) -> String {
        let p = String(decoding: body, as: UTF8.self)
        if let problem = FilePath.check(p) { throw .badRequest(problem) }
        return p
    }

    static func blocks(_ size: Int64) -> Int64 { (size + 4095) / 4096 * 4096 }

    /// Pieces read from a file and sent as one DATA frame each.
    static let chunkBytes = 64 * 1024

    /// A small file in one answer; a larger one streamed, exactly as long as it was when
    /// opened (a file cut shorter meanwhile fails the stream rather than sending less). A
    /// file too large for one frame of the size the worker was given streams too.
    static func get(_ path: String, _ stream: ResponseStream) throws(TaskError) -> [UInt8] {
        let fd = open("/" + path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw errno == ENOENT || errno == ELOOP || errno == ENOTDIR ? .notFound("no file \(path)") : failure("open") }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { throw .notFound("no file \(path)") }
        let size = Int(st.st_size)
        let streamed = size >= FilePath.streamFrom || size > stream.maxWholeBody
        if streamed { stream.start(head: FilePath.u64(UInt64(size))) }
        var out = [UInt8](repeating: 0, count: streamed ? min(chunkBytes, stream.maxPiece) : size)
        var done = 0
        while done < size {
            let want = min(out.count, size - done)
            var got = 0
            while got < want {
                let n = out.withUnsafeMutableBytes { read(fd, $0.baseAddress! + got, want - got) }
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { break }
                got += n
            }
            done += got
            guard streamed else { return Array(out[..<done]) }
            guard got == want else { throw .failed("\(path) became shorter while it was read") }
            try stream.write(Array(out[..<got]))
        }
        return streamed ? [] : out
    }

    /// Streams the body into a temporary file that replaces `path` once complete and on
    /// disk. The size limits are checked against the announced length before a byte is
    /// written, and against what has arrived as it arrives.
    static func write(_ path: String, _ request: borrowing TaskRequest, length: UInt64?, quota: UInt64,
                      used: UInt64) throws(TaskError) -> [UInt8] {
        var limit = rlimit()
        let maxSize: UInt64 = getrlimit(__rlimit_resource_t(RLIMIT_FSIZE.rawValue), &limit) == 0 && limit.rlim_cur != rlim_t.max
            ? UInt64(limit.rlim_cur) : .max
        func tooLarge() -> TaskError { .tooLarge("the file is larger than this worker's max_file_size") }
        var old = stat()
        let oldBlocks: Int64 = lstat("/" + path, &old) == 0 && (old.st_mode & S_IFMT) == S_IFREG ? Int64(old.st_blocks) * 512 : 0
        func fits(_ size: UInt64) -> Bool { Int64(used) - oldBlocks + blocks(Int64(min(size, UInt64(Int64.max / 2)))) <= Int64(quota) }
        func overQuota() -> TaskError { .quotaExceeded("the volume would exceed its storage quota of \(quota) bytes") }
        if let length {
            guard length <= maxSize else { throw tooLarge() }
            guard fits(length) else { throw overQuota() }
        }
        // Parents, as the tenant's own directories.
        var dir = ""
        for part in path.split(separator: "/").dropLast() {
            dir += "/" + part
            if mkdir(dir, 0o700) != 0 && errno != EEXIST { throw failure("mkdir") }
        }
        TemporaryFiles.sweep()  // what a worker that died mid-upload left
        let (fd, temp) = try TemporaryFiles.create()
        var written: UInt64 = 0
        do throws(TaskError) {
            while let chunk = try request.nextChunk() {
                written += UInt64(chunk.count)
                guard written <= maxSize else { throw tooLarge() }
                guard fits(written) else { throw overQuota() }
                guard writeAll(fd, chunk) else { throw failure("write") }
            }
            guard fsync(fd) == 0 else { throw failure("fsync") }
            // Renamed while still locked: released earlier, a sweep could take it first.
            guard rename(temp, "/" + path) == 0 else { throw failure("rename") }
        } catch {
            unlink(temp)
            close(fd)
            throw error
        }
        close(fd)
        // The rename itself on disk: fsync the directory.
        let d = open(dir.isEmpty ? "/" : dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if d >= 0 { fsync(d); close(d) }
        let newBlocks = blocks(Int64(written))
        return FilePath.u64(written) + FilePath.u64(UInt64(bitPattern: newBlocks - oldBlocks))
    }

    static func writeAll(_ fd: Int32, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = Glibc.write(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return false }
                done += n
            }
            return true
        }
    }

    static func delete(_ path: String) throws(TaskError) -> [UInt8] {
        var st = stat()
        guard lstat("/" + path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { throw .notFound("no file \(path)") }
        guard unlink("/" + path) == 0 else { throw failure("unlink") }
        return FilePath.u64(UInt64(bitPattern: -Int64(st.st_blocks) * 512))
    }

    /// Regular files under `dir` (relative), not following links, not entering the
    /// reserved directory, not listing temporary files.
    static func walk(_ dir: String, _ out: inout [(String, Int64)]) {
        guard out.count < 100_000, let d = opendir(dir.isEmpty ? "/" : "/" + dir) else { return }
        defer { closedir(d) }
        while let entry = readdir(d) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name == "." || name == ".." || name.utf8.starts(with: FilePath.reserved.utf8) { continue }
            let path = dir.isEmpty ? name : dir + "/" + name
            var st = stat()
            guard lstat("/" + path, &st) == 0 else { continue }
            switch st.st_mode & S_IFMT {
            case S_IFREG: out.append((path, Int64(st.st_size)))
            case S_IFDIR: walk(path, &out)
            default: break
            }
        }
    }

    static func failure(_ what: String) -> TaskError { .failed("\(what) failed: \(String(cString: strerror(errno)))") }
}

/// Uploads in progress, in `/.bulkhead/tmp/` (reserved: no client names it, and files.list
/// does not show it). Each is locked (flock) by the worker writing it for as long as it
/// writes, and the lock goes with that worker however it ends (timeout, crash, kill,
/// shutdown): a file nobody holds is left over, and the sweep — when a worker starts and
/// before each upload — removes it. Several workers of one tenant share the directory;
/// a sweep never takes a file a live writer holds.
enum TemporaryFiles {
    static let directory = "/.bulkhead/tmp"

    /// A new temporary file, open for writing and locked: its descriptor and path.
    static func create() throws(TaskError) -> (fd: Int32, path: String) {
        _ = mkdir("/.bulkhead", 0o700)
        if mkdir(directory, 0o700) != 0 && errno != EEXIST { throw FileTasks.failure("mkdir") }
        for _ in 0..<8 {
            var random: UInt64 = 0
            _ = withUnsafeMutableBytes(of: &random) { bh_random($0.baseAddress, $0.count) }
            let path = directory + "/" + String(random, radix: 16)
            let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard fd >= 0 else {
                if errno == EEXIST { continue }
                throw FileTasks.failure("create")
            }
            // Between open and flock another worker's sweep may take the file: it is ours
            // only if we hold the lock and the name still leads to it.
            if flock(fd, LOCK_EX | LOCK_NB) == 0 && names(path, fd) { return (fd, path) }
            close(fd)
        }
        throw .failed("cannot create a temporary file")
    }

    /// Removes every temporary file no live writer holds.
    static func sweep() {
        guard let d = opendir(directory) else { return }
        defer { closedir(d) }
        while let entry = readdir(d) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name == "." || name == ".." { continue }
            let path = directory + "/" + name
            let fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)
            guard fd >= 0 else { continue }
            // Locked: its writer is alive. Renamed away meanwhile: not ours to remove.
            if flock(fd, LOCK_EX | LOCK_NB) == 0 && names(path, fd) { unlink(path) }
            close(fd)
        }
    }

    /// Whether `path` is (still) the file open as `fd`.
    private static func names(_ path: String, _ fd: Int32) -> Bool {
        var open = stat(), named = stat()
        return fstat(fd, &open) == 0 && lstat(path, &named) == 0 && open.st_ino == named.st_ino && open.st_dev == named.st_dev
    }
}
