// Tasks that each try one forbidden thing from inside the jail and report what happened
// as {"result": N, "errno": E} (N the call's return value), unless the kernel kills them.
import CBulkhead
import Glibc
import WorkerKit

enum HostileWorker {
    static func main() -> Never {
        var worker = Worker(agent: "hostile-worker")
        worker.register("echo") { request throws(TaskError) in request.body }
        worker.register("pid") { _ throws(TaskError) in Array(String(getpid()).utf8) }
        // Filesystem: another tenant's volume by its host path, the host's shadow file.
        worker.register("open") { request throws(TaskError) in
            let path = String(decoding: request.body, as: UTF8.self)
            return report(Int(libcResult(open(path, O_RDONLY))))
        }
        worker.register("write_file") { request throws(TaskError) in
            // body: "<path> <bytes>"
            let parts = String(decoding: request.body, as: UTF8.self).split(separator: " ")
            guard parts.count == 2, let size = Int(parts[1]) else { throw .badRequest("path size") }
            let fd = open(String(parts[0]), O_WRONLY | O_CREAT | O_TRUNC, 0o600)
            guard fd >= 0 else { return report(-Int(errno)) }
            let chunk = [UInt8](repeating: 0x41, count: 1 << 20)
            var written = 0
            while written < size {
                let n = write(fd, chunk, min(chunk.count, size - written))
                if n < 0 { close(fd); return report(-Int(errno)) }
                written += n
            }
            close(fd)
            return report(written)
        }
        worker.register("read_file") { request throws(TaskError) in
            let fd = open(String(decoding: request.body, as: UTF8.self), O_RDONLY)
            guard fd >= 0 else { throw .notFound("errno \(errno)") }
            defer { close(fd) }
            var buf = [UInt8](repeating: 0, count: 4096)
            let n = read(fd, &buf, buf.count)
            return Array(buf[..<max(0, n)])
        }
        // Against backups: a write lock held on its own Dict (the descriptor stays open, so
        // the lock lasts as long as this worker), and sparse files far larger than the
        // blocks they use.
        worker.register("lock_dict") { _ throws(TaskError) in
            let fd = open("/.bulkhead/dict.db", O_RDWR | O_CLOEXEC)
            guard fd >= 0 else { return report(-Int(errno)) }
            var lock = flock()
            lock.l_type = Int16(F_WRLCK)
            lock.l_whence = Int16(SEEK_SET)
            return report(fcntl(fd, F_SETLK, &lock) < 0 ? -Int(errno) : Int(fd))
        }
        worker.register("sparse") { request throws(TaskError) in
            // body: how many files of 1 GiB, each with no block written.
            for i in 0..<max(0, min(number(request.body), 64)) {
                let fd = open("/sparse\(i).bin", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
                guard fd >= 0 else { return report(-Int(errno)) }
                defer { close(fd) }
                guard ftruncate(fd, off_t(1 << 30)) == 0 else { return report(-Int(errno)) }
            }
            return report(number(request.body))
        }
        // Network and processes.
        worker.register("socket_inet") { _ throws(TaskError) in report(raw(SYS_socket, 2 /* AF_INET */, 1, 0)) }
        worker.register("socket_unix") { _ throws(TaskError) in report(raw(SYS_socket, 1, 1, 0)) }
        worker.register("ptrace") { request throws(TaskError) in
            report(raw(SYS_ptrace, 16 /* PTRACE_ATTACH */, number(request.body), 0, 0))
        }
        worker.register("kill") { request throws(TaskError) in report(raw(SYS_kill, number(request.body), 0)) }
        worker.register("fork_bomb") { _ throws(TaskError) in
            var forked = 0
            var lastError: Int32 = 0
            for _ in 0..<10_000 {
                let pid = fork()
                if pid == 0 { while true { pause() } }
                if pid < 0 { lastError = errno; break }
                forked += 1
            }
            return Array("{\"forked\":\(forked),\"errno\":\(lastError)}".utf8)
        }
        worker.register("clone3") { _ throws(TaskError) in report(raw(435 /* clone3 */, 0, 0)) }
        worker.register("execve") { _ throws(TaskError) in report(raw(SYS_execve, 0, 0, 0)) }
        // Privileges and mounts.
        worker.register("setuid0") { _ throws(TaskError) in report(raw(SYS_setuid, 0)) }
        worker.register("mount") { _ throws(TaskError) in report(raw(SYS_mount, 0, 0, 0, 0, 0)) }
        worker.register("chroot") { _ throws(TaskError) in report(raw(SYS_chroot, 0)) }
        worker.register("unshare") { _ throws(TaskError) in report(raw(SYS_unshare, 0x10000000 /* CLONE_NEWUSER */)) }
        worker.register("personality") { _ throws(TaskError) in report(raw(SYS_personality, 0x0040000 /* ADDR_NO_RANDOMIZE */)) }
        worker.register("personality_query") { _ throws(TaskError) in report(raw(SYS_personality, 0xffff_ffff)) }
        worker.register("x32_getpid") { _ throws(TaskError) in report(raw(0x4000_0000 | Int(SYS_getpid))) }
        worker.register("tiocsti") { _ throws(TaskError) in report(raw(SYS_ioctl, 0, Int(BH_TIOCSTI), 0)) }
        worker.register("tiocsti_high_bits") { _ throws(TaskError) in
            report(raw(SYS_ioctl, 0, (1 << 32) | Int(BH_TIOCSTI), 0))
        }
        worker.register("unlisted_syscall") { _ throws(TaskError) in report(raw(SYS_fchown, 0, 0, 0)) }
        worker.register("raise_limit") { _ throws(TaskError) in
            var rl = rlimit(rlim_cur: 1 << 40, rlim_max: 1 << 40)
            return report(Int(libcResult(setrlimit(__rlimit_resource_t(BH_RLIMIT_AS.rawValue), &rl))))
        }
        // Resources.
        worker.register("allocate") { request throws(TaskError) in
            // Allocates and touches MiB until malloc fails; reports how many it got.
            let limit = number(request.body)
            var got = 0
            while got < limit, let p = malloc(1 << 20) {
                memset(p, 1, 1 << 20)
                got += 1
            }
            return Array("{\"mib\":\(got)}".utf8)
        }
        worker.register("crash") { _ throws(TaskError) in
            abort()
        }
        worker.register("exit") { _ throws(TaskError) in exit(7) }
        worker.register("stderr_flood") { request throws(TaskError) in
            // A noisy tenant: N lines on stderr at once.
            for i in 0..<max(0, min(number(request.body), 100_000)) {
                let line = "noise \(i)\n"
                _ = line.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
            }
            return Array("\"flooded\"".utf8)
        }
        worker.register("sleep_ms") { request throws(TaskError) in
            // Work that takes a while and then finishes (for drain tests).
            _ = poll(nil, 0, Int32(max(0, min(number(request.body), 10_000))))  // the task's own work time
            return Array("\"slept\"".utf8)
        }
        worker.register("burn_ms") { request throws(TaskError) in
            // CPU work: spin until this process has run for that long.
            func cpu() -> Int {
                var ts = timespec()
                clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts)
                return ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
            }
            let until = cpu() + max(0, min(number(request.body), 10_000))
            var x: UInt64 = 1
            while cpu() < until { for _ in 0..<10_000 { x = x &* 6364136223846793005 &+ 1 } }
            return Array("\(x % 2)".utf8)
        }
        worker.register("burn_thread_ms") { request throws(TaskError) in
            // CPU work on a second thread while this one waits for it: the process's CPU time
            // is more than its main thread's.
            let box = UnsafeMutablePointer<Int>.allocate(capacity: 1)
            defer { box.deallocate() }
            box.pointee = max(0, min(number(request.body), 10_000))
            var thread = pthread_t()
            let r = pthread_create(&thread, nil, { raw in
                let box = raw!.assumingMemoryBound(to: Int.self)
                func cpu() -> Int {
                    var ts = timespec()
                    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts)
                    return ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
                }
                let until = cpu() + box.pointee
                var x: UInt64 = 1
                while cpu() < until { for _ in 0..<10_000 { x = x &* 6364136223846793005 &+ 1 } }
                box.pointee = Int(x % 2)
                return nil
            }, box)
            guard r == 0 else { throw .failed("pthread_create: \(r)") }
            pthread_join(thread, nil)
            return Array("\(box.pointee)".utf8)
        }
        worker.register("stderr_firehose") { request throws(TaskError) in
            // A noisy tenant: 64 KiB of 100-byte lines at a time on stderr for N ms, waiting
            // (poll) whenever the pipe is full. Reports how many bytes the pipe took.
            var line = [UInt8](repeating: 0x78, count: 100)
            line[99] = 0x0A
            let chunk = Array([[UInt8]](repeating: line, count: 655).joined())
            let flags = fcntl(2, F_GETFL)
            _ = fcntl(2, F_SETFL, flags | O_NONBLOCK)
            defer { _ = fcntl(2, F_SETFL, flags) }
            func now() -> Int {
                var ts = timespec()
                clock_gettime(CLOCK_MONOTONIC, &ts)
                return ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
            }
            let until = now() + max(0, min(number(request.body), 20_000))
            var taken = 0, offset = 0
            while now() < until {
                let n = chunk.withUnsafeBytes { write(2, $0.baseAddress! + offset, $0.count - offset) }
                if n > 0 {
                    taken += n
                    offset = (offset + n) % chunk.count
                } else {
                    var p = pollfd(fd: 2, events: Int16(POLLOUT), revents: 0)
                    _ = poll(&p, 1, 10)
                }
            }
            return Array("{\"bytes\":\(taken)}".utf8)
        }
        worker.register("stream_lie") { request throws(TaskError) in
            // A streamed answer (as files.get gives) that announces one length and sends
            // another, written as raw frames; then the worker exits. Body: "ANNOUNCED SENT".
            let parts = String(decoding: request.body, as: UTF8.self).split(separator: " ").compactMap { Int($0) }
            guard parts.count == 2 else { throw .badRequest("announced sent") }
            let id = u64(request.requestID)
            func frame(_ type: UInt8, more: Bool, _ payload: [UInt8]) -> [UInt8] {
                [0x42, 0x48, 1, type, 0, more ? 1 : 0, 0, 0] + id + u64(UInt64(payload.count)).suffix(4) + payload
            }
            var out = frame(3, more: true, [UInt8](repeating: 0, count: 16) + u64(UInt64(parts[0])))
            var left = parts[1]
            while left > 0 {
                let n = min(left, 64 * 1024)
                out += frame(9, more: true, [UInt8](repeating: 0x61, count: n))
                left -= n
            }
            out += frame(9, more: false, [])
            var done = 0
            while done < out.count {
                let n = out.withUnsafeBytes { write(3, $0.baseAddress! + done, $0.count - done) }
                guard n > 0 else { break }
                done += n
            }
            exit(0)
        }
        worker.register("hang") { _ throws(TaskError) in
            while true { pause() }
        }
        worker.register("spin_until_cancelled") { request throws(TaskError) in
            while !request.isCancelled() { _ = poll(nil, 0, 1) }  // busy work, checking for CANCEL
            throw .cancelled
        }
        worker.register("garbage") { _ throws(TaskError) in
            // Writes a frame header with a bad magic onto its own socket.
            let bytes: [UInt8] = Array(repeating: 0xEE, count: 32)
            _ = write(3, bytes, bytes.count)
            while true { pause() }
        }
        // File answers that lie about sizes (these replace the built-in file tasks): the
        // daemon must refuse them as broken answers, never trust or trap on them.
        worker.register("files.put") { _ throws(TaskError) in u64(1 << 63) + u64(0) }  // stored 2^63 bytes
        worker.register("files.get") { request throws(TaskError) in
            // A streamed RESPONSE frame by hand, announcing a 2^63-byte file; then waits to be cancelled.
            var frame: [UInt8] = [0x42, 0x48, 1, 3, 0, 1, 0, 0] + u64(request.requestID) + [0, 0, 0, 24]
            frame += u64(0) + u64(0) + u64(1 << 63)
            _ = write(3, frame, frame.count)
            while !request.isCancelled() { _ = poll(nil, 0, 1) }
            throw .cancelled
        }
        worker.run()
    }

    static func u64(_ v: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: v >> (56 - 8 * UInt64($0))) } }

    static func number(_ body: [UInt8]) -> Int { Int(String(decoding: body, as: UTF8.self)) ?? 0 }

    static func raw(_ nr: Int, _ a: Int = 0, _ b: Int = 0, _ c: Int = 0, _ d: Int = 0, _ e: Int = 0) -> Int {
        Int(bh_syscall6(nr, a, b, c, d, e, 0))
    }

    static func raw(_ nr: Int32, _ a: Int = 0, _ b: Int = 0, _ c: Int = 0, _ d: Int = 0, _ e: Int = 0) -> Int {
        raw(Int(nr), a, b, c, d, e)
    }

    static func libcResult(_ r: Int32) -> Int32 { r < 0 ? -errno : r }

    /// `{"result":N}`; N < 0 is -errno.
    static func report(_ r: Int) -> [UInt8] { Array("{\"result\":\(r)}".utf8) }
}
