// A compiled seccomp filter (libseccomp), built in pre-jail and loaded as the last jail step.
import CBulkhead
import CSeccomp
import Glibc

public struct SeccompFilter: ~Copyable {
    private let context: scmp_filter_ctx

    /// Compiles `rules` over the default action. Names unknown on this architecture
    /// (e.g. `open` on aarch64) are skipped: there is no such call to allow or kill.
    public init(rules: [SyscallRule]) throws(JailError) {
        guard let ctx = seccomp_init(Self.action(SeccompPolicy.defaultAction)) else {
            throw JailError(.seccomp, "seccomp_init failed")
        }
        do throws(JailError) {
            try Self.add(rules, to: ctx)
        } catch {
            seccomp_release(ctx)
            throw error
        }
        context = ctx
    }

    private static func add(_ rules: [SyscallRule], to ctx: scmp_filter_ctx) throws(JailError) {
        // A foreign architecture kills the process, not just the thread.
        try Self.check(seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS), "set bad-arch action")
        // Workers built on WorkerKit may have threads: the filter must cover them all.
        try Self.check(seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1), "set TSYNC")
        for rule in rules {
            let nr = seccomp_syscall_resolve_name(rule.name)
            if nr == __NR_SCMP_ERROR { continue }
            var tests = rule.tests.map { t -> scmp_arg_cmp in
                if let mask = t.mask {
                    return scmp_arg_cmp(arg: t.index, op: SCMP_CMP_MASKED_EQ, datum_a: mask, datum_b: t.value)
                }
                return scmp_arg_cmp(arg: t.index, op: t.notEqual ? SCMP_CMP_NE : SCMP_CMP_EQ, datum_a: t.value, datum_b: 0)
            }
            let r = seccomp_rule_add_array(ctx, Self.action(rule.action), nr, UInt32(tests.count), &tests)
            try Self.check(r, "rule for \(rule.name)")
        }
    }

    deinit { seccomp_release(context) }

    /// Installs the architecture guard and then this filter. no_new_privs must be set.
    public consuming func load() throws(JailError) {
        let g = bh_seccomp_load_guard(1)
        if g < 0 { throw JailError(.seccomp, "architecture guard: \(String(cString: strerror(-g)))") }
        let r = seccomp_load(context)
        if r < 0 { throw JailError(.seccomp, "seccomp_load: \(String(cString: strerror(-r)))") }
    }

    /// The filter as libseccomp's pseudo-code, for docs and tests.
    public func pseudoCode(to fd: Int32) { _ = seccomp_export_pfc(context, fd) }

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
