// Errno: the typed error of every system call wrapper, and the one EINTR/EAGAIN policy.
import CBulkhead
import Glibc

/// A failed system call: the errno value and the name of the call that returned it.
public struct Errno: Error, Sendable, Equatable, CustomStringConvertible {
    public let code: Int32
    public let call: String

    public init(_ code: Int32, call: String) {
        self.code = code
        self.call = call
    }

    public static func == (a: Errno, b: Errno) -> Bool { a.code == b.code }

    public var description: String { "\(call): \(String(cString: strerror(code)))" }

    public static let wouldBlock = EAGAIN
    public static let interrupted = EINTR
}

/// The policy for a raw result `r` in the -errno convention of the C shims (wrap a libc
/// call that sets errno with `libc(_:)`): EINTR → retry, EAGAIN → nil (would block), EBADF/EFAULT →
/// crash (a bug in our descriptor ownership), anything else → throw with the call's name.
@inline(__always)
public func retrying<T: FixedWidthInteger & SignedInteger>(
    _ call: String, _ body: () -> T
) throws(Errno) -> T? {
    while true {
        let r = body()
        if r >= 0 { return r }
        let code = Int32(truncatingIfNeeded: 0 - r)
        switch code {
        case EINTR: continue
        case EAGAIN: return nil
        case EBADF, EFAULT: preconditionFailure("\(call): \(String(cString: strerror(code))) (descriptor bug)")
        default: throw Errno(code, call: call)
        }
    }
}

/// Like `retrying`, for calls that cannot would-block: EAGAIN is an error too.
@inline(__always)
public func checked<T: FixedWidthInteger & SignedInteger>(_ call: String, _ body: () -> T) throws(Errno) -> T {
    guard let r = try retrying(call, body) else { throw Errno(EAGAIN, call: call) }
    return r
}

/// Turns libc's "-1 and errno" into the shims' "-errno".
@inline(__always)
public func libc<T: FixedWidthInteger & SignedInteger>(_ r: T) -> T { r < 0 ? 0 - T(errno) : r }
