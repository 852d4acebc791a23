// ControlJobs: the control commands that can take minutes (a backup of a large volume, a
// restore) run on a thread of their own, one at a time, so the control loop keeps
// answering `status`, `tenant suspend` and the rest — and the watchdog keeps being fed.
import Glibc
import Synchronization

final class ControlJobs: Sendable {
    /// The commands that run as jobs.
    let commands: Set<String>
    /// The job running, if any: its command and since when (CLOCK_MONOTONIC seconds).
    private let running = Mutex<(command: String, since: Int)?>(nil)

    init(commands: Set<String>) { self.commands = commands }

    /// Starts `work` on a new thread. Returns why it cannot start (a job is already
    /// running), or nil once it has started.
    func start(_ command: String, _ work: @escaping @Sendable () -> Void) -> String? {
        let now = Self.seconds()
        let busy = running.withLock { (r: inout (command: String, since: Int)?) -> String? in
            if let r { return "\(r.command) is already running (for \(now - r.since) s): one backup or restore at a time; try again once it has finished" }
            r = (command, now)
            return nil
        }
        if let busy { return busy }
        let box = Unmanaged.passRetained(JobBox { [self] in
            work()
            running.withLock { $0 = nil }
        })
        var thread = pthread_t()
        let r = pthread_create(&thread, nil, { raw in
            Unmanaged<JobBox>.fromOpaque(raw!).takeRetainedValue().work()
            return nil
        }, box.toOpaque())
        guard r == 0 else {
            box.release()
            running.withLock { $0 = nil }
            return "cannot start a thread for \(command): \(String(cString: strerror(r)))"
        }
        pthread_detach(thread)
        return nil
    }

    private static func seconds() -> Int {
        var t = timespec()
        clock_gettime(CLOCK_MONOTONIC, &t)
        return t.tv_sec
    }
}

private final class JobBox: Sendable {
    let work: @Sendable () -> Void
    init(_ work: @escaping @Sendable () -> Void) { self.work = work }
}
