// The worker's seccomp policy: every system call it may make, grouped, in one table.
// docs/SANDBOX.md explains each group; keep the two in step.
import CBulkhead
import Glibc

/// What the filter does with a call.
public enum SyscallAction: Sendable, Equatable {
    case allow
    /// Fail with this errno; the worker keeps running.
    case fail(Int32)
    /// SECCOMP_RET_KILL_PROCESS; the kernel logs it (kernel.seccomp.actions_logged).
    case kill
}

/// One comparison of a system call argument: `(arg & mask) == value` (mask nil: the
/// whole 64-bit argument), or `arg != value` when `notEqual`.
public struct ArgumentTest: Sendable, Equatable {
    public var index: UInt32
    public var mask: UInt64?
    public var value: UInt64
    public var notEqual = false

    public static func equal(_ index: UInt32, _ value: UInt64) -> ArgumentTest {
        ArgumentTest(index: index, mask: nil, value: value)
    }
    public static func notEqual(_ index: UInt32, _ value: UInt64) -> ArgumentTest {
        ArgumentTest(index: index, mask: nil, value: value, notEqual: true)
    }
    /// Compares only the low 32 bits: the kernel truncates int arguments, so a test on
    /// the full register could be bypassed with high bits set.
    public static func low32(_ index: UInt32, _ value: UInt64) -> ArgumentTest {
        ArgumentTest(index: index, mask: 0xffff_ffff, value: value)
    }
    public static func bits(_ index: UInt32, _ mask: UInt64, _ value: UInt64) -> ArgumentTest {
        ArgumentTest(index: index, mask: mask, value: value)
    }
}

public struct SyscallRule: Sendable, Equatable {
    public var name: String
    public var action: SyscallAction
    public var tests: [ArgumentTest]

    public init(_ name: String, _ action: SyscallAction, _ tests: [ArgumentTest] = []) {
        self.name = name
        self.action = action
        self.tests = tests
    }
}

public enum SeccompPolicy {
    /// Calls not in the policy fail with ENOSYS, so libc falls back (clone3 → clone)
    /// instead of the worker dying on a call it never needed.
    public static let defaultAction = SyscallAction.fail(ENOSYS)

    /// Allowed without argument checks, by group.
    public static let allowed: [(group: String, calls: [String])] = [
        ("file descriptors", ["read", "write", "readv", "writev", "pread64", "pwrite64", "lseek", "close",
                              "close_range", "dup", "dup2", "dup3", "fcntl", "pipe2", "sendfile", "copy_file_range"]),
        ("files inside the root", ["openat", "open", "creat", "fstat", "newfstatat", "stat", "lstat", "statx",
                                   "fstatfs", "statfs", "access", "faccessat", "faccessat2", "readlink",
                                   "readlinkat", "getcwd", "chdir", "fchdir", "getdents64", "mkdir", "mkdirat",
                                   "rmdir", "unlink", "unlinkat", "rename", "renameat", "renameat2", "link",
                                   "linkat", "symlink", "symlinkat", "chmod", "fchmod", "fchmodat", "truncate",
                                   "ftruncate", "fallocate", "fsync", "fdatasync", "flock", "utimensat", "umask"]),
        ("memory", ["brk", "mmap", "munmap", "mremap", "mprotect", "madvise", "membarrier"]),
        ("threads and synchronisation", ["futex", "set_robust_list", "get_robust_list", "rseq",
                                         "set_tid_address", "sched_yield", "sched_getaffinity", "gettid"]),
        ("signals", ["rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack", "restart_syscall"]),
        ("time", ["clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday", "time"]),
        ("waiting for I/O", ["poll", "ppoll", "select", "pselect6", "epoll_create1", "epoll_ctl", "epoll_wait",
                             "epoll_pwait", "eventfd2"]),
        ("its own socket", ["sendmsg", "recvmsg", "sendto", "recvfrom", "shutdown", "getsockopt",
                            "getsockname", "getpeername"]),
        ("process information", ["getpid", "getppid", "getuid", "geteuid", "getgid", "getegid", "getresuid",
                                 "getresgid", "getgroups", "getrusage", "times", "sysinfo", "uname", "getrlimit",
                                 "getrandom", "getpgrp", "getsid"]),
        ("exit", ["exit", "exit_group"]),
    ]

    /// Calls that only an attack makes: the process is killed and the kernel logs it.
    public static let killed: [(group: String, calls: [String])] = [
        ("debugging other processes", ["ptrace", "process_vm_readv", "process_vm_writev", "kcmp", "pidfd_getfd"]),
        ("mounts and roots", ["mount", "umount2", "pivot_root", "chroot", "fsopen", "fsmount", "fsconfig",
                              "move_mount", "open_tree", "mount_setattr"]),
        ("namespaces", ["unshare", "setns"]),
        ("kernel attack surface", ["bpf", "perf_event_open", "kexec_load", "kexec_file_load", "init_module",
                                   "finit_module", "delete_module", "keyctl", "add_key", "request_key",
                                   "io_uring_setup", "io_uring_enter", "io_uring_register", "userfaultfd",
                                   "open_by_handle_at", "name_to_handle_at", "iopl", "ioperm", "swapon", "swapoff",
                                   "reboot", "syslog", "acct", "quotactl", "lookup_dcookie", "vhangup"]),
        ("identity changes", ["setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid", "setfsuid",
                              "setfsgid", "setgroups", "capset"]),
        ("system time", ["settimeofday", "clock_settime", "clock_adjtime", "adjtimex"]),
        ("other programs", ["execve", "execveat"]),
    ]

    /// The complete rule list for a worker whose pid is `ownPID`.
    public static func rules(ownPID: Int32) -> [SyscallRule] {
        var rules: [SyscallRule] = []
        for group in allowed { rules += group.calls.map { SyscallRule($0, .allow) } }
        for group in killed { rules += group.calls.map { SyscallRule($0, .kill) } }
        let me = UInt64(UInt32(bitPattern: ownPID))
        let thread = UInt64(BH_CLONE_THREAD)
        rules += [
            // Threads yes, new processes no: a fork bomb fails at its first fork.
            SyscallRule("clone", .allow, [.bits(0, thread, thread)]),
            SyscallRule("clone", .fail(EPERM), [.bits(0, thread, 0)]),
            // Signals to itself only (abort, raise); no other process, even of its tenant.
            SyscallRule("kill", .allow, [.equal(0, me)]),
            SyscallRule("kill", .fail(EPERM), [.notEqual(0, me)]),
            SyscallRule("tgkill", .allow, [.equal(0, me)]),
            SyscallRule("tgkill", .fail(EPERM), [.notEqual(0, me)]),
            // Sockets: AF_UNIX socketpairs only. connect/bind are not allowed at all
            // (abstract Unix sockets are not confined by the chroot).
            SyscallRule("socket", .allow, [.equal(0, UInt64(BH_AF_UNIX))]),
            SyscallRule("socket", .kill, [.notEqual(0, UInt64(BH_AF_UNIX))]),
            SyscallRule("socketpair", .allow, [.equal(0, UInt64(BH_AF_UNIX))]),
            SyscallRule("socketpair", .kill, [.notEqual(0, UInt64(BH_AF_UNIX))]),
            // Terminal injection kills; the few harmless ioctls stdio uses are allowed.
            SyscallRule("ioctl", .kill, [.low32(1, UInt64(BH_TIOCSTI))]),
            SyscallRule("ioctl", .allow, [.low32(1, UInt64(BH_TCGETS))]),
            SyscallRule("ioctl", .allow, [.low32(1, UInt64(BH_FIONREAD))]),
            SyscallRule("ioctl", .allow, [.low32(1, UInt64(BH_FIONBIO))]),
            SyscallRule("ioctl", .allow, [.low32(1, UInt64(BH_FIOCLEX))]),
            // Reading limits is fine; raising them is not (new limit pointer must be NULL).
            SyscallRule("prlimit64", .allow, [.equal(2, 0)]),
            // Thread names only.
            SyscallRule("prctl", .allow, [.equal(0, UInt64(BH_PR_SET_NAME))]),
            SyscallRule("prctl", .allow, [.equal(0, UInt64(BH_PR_GET_NAME))]),
            // PER_LINUX and the query are allowed here; the architecture guard kills every
            // other personality (see bh_seccomp_load_guard).
            SyscallRule("personality", .allow, [.low32(0, UInt64(BH_PER_LINUX))]),
            SyscallRule("personality", .allow, [.low32(0, 0xffff_ffff)]),
        ]
        return rules
    }

    /// Calls a policy file may not touch: the killed ones and those with argument tests
    /// (an unconditional rule would replace the tests).
    public static var protectedNames: Set<String> {
        Set(killed.flatMap(\.calls)).union(rules(ownPID: 1).filter { !$0.tests.isEmpty }.map(\.name))
    }

    /// Reads an operator's policy extension: lines `allow NAME` or `deny NAME` (EPERM),
    /// `#` comments. It can widen the allowlist, never unkill a dangerous call.
    public static func load(file path: String) throws(JailError) -> [SyscallRule] {
        guard let f = fopen(path, "r") else {
            throw JailError(.seccomp, "policy file \(path): \(String(cString: strerror(errno)))")
        }
        defer { fclose(f) }
        var rules: [SyscallRule] = []
        var lineNo = 0
        var buffer = [CChar](repeating: 0, count: 512)
        while fgets(&buffer, Int32(buffer.count), f) != nil {
            lineNo += 1
            let text = buffer.withUnsafeBufferPointer { b in
                String(decoding: b.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            }
            let line = text.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)[0]
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" })
            if words.isEmpty { continue }
            guard words.count == 2, words[0] == "allow" || words[0] == "deny" else {
                throw JailError(.seccomp, "\(path):\(lineNo): expected \"allow NAME\" or \"deny NAME\"")
            }
            let name = String(words[1])
            if protectedNames.contains(name) {
                throw JailError(.seccomp, "\(path):\(lineNo): \(name) is fixed by the default policy and cannot be changed")
            }
            rules.append(SyscallRule(name, words[0] == "allow" ? .allow : .fail(EPERM)))
        }
        return rules
    }
}
