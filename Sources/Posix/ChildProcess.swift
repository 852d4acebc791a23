// Spawning children with posix_spawn and tracking them by pidfd, so a reused pid is never signalled.
import CBulkhead
import Glibc

/// How a child ended, with the kernel's account of its resource use.
public struct ExitStatus: Sendable, Equatable, CustomStringConvertible {
    public enum Kind: Sendable, Equatable { case exited(Int32), signalled(Int32) }
    public let kind: Kind
    /// User + system CPU time of the child, from the kernel (waitid's rusage).
    public let cpuMicros: UInt64
    public let maxRSSKiB: UInt64

    public var isCleanExit: Bool { kind == .exited(0) }

    public var description: String {
        switch kind {
        case .exited(let code): return "exited with status \(code)"
        case .signalled(let sig): return "killed by signal \(sig) (\(String(cString: strsignal(sig))))"
        }
    }
}

/// A child process we spawned, held by its pidfd. The pidfd is readable once the child
/// has exited; `reap()` then collects it (no zombie stays behind).
public struct ChildProcess: ~Copyable {
    public let pid: pid_t
    public let pidfd: FileDescriptor

    /// posix_spawn `path` with `arguments` (argv[0] included), an empty environment, a new
    /// session, an empty signal mask, and stdin/stdout/stderr/fd 3 set from the given
    /// descriptors. No code of ours runs between fork and exec.
    public static func spawn(
        path: String, arguments: [String],
        stdin: borrowing FileDescriptor, stdout: borrowing FileDescriptor,
        stderr: borrowing FileDescriptor, fd3: borrowing FileDescriptor
    ) throws(Errno) -> ChildProcess {
        let cArgs = arguments.map { strdup($0) } + [nil]
        defer { for p in cArgs { free(p) } }
        let pid = try checked("posix_spawn(\(path))") {
            bh_spawn(path, cArgs, stdin.rawValue, stdout.rawValue, stderr.rawValue, fd3.rawValue)
        }
        // The child is not reaped until we wait for it, so its pid cannot be reused before
        // pidfd_open: the pidfd names exactly this child.
        let pidfd: Int32
        do {
            pidfd = try checked("pidfd_open") { bh_pidfd_open(pid) }
        } catch {
            _ = kill(pid, SIGKILL)
            var status: Int32 = 0
            _ = waitpid(pid, &status, 0)
            throw error
        }
        return ChildProcess(pid: pid, pidfd: FileDescriptor(adopting: pidfd))
    }

    /// Takes hold of `pid`, which must be a child of this process that only this process
    /// can reap (so its pid cannot be recycled before pidfd_open).
    public static func adopt(pid: pid_t) throws(Errno) -> ChildProcess {
        let pidfd = try checked("pidfd_open") { bh_pidfd_open(pid) }
        return ChildProcess(pid: pid, pidfd: FileDescriptor(adopting: pidfd))
    }

    private init(pid: pid_t, pidfd: consuming FileDescriptor) {
        self.pid = pid
        self.pidfd = pidfd
    }

    /// pidfd_send_signal(2). ESRCH (already exited, not yet reaped) is not an error.
    public func signal(_ sig: Int32) {
        _ = bh_pidfd_send_signal(pidfd.rawValue, sig)
    }

    /// waitid(P_PIDFD, WNOHANG): the exit status if the child has ended, else nil.
    public func reap() throws(Errno) -> ExitStatus? {
        var code: Int32 = 0, status: Int32 = 0
        var cpu: UInt64 = 0, rss: UInt64 = 0
        let r = bh_pidfd_reap(pidfd.rawValue, &code, &status, &cpu, &rss)
        // ECHILD: an adopted child whose old parent has not finished exiting yet.
        if r == 0 || r == -ECHILD { return nil }
        if r < 0 { throw Errno(-r, call: "waitid(P_PIDFD)") }
        let kind: ExitStatus.Kind = code == Int32(BH_CLD_EXITED) ? .exited(status) : .signalled(status)
        return ExitStatus(kind: kind, cpuMicros: cpu, maxRSSKiB: rss)
    }
}
