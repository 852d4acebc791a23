// The spawner ("zygote") mode of a worker executable: a single-threaded, already started
// process that forks new workers on the supervisor's request, so a cold start pays for a
// fork instead of an exec and a runtime start-up.
//
// Each worker is forked twice (zygote → M → W) and M exits at once: W is orphaned and the
// kernel hands it to the supervisor, which is a child subreaper. W is then the
// supervisor's child like an exec'd worker — it reaps it by pidfd and gets its rusage.
import CBulkhead
import Glibc

enum Zygote {
    /// Serves spawn requests on fd 3 until the supervisor closes it. Returns only in a new
    /// worker, with that worker's command line; exits in the zygote and in M.
    static func serve(supervisor: Int32) -> [String] {
        // Nothing of the supervisor's but the channel and stdio stays open; no environment.
        _ = bh_close_range_from(4)
        _ = bh_clearenv()
        _ = bh_set_pdeathsig(SIGKILL)
        if getppid() != supervisor { exit(0) }
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            var fds: [Int32] = [-1, -1]
            var count: Int32 = 0
            let n = buffer.withUnsafeMutableBytes { bh_recv_with_fds(3, $0.baseAddress, $0.count, &fds, 2, &count) }
            if n <= 0 { exit(n == 0 ? 0 : 1) }  // the supervisor is gone
            guard count == 2 else {
                for i in 0..<Int(count) { close(fds[i]) }
                reply("error=expected two descriptors")
                continue
            }
            let argv = buffer[..<Int(n)].split(separator: 0, omittingEmptySubsequences: false).map {
                String(decoding: $0, as: UTF8.self)
            }
            let middle = fork()
            if middle == 0 {
                let worker = fork()
                if worker == 0 { return becomeWorker(socket: fds[0], stderr: fds[1], supervisor: supervisor, argv: argv) }
                reply(worker > 0 ? "pid=\(worker)" : "error=fork: \(String(cString: strerror(errno)))")
                _exit(0)
            }
            close(fds[0])
            close(fds[1])
            if middle < 0 {
                reply("error=fork: \(String(cString: strerror(errno)))")
                continue
            }
            var status: Int32 = 0
            while waitpid(middle, &status, 0) < 0 && errno == EINTR {}
        }
    }

    private static func reply(_ text: String) {
        let bytes = Array(text.utf8)
        _ = bytes.withUnsafeBytes { bh_send_with_fds(3, $0.baseAddress, $0.count, nil, 0) }
    }

    /// In W: take the worker's socket as fd 3 and its stderr pipe as fd 2, then wait until
    /// the kernel has made the supervisor our parent (M exits right after forking us).
    private static func becomeWorker(socket: Int32, stderr: Int32, supervisor: Int32, argv: [String]) -> [String] {
        // Lift the received descriptors out of the way first, so that no dup2 maps one
        // onto itself (and a close then takes it away) or over the other.
        let s = bh_dup_above(socket, 10), e = bh_dup_above(stderr, 10)
        guard s >= 0, e >= 0 else { _exit(4) }
        close(socket)
        close(stderr)
        guard bh_dup2(s, 3) >= 0, bh_dup2(e, 2) >= 0 else { _exit(4) }
        close(s)
        close(e)
        let deadline = bh_monotonic_ns() + 1_000_000_000
        while getppid() != supervisor {
            if bh_monotonic_ns() > deadline { _exit(4) }
            sched_yield()
        }
        return argv
    }
}
