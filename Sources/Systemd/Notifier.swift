// sd_notify(3), spoken directly on the datagram socket systemd names in $NOTIFY_SOCKET:
// READY=1, STATUS=, WATCHDOG=1, RELOADING=1, STOPPING=1. Without the variable (not
// under systemd, or Type= is not notify) every call does nothing.
import Glibc

public final class Notifier: Sendable {
    private let address: [UInt8]?  // sockaddr_un.sun_path bytes ("@" → abstract, leading NUL)
    private let fd: Int32

    /// Reads $NOTIFY_SOCKET once; `environment` is for tests.
    public init(environment: [String: String]? = nil) {
        let path = environment.map { $0["NOTIFY_SOCKET"] } ?? getenv("NOTIFY_SOCKET").map { String(cString: $0) }
        guard let path, !path.isEmpty, path.utf8.count < 108, path.hasPrefix("/") || path.hasPrefix("@") else {
            address = nil
            fd = -1
            return
        }
        var bytes = Array(path.utf8)
        if bytes[0] == UInt8(ascii: "@") { bytes[0] = 0 }
        address = bytes
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
    }

    deinit { if fd >= 0 { close(fd) } }

    public var isEnabled: Bool { address != nil && fd >= 0 }

    /// Sends `state` ("READY=1\nSTATUS=…"); false if it could not be sent.
    @discardableResult
    public func notify(_ state: String) -> Bool {
        guard let address, fd >= 0 else { return false }
        var sa = sockaddr_un()
        sa.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &sa.sun_path) { raw in
            for (i, b) in address.enumerated() { raw[i] = b }
        }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + address.count)
        let message = Array(state.utf8)
        let sent = message.withUnsafeBytes { body in
            withUnsafePointer(to: &sa) { p in
                p.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, body.baseAddress, body.count, Int32(MSG_NOSIGNAL), $0, length)
                }
            }
        }
        return sent == message.count
    }

    /// `WATCHDOG_USEC` for this process, as the interval at which to send WATCHDOG=1 (half
    /// of it, as sd_watchdog_enabled(3) advises); nil when no watchdog is asked for.
    public static func watchdogInterval(environment: [String: String]? = nil) -> Duration? {
        func value(_ key: String) -> String? {
            environment.map { $0[key] } ?? getenv(key).map { String(cString: $0) }
        }
        guard let usec = value("WATCHDOG_USEC").flatMap(UInt64.init), usec > 0 else { return nil }
        if let pid = value("WATCHDOG_PID").flatMap(Int32.init), pid != getpid() { return nil }
        return .microseconds(usec / 2)
    }
}
