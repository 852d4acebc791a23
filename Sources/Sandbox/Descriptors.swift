// Jail steps for what a worker inherits: descriptors, session and environment.
import CBulkhead
import Glibc

enum Descriptors {
    /// close_range(last+1, ~0): nothing the supervisor had open survives, even a
    /// descriptor someone forgot to mark close-on-exec.
    static func closeInherited(keepingThrough last: Int32) throws(JailError) {
        let r = bh_close_range_from(UInt32(last + 1))
        if r < 0 { throw JailError(.closeDescriptors, "close_range: \(String(cString: strerror(-r)))") }
    }

    /// A session of its own and no controlling terminal (no TIOCSTI target, no SIGHUP
    /// from a terminal). posix_spawn's SETSID usually did it already.
    static func newSession() throws(JailError) {
        if getsid(0) != getpid() && setsid() < 0 {
            throw JailError(.newSession, "setsid: \(String(cString: strerror(errno)))")
        }
        let tty = open("/dev/tty", O_RDWR | O_CLOEXEC | O_NOCTTY)
        if tty >= 0 {
            close(tty)
            throw JailError(.newSession, "a controlling terminal is still attached")
        }
    }

    /// An empty environment: no secret or path of the daemon's leaks into tenant code.
    static func clearEnvironment() throws(JailError) {
        if bh_clearenv() < 0 { throw JailError(.clearEnvironment, "clearenv failed") }
    }
}
