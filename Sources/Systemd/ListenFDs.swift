// Socket activation (sd_listen_fds(3)): systemd passes listening sockets from fd 3 on,
// with LISTEN_PID (ours), LISTEN_FDS (how many) and LISTEN_FDNAMES (their names, ":"
// separated). The variables are removed once read, so no child sees them.
import Glibc

public struct ListenFD: Sendable, Equatable {
    public let fd: Int32
    /// `FileDescriptorName=` of the socket unit, or "unknown".
    public let name: String
}

public enum ListenFDs {
    public static let first: Int32 = 3

    /// The sockets passed to this process, each set close-on-exec; [] when none were.
    public static func take() -> [ListenFD] {
        defer {
            unsetenv("LISTEN_PID")
            unsetenv("LISTEN_FDS")
            unsetenv("LISTEN_FDNAMES")
        }
        guard let pid = getenv("LISTEN_PID").flatMap({ Int32(String(cString: $0)) }), pid == getpid(),
              let count = getenv("LISTEN_FDS").flatMap({ Int32(String(cString: $0)) }), count > 0, count < 1024 else { return [] }
        let names = getenv("LISTEN_FDNAMES").map { String(cString: $0).split(separator: ":", omittingEmptySubsequences: false).map(String.init) } ?? []
        return (0..<count).map { i in
            let fd = first + i
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            return ListenFD(fd: fd, name: Int(i) < names.count ? names[Int(i)] : "unknown")
        }
    }
}
