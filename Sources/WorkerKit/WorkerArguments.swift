// The command line the supervisor starts a worker with, parsed strictly.
import Sandbox

struct WorkerArguments {
    var spec: JailSpec
    var maxFrame: Int

    /// Parses `--name value` pairs; every option is required but --seccomp.
    static func parse(_ argv: [String]) throws(UsageError) -> WorkerArguments {
        var values: [String: String] = [:]
        var i = 1
        while i < argv.count {
            let key = argv[i]
            guard key.hasPrefix("--"), i + 1 < argv.count else { throw UsageError("unexpected argument \(key)") }
            let name = String(key.dropFirst(2))
            guard known.contains(name) else { throw UsageError("unknown option \(key)") }
            guard values[name] == nil else { throw UsageError("option \(key) given twice") }
            values[name] = argv[i + 1]
            i += 2
        }
        func string(_ name: String) throws(UsageError) -> String {
            guard let v = values[name], !v.isEmpty else { throw UsageError("missing --\(name)") }
            return v
        }
        func number<T: FixedWidthInteger>(_ name: String, _: T.Type) throws(UsageError) -> T {
            let s = try string(name)
            guard let v = T(s) else { throw UsageError("--\(name) \(s) is not a number") }
            return v
        }
        let limits = ResourceLimits(
            memoryBytes: try number("memory", UInt64.self), cpuSeconds: try number("cpu", UInt64.self),
            processes: try number("nproc", UInt64.self), openFiles: try number("nofile", UInt64.self),
            fileSizeBytes: try number("fsize", UInt64.self))
        let spec = JailSpec(
            tenantID: try string("tenant"), uid: try number("uid", UInt32.self), gid: try number("gid", UInt32.self),
            root: try string("root"), parentPID: try number("parent", Int32.self), limits: limits,
            seccompPolicyFile: values["seccomp"])
        return WorkerArguments(spec: spec, maxFrame: try number("max-frame", Int.self))
    }

    static let known: Set<String> = ["tenant", "uid", "gid", "root", "parent", "memory", "cpu", "nproc", "nofile",
                                     "fsize", "seccomp", "max-frame"]
}

struct UsageError: Error {
    let message: String
    init(_ message: String) { self.message = message }
}
