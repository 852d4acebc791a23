// The jail: the ordered list of confinement steps a worker runs between pre-jail and serve.
import Glibc

public enum Jail {
    /// Pre-jail work for the jail itself: compiles the seccomp policy while files and
    /// libseccomp's tables are still reachable. Returns the filter, loaded last by `enter`.
    public static func prepare(_ spec: JailSpec) throws(JailError) -> SeccompFilter {
        var extra: [SyscallRule] = []
        if let path = spec.seccompPolicyFile {
            extra = try SeccompPolicy.load(file: path)
        }
        return try SeccompFilter(rules: SeccompPolicy.rules(ownPID: getpid()) + extra)
    }

    /// Runs every step in order; the first failure throws and the caller must exit.
    public static func enter(_ spec: JailSpec, filter: consuming SeccompFilter) throws(JailError) {
        try Descriptors.closeInherited(keepingThrough: spec.lastKeptDescriptor)
        try Descriptors.newSession()
        try Descriptors.clearEnvironment()
        try Limits.apply(spec.limits)
        try Root.change(to: spec.root)
        try Identity.drop(uid: spec.uid, gid: spec.gid)
        try Identity.armParentDeathSignal(expectedParent: spec.parentPID)
        try Identity.forbidNewPrivileges()
        try filter.load()
    }
}
