// Tenant creations per second through the control socket of a running bulkheadd: each is a
// SQLite transaction (synchronous=FULL), a volume provisioned and an API key signed.
// Run: Benchmarks/tenant-create.sh (it starts a throw-away daemon).
import Control
import Glibc
import JSON

let args = CommandLine.arguments
guard args.count >= 2 else {
    print("usage: bulkhead-bench-control SOCKET [N]")
    exit(2)
}
let n = args.count > 2 ? Int(args[2]) ?? 200 : 200
var t0 = timespec(), t1 = timespec()
clock_gettime(CLOCK_MONOTONIC, &t0)
for i in 0..<n {
    do {
        _ = try ControlClient.call(socket: args[1], command: "tenant.create",
                                   arguments: JSONObject([("ID", .string("bench-create-\(i)"))]))
    } catch {
        print("tenant \(i): \(error)")
        exit(1)
    }
}
clock_gettime(CLOCK_MONOTONIC, &t1)
let seconds = Double(t1.tv_sec - t0.tv_sec) + Double(t1.tv_nsec - t0.tv_nsec) / 1e9
print("tenant create: \(n) in \((seconds * 100).rounded() / 100) s = \(Int(Double(n) / seconds))/s (one client, sequential)")
