// Zygote: the supervisor's side of the worker spawner — a pre-started, single-threaded
// worker process that forks new workers on request (see WorkerKit/Zygote.swift), so a
// cold start costs a fork, not an exec. If it fails, the supervisor falls back to
// posix_spawn.
import CBulkhead
import EventLoop
import Glibc
import Posix

final class Zygote {
    let pid: Int32
    private let child: ChildProcess
    private let channel: FileDescriptor
    private var exitToken: LoopToken?

    /// Starts `executable --zygote --parent PID`; calls `onExit` when it dies.
    init(executable: String, seccompPolicyFile: String?, devNull: borrowing FileDescriptor, loop: EventLoop,
         onExit: @escaping () -> Void) throws(Errno) {
        // Orphaned workers (their short-lived spawning parent exits at once) become ours.
        _ = try checked("prctl(PR_SET_CHILD_SUBREAPER)") { bh_set_child_subreaper() }
        var fds: [Int32] = [-1, -1]
        _ = try checked("socketpair(SOCK_SEQPACKET)") { bh_socketpair_seqpacket(&fds) }
        let ours = FileDescriptor(adopting: fds[0])
        let theirs = FileDescriptor(adopting: fds[1])
        let stderrCopy = FileDescriptor(adopting: try checked("dup(2)") { libc(dup(2)) })
        var args = [executable, "--zygote", "--parent", String(getpid())]
        if let policy = seccompPolicyFile { args += ["--seccomp", policy] }
        child = try ChildProcess.spawn(path: executable, arguments: args,
                                       stdin: devNull, stdout: devNull, stderr: stderrCopy, fd3: theirs)
        pid = child.pid
        channel = ours
        let pidfd = child.pidfd.rawValue
        exitToken = try loop.watchExit(pidfd: pidfd) { [weak self, unowned loop] in
            guard let self else { return }
            if let token = self.exitToken { loop.deregister(token, fd: pidfd) }
            self.exitToken = nil
            _ = try? self.child.reap()
            onExit()
        }
    }

    /// Asks for a worker with `arguments`, handing over its socket and stderr pipe.
    /// Blocks the loop for the fork only (well under a millisecond); gives up after 1 s.
    func spawn(arguments: [String], socket: borrowing FileDescriptor, stderr: borrowing FileDescriptor) throws(Errno) -> ChildProcess {
        var message: [UInt8] = []
        for (i, a) in arguments.enumerated() {
            if i > 0 { message.append(0) }
            message += a.utf8
        }
        let fds = [socket.rawValue, stderr.rawValue]
        _ = try checked("sendmsg(zygote)") {
            message.withUnsafeBytes { bh_send_with_fds(channel.rawValue, $0.baseAddress, $0.count, fds, 2) }
        }
        var p = pollfd(fd: channel.rawValue, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, 1000) == 1 else { throw Errno(ETIMEDOUT, call: "zygote reply") }
        var reply = [UInt8](repeating: 0, count: 256)
        var none: [Int32] = [-1]
        var count: Int32 = 0
        let n = try checked("recvmsg(zygote)") {
            reply.withUnsafeMutableBytes { bh_recv_with_fds(channel.rawValue, $0.baseAddress, $0.count, &none, 1, &count) }
        }
        if count > 0 { close(none[0]) }
        let text = String(decoding: reply[..<Int(n)], as: UTF8.self)
        guard text.hasPrefix("pid="), let pid = Int32(text.dropFirst(4)) else { throw Errno(EPROTO, call: "zygote: \(text)") }
        return try ChildProcess.adopt(pid: pid)
    }

    /// Closing the channel makes it exit; the kill is for a zygote that does not.
    func stop() {
        child.signal(SIGKILL)
    }
}
