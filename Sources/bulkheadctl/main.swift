// bulkheadctl: the admin CLI. Its commands talk to the control socket.
import Glibc

let usage = """
    usage: bulkheadctl [--socket PATH] [--json] COMMAND ...

    The control socket and its commands (status, tenant, key, admin-key, limits, usage,
    workers, audit, reload, drain) are not in this build yet.
    """

let args = Array(CommandLine.arguments.dropFirst())
if args.isEmpty || args.contains("--help") || args.contains("-h") {
    print(usage)
    exit(args.isEmpty ? 2 : 0)
}
writeStderr("bulkheadctl: unknown command \(args[0]) (the control socket is not in this build yet)\n")
exit(2)

/// One write(2) to stderr (the C `stderr` global is not concurrency-safe in Swift 6).
func writeStderr(_ text: String) {
    let bytes = Array(text.utf8)
    _ = bytes.withUnsafeBytes { write(2, $0.baseAddress, $0.count) }
}
