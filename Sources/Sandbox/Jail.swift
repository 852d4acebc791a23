// The jail: the ordered list of confinement steps a worker runs between pre-jail and serve.
import Glibc

public enum Jail {
    /// Pre-jail work for the jail itself: compiles the seccomp policy (with the operator's
    /// policy file, if any) while files and libseccomp's tables are still reachable.
    /// Returns the program that `enter` loads last.
    public static func prepare(_ spec: JailSpec) throws(JailError) -> SeccompProgram {
        try SeccompProgram.compile(ownPID: getpid(), extra: spec.seccompPolicyFile.map(SeccompPolicy.load) ?? [])
    }

    /// The same, once, for a spawner whose workers' pids are not known yet.
    public static func prepareTemplate(policyFile: String?) throws(JailError) -> SeccompProgram {
        try SeccompProgram.template(extra: policyFile.map(SeccompPolicy.load) ?? [])
    }

    /// Runs every step in order; the first failure throws and the caller must exit.
    public static func enter(_ spec: JailSpec, filter: SeccompProgram) throws(JailError) {
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
