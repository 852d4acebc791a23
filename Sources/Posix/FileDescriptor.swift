// FileDescriptor: an owned, move-only descriptor that closes itself, and the I/O calls on it.
import CBulkhead
import Glibc

/// An open file descriptor with exactly one owner. It closes in `deinit`; `take()` hands
/// the raw number to a new owner (a child's dup2, for example). Use it `borrowing`.
public struct FileDescriptor: ~Copyable {
    public let rawValue: Int32

    /// Takes ownership of `rawValue`, which must be open and owned by nobody else.
    public init(adopting rawValue: Int32) {
        precondition(rawValue >= 0, "invalid descriptor \(rawValue)")
        self.rawValue = rawValue
    }

    deinit { _ = Glibc.close(rawValue) }

    /// Gives up ownership without closing.
    public consuming func take() -> Int32 {
        let fd = rawValue
        discard self
        return fd
    }

    /// close(2) now. Linux releases the descriptor even when close reports EINTR, so it
    /// is never retried.
    public consuming func close() {
        _ = Glibc.close(take())
    }

    /// read(2): the byte count (0 at end of file), or nil when it would block.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(Errno) -> Int? {
        try retrying("read") { libc(Glibc.read(rawValue, buffer.baseAddress, buffer.count)) }
    }

    /// write(2): the byte count written, or nil when it would block.
    public func write(_ buffer: UnsafeRawBufferPointer) throws(Errno) -> Int? {
        try retrying("write") { libc(Glibc.write(rawValue, buffer.baseAddress, buffer.count)) }
    }

    /// send(2) with MSG_NOSIGNAL on a socket: a dead peer is EPIPE, never a SIGPIPE.
    public func send(_ buffer: UnsafeRawBufferPointer) throws(Errno) -> Int? {
        try retrying("send") { libc(Glibc.send(rawValue, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL))) }
    }

    /// Writes all of `bytes` on a blocking descriptor.
    public func writeAll(_ bytes: [UInt8]) throws(Errno) {
        var offset = 0
        while offset < bytes.count {
            let n: Int?
            do {
                n = try bytes.withUnsafeBytes { raw in try write(UnsafeRawBufferPointer(rebasing: raw[offset...])) }
            } catch let e as Errno { throw e } catch { preconditionFailure("\(error)") }
            guard let n else { throw Errno(EAGAIN, call: "write") }
            offset += n
        }
    }

    /// fcntl(O_NONBLOCK).
    public func setNonBlocking(_ on: Bool = true) throws(Errno) {
        _ = try checked("fcntl(O_NONBLOCK)") { bh_set_nonblocking(rawValue, on ? 1 : 0) }
    }

    /// SO_PEERCRED of a connected Unix socket.
    public func peerCredentials() throws(Errno) -> (pid: pid_t, uid: uid_t, gid: gid_t) {
        var pid: pid_t = 0, uid: uid_t = 0, gid: gid_t = 0
        _ = try checked("getsockopt(SO_PEERCRED)") { bh_peercred(rawValue, &pid, &uid, &gid) }
        return (pid, uid, gid)
    }
}

/// Two descriptors made together: a socket pair's ends, or a pipe's (read, write) ends.
@frozen public struct DescriptorPair: ~Copyable {
    public var first: FileDescriptor
    public var second: FileDescriptor
    init(_ first: consuming FileDescriptor, _ second: consuming FileDescriptor) {
        self.first = first
        self.second = second
    }
}

/// Descriptor-creating calls. Everything is opened close-on-exec.
public enum Posix {
    /// socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC).
    public static func socketPair() throws(Errno) -> DescriptorPair {
        var fds: [Int32] = [-1, -1]
        _ = try checked("socketpair") { bh_socketpair_stream(&fds) }
        return DescriptorPair(FileDescriptor(adopting: fds[0]), FileDescriptor(adopting: fds[1]))
    }

    /// pipe2(O_CLOEXEC): (read end, write end).
    public static func pipe(nonBlocking: Bool = false) throws(Errno) -> DescriptorPair {
        var fds: [Int32] = [-1, -1]
        _ = try checked("pipe2") { bh_pipe(&fds, nonBlocking ? 1 : 0) }
        return DescriptorPair(FileDescriptor(adopting: fds[0]), FileDescriptor(adopting: fds[1]))
    }

    /// open(2) with O_CLOEXEC added.
    public static func open(_ path: String, _ flags: Int32, mode: mode_t = 0) throws(Errno) -> FileDescriptor {
        let fd = try checked("open(\(path))") { libc(Glibc.open(path, flags | O_CLOEXEC, mode)) }
        return FileDescriptor(adopting: fd)
    }

    /// The descriptors open in this process, from /proc/self/fd.
    public static func openDescriptors(pid: pid_t? = nil) -> [Int32] {
        let dir = pid.map { "/proc/\($0)/fd" } ?? "/proc/self/fd"
        guard let d = opendir(dir) else { return [] }
        defer { closedir(d) }
        let own = dirfd(d)
        var result: [Int32] = []
        while let entry = readdir(d) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if let fd = Int32(name), pid != nil || fd != own { result.append(fd) }
        }
        return result.sorted()
    }

    /// A listening Unix stream socket (non-blocking); a stale socket file is replaced.
    public static func listenUnix(path: String, backlog: Int32 = 64) throws(Errno) -> FileDescriptor {
        FileDescriptor(adopting: try checked("listen(\(path))") { bh_unix_listen(path, backlog) })
    }

    /// A connected, blocking Unix stream socket.
    public static func connectUnix(path: String) throws(Errno) -> FileDescriptor {
        FileDescriptor(adopting: try checked("connect(\(path))") { bh_unix_connect(path) })
    }

    /// accept4 (non-blocking, close-on-exec): nil when no connection is waiting.
    public static func accept(_ listener: borrowing FileDescriptor) throws(Errno) -> FileDescriptor? {
        guard let fd = try retrying("accept4", { bh_accept4(listener.rawValue) }) else { return nil }
        return FileDescriptor(adopting: fd)
    }

    /// The monotonic clock in nanoseconds.
    public static func monotonicNanoseconds() -> UInt64 { bh_monotonic_ns() }
}
