// Jail step: resource limits (setrlimit) applied while still root, before the drop.
import CBulkhead
import Glibc

enum Limits {
    static func apply(_ limits: ResourceLimits) throws(JailError) {
        // The soft CPU limit sends SIGXCPU; the hard one, a second later, SIGKILL.
        let table: [(String, Int32, UInt64, UInt64)] = [
            ("RLIMIT_AS", Int32(BH_RLIMIT_AS.rawValue), limits.memoryBytes, limits.memoryBytes),
            ("RLIMIT_CPU", Int32(BH_RLIMIT_CPU.rawValue), limits.cpuSeconds, limits.cpuSeconds &+ 1),
            ("RLIMIT_NPROC", Int32(BH_RLIMIT_NPROC.rawValue), limits.processes, limits.processes),
            ("RLIMIT_NOFILE", Int32(BH_RLIMIT_NOFILE.rawValue), limits.openFiles, limits.openFiles),
            ("RLIMIT_FSIZE", Int32(BH_RLIMIT_FSIZE.rawValue), limits.fileSizeBytes, limits.fileSizeBytes),
            ("RLIMIT_CORE", Int32(BH_RLIMIT_CORE.rawValue), 0, 0),  // no core file of tenant memory
        ]
        for (name, resource, soft, hard) in table {
            let r = bh_setrlimit(resource, soft, hard)
            if r < 0 { throw JailError(.resourceLimits, "\(name): \(String(cString: strerror(-r)))") }
        }
    }
}
