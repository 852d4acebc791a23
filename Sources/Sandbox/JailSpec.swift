// What a worker's jail is made of: the tenant's identity, its root, its limits, and the
// typed error naming the step that failed.

/// Resource limits applied with setrlimit before the privilege drop.
public struct ResourceLimits: Sendable, Equatable {
    /// RLIMIT_AS, bytes of address space.
    public var memoryBytes: UInt64
    /// RLIMIT_CPU, CPU seconds over the worker's whole life (SIGXCPU, then SIGKILL).
    public var cpuSeconds: UInt64
    /// RLIMIT_NPROC, processes and threads of the tenant's uid.
    public var processes: UInt64
    /// RLIMIT_NOFILE.
    public var openFiles: UInt64
    /// RLIMIT_FSIZE, bytes of any one file written.
    public var fileSizeBytes: UInt64

    public init(memoryBytes: UInt64, cpuSeconds: UInt64, processes: UInt64, openFiles: UInt64, fileSizeBytes: UInt64) {
        self.memoryBytes = memoryBytes
        self.cpuSeconds = cpuSeconds
        self.processes = processes
        self.openFiles = openFiles
        self.fileSizeBytes = fileSizeBytes
    }
}

/// Everything the jail needs to know about one worker.
public struct JailSpec: Sendable, Equatable {
    public var tenantID: String
    public var uid: UInt32
    public var gid: UInt32
    /// The tenant's volume: the worker's new root.
    public var root: String
    /// The supervisor's pid: if the worker's parent is no longer that process once the
    /// death signal is armed, the supervisor already died and the worker exits.
    public var parentPID: Int32
    public var limits: ResourceLimits
    /// Extra policy lines (see docs/SANDBOX.md), or nil for the default allowlist.
    public var seccompPolicyFile: String?
    /// The highest descriptor the worker keeps (0-2 stdio, 3 its socket).
    public var lastKeptDescriptor: Int32 = 3

    public init(tenantID: String, uid: UInt32, gid: UInt32, root: String, parentPID: Int32,
                limits: ResourceLimits, seccompPolicyFile: String? = nil) {
        self.tenantID = tenantID
        self.uid = uid
        self.gid = gid
        self.root = root
        self.parentPID = parentPID
        self.limits = limits
        self.seccompPolicyFile = seccompPolicyFile
    }
}

/// The steps of the jail, in the order they run (SPEC §7).
public enum JailStep: String, Sendable, CaseIterable {
    case closeDescriptors = "close_descriptors"
    case newSession = "new_session"
    case clearEnvironment = "clear_environment"
    case resourceLimits = "resource_limits"
    case changeRoot = "chroot"
    case dropGroups = "setgroups"
    case setGID = "setresgid"
    case setUID = "setresuid"
    case verifyIdentity = "verify_identity"
    case parentDeathSignal = "parent_death_signal"
    case noNewPrivileges = "no_new_privs"
    case seccomp = "seccomp"
}

/// A jail step that could not be completed. The worker prints it as its one-line reason
/// and exits; it never serves unsandboxed.
public struct JailError: Error, Sendable, CustomStringConvertible {
    public let step: JailStep
    public let detail: String

    public init(_ step: JailStep, _ detail: String) {
        self.step = step
        self.detail = detail
    }

    public var description: String { "sandbox step \(step.rawValue) failed: \(detail)" }
}
