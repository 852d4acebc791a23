// The seccomp policy compiled to a BPF program (by libseccomp), loaded as the last jail step.
//
// Compiling costs more than the rest of the jail together, so a spawner compiles once with
// a placeholder where the worker's own pid goes (the kill/tgkill rules) and each new
// worker patches in its pid: `SeccompProgram.template` then `bound(to:)`.
import CBulkhead
import CSeccomp
import Glibc
import Posix

public struct SeccompProgram: Sendable {
    /// struct sock_filter[], 8 bytes each, host byte order.
    private var instructions: [UInt8]
    private let placeholder: UInt32?

    /// A pid no process has (pid_max is at most 2^22): marks where the pid goes.
    static let pidPlaceholder: UInt32 = 0x7fff_fff0

    /// Compiles the default policy plus `extra` for the process `pid`.
    public static func compile(ownPID: Int32, extra: [SyscallRule] = []) throws(JailError) -> SeccompProgram {
        SeccompProgram(instructions: try export(SeccompPolicy.rules(ownPID: ownPID) + extra), placeholder: nil)
    }

    /// Compiles once for workers whose pid is not known yet.
    public static func template(extra: [SyscallRule] = []) throws(JailError) -> SeccompProgram {
        let rules = SeccompPolicy.rules(ownPID: Int32(bitPattern: pidPlaceholder)) + extra
        return SeccompProgram(instructions: try export(rules), placeholder: pidPlaceholder)
    }

    /// This template with `pid` in every comparison against the placeholder.
    public func bound(to pid: Int32) throws(JailError) -> SeccompProgram {
        guard let placeholder else { return self }
        var copy = instructions
        var patched = 0
        let jeq: UInt16 = 0x15  // BPF_JMP | BPF_JEQ | BPF_K
        for offset in stride(from: 0, to: copy.count, by: 8) {
            let code = UInt16(copy[offset]) | UInt16(copy[offset + 1]) << 8
            let k = copy[offset + 4..<offset + 8].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            guard code == jeq, k == placeholder else { continue }
            let v = UInt32(bitPattern: pid)
            for i in 0..<4 { copy[offset + 4 + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) }
            patched += 1
        }
        guard patched > 0 else { throw JailError(.seccomp, "the filter template has no pid to bind") }
        return SeccompProgram(instructions: copy, placeholder: nil)
    }

    /// Installs the architecture guard and then this program. no_new_privs must be set.
    public func load() throws(JailError) {
        precondition(placeholder == nil, "a template must be bound to a pid before it is loaded")
        let g = bh_seccomp_load_guard(1)
        if g < 0 { throw JailError(.seccomp, "architecture guard: \(String(cString: strerror(-g)))") }
        let r = instructions.withUnsafeBytes { bh_seccomp_load_program($0.baseAddress, $0.count / 8, 1) }
        if r < 0 { throw JailError(.seccomp, "seccomp(SET_MODE_FILTER): \(String(cString: strerror(-r)))") }
    }

    public var instructionCount: Int { instructions.count / 8 }

    /// Builds the filter with libseccomp and exports its BPF through a memfd.
    private static func export(_ rules: [SyscallRule]) throws(JailError) -> [UInt8] {
        guard let ctx = seccomp_init(action(SeccompPolicy.defaultAction)) else {
            throw JailError(.seccomp, "seccomp_init failed")
        }
        defer { seccomp_release(ctx) }
        // A foreign architecture kills the process, not just the thread.
        try check(seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS), "set bad-arch action")
        for rule in rules {
            // Names unknown on this architecture (e.g. `open` on aarch64) have nothing to filter.
            let nr = seccomp_syscall_resolve_name(rule.name)
            if nr == __NR_SCMP_ERROR { continue }
            var tests = rule.tests.map { t -> scmp_arg_cmp in
                if let mask = t.mask {
                    return scmp_arg_cmp(arg: t.index, op: SCMP_CMP_MASKED_EQ, datum_a: mask, datum_b: t.value)
                }
                return scmp_arg_cmp(arg: t.index, op: t.notEqual ? SCMP_CMP_NE : SCMP_CMP_EQ, datum_a: t.value, datum_b: 0)
            }
            try check(seccomp_rule_add_array(ctx, action(rule.action), nr, UInt32(tests.count), &tests), "rule for \(rule.name)")
        }
        let fd = bh_memfd("seccomp")
        guard fd >= 0 else { throw JailError(.seccomp, "memfd_create: \(String(cString: strerror(-fd)))") }
        let memfd = FileDescriptor(adopting: fd)
        try check(seccomp_export_bpf(ctx, memfd.rawValue), "seccomp_export_bpf")
        let size = lseek(memfd.rawValue, 0, SEEK_END)
        guard size > 0, size % 8 == 0, lseek(memfd.rawValue, 0, SEEK_SET) == 0 else {
            throw JailError(.seccomp, "exported filter has size \(size)")
        }
        var bytes = [UInt8](repeating: 0, count: Int(size))
        let n = bytes.withUnsafeMutableBytes { pread(memfd.rawValue, $0.baseAddress, $0.count, 0) }
        guard n == size else { throw JailError(.seccomp, "reading the exported filter failed") }
        return bytes
    }

    private static func action(_ a: SyscallAction) -> UInt32 {
        switch a {
        case .allow: return SCMP_ACT_ALLOW
        case .fail(let e): return bh_scmp_act_errno(e)
        case .kill: return SCMP_ACT_KILL_PROCESS
        }
    }

    private static func check(_ r: Int32, _ what: String) throws(JailError) {
        if r < 0 { throw JailError(.seccomp, "\(what): \(String(cString: strerror(-r)))") }
    }
}
