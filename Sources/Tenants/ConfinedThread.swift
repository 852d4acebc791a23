// Work the daemon does inside a tenant's volume by path (SQLite opens files by name),
// on a short-lived thread confined there as the tenant's worker is: chrooted into the
// volume, with the tenant's file-system uid and gid. Whatever a name inside the volume
// leads to — a link, a directory swapped meanwhile — resolves within the volume and
// opens with the tenant's rights, never root's: it cannot reach another tenant's files.
import CBulkhead
import Glibc

enum ConfinedThread {
    /// Why no confined thread ran: pthread_create or a confinement step failed (errno).
    struct Failure: Error {
        let code: Int32
        var description: String { "cannot confine a thread to the volume: \(String(cString: strerror(code)))" }
    }

    /// Runs `body` on a new thread confined to the directory `volume` (a descriptor) as
    /// `uid`/`gid`, and waits for it. Throws if the thread could not be confined.
    static func run(in volume: Int32, uid: UInt32, gid: UInt32, _ body: () -> Void) throws(Failure) {
        let failure: Int32 = withoutActuallyEscaping(body) { escapable in
            let job = Job(volume: volume, uid: uid, gid: gid, body: escapable)
            let box = Unmanaged.passRetained(job)
            var thread = pthread_t()
            let r = pthread_create(&thread, nil, { raw in
                let job = Unmanaged<Job>.fromOpaque(raw!).takeRetainedValue()
                job.confined = bh_confine_thread(job.volume, job.uid, job.gid)
                if job.confined == 0 { job.body() }
                return nil  // the thread ends here, and its root and identity with it
            }, box.toOpaque())
            guard r == 0 else {
                box.release()
                return r
            }
            pthread_join(thread, nil)
            return -job.confined
        }
        if failure != 0 { throw Failure(code: failure) }
    }

    /// What the thread needs; it reads these, and writes `confined`, before it is joined.
    private final class Job {
        let volume: Int32
        let uid: UInt32
        let gid: UInt32
        let body: () -> Void
        var confined: Int32 = 0

        init(volume: Int32, uid: UInt32, gid: UInt32, body: @escaping () -> Void) {
            self.volume = volume
            self.uid = uid
            self.gid = gid
            self.body = body
        }
    }
}
