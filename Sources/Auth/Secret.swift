// Owns the HS256 secret: its minimum strength, where it comes from (environment, file, or generated), and its safe-to-log key id.
import Glibc

/// The HMAC key of the tokens this server issues. At least 32 bytes (RFC 7518 §3.2: the key
/// must be at least as long as the hash output). Its bytes never leave this module: not in
/// `description`, not in a reflection dump.
public struct Secret: Sendable, CustomStringConvertible, CustomReflectable {
    /// RFC 7518 §3.2.
    public static let minimumBytes = 32
    /// Bytes written to a newly generated secret file.
    static let generatedBytes = 32
    /// A secret file longer than this is refused: it is not a key someone meant to write.
    static let maximumFileBytes = 4096

    let hmac: HMACKey
    private let id: String

    /// `bytes` as the key; fewer than 32 → `weakSecret`.
    public init(bytes: [UInt8]) throws(AuthError) {
        guard bytes.count >= Self.minimumBytes else {
            throw AuthError(.weakSecret, "secret has \(bytes.count) bytes; at least \(Self.minimumBytes) are required")
        }
        hmac = HMACKey(bytes)
        id = String(Crypto.hex(Crypto.sha256(bytes).prefix(4)))
    }

    /// The secret from `environmentValue` (the value of BULKHEAD_JWT_SECRET, used as its UTF-8
    /// bytes) when it is set, even to something too short (that is an error, never a silent fall
    /// back to the file); else the raw bytes of `file`; and when `file` does not exist, 32 bytes from
    /// RAND_bytes, published there with mode 0600 only once they are fully on disk.
    ///
    /// The file is refused when it is not a regular file, is owned by another user than this
    /// process's or root, or has any group/other permission bit set.
    /// Its bytes are used exactly as stored, a trailing newline included.
    public static func load(environmentValue: String?, file: String) throws(AuthError) -> Secret {
        if let environmentValue {
            let bytes = Array(environmentValue.utf8)
            guard bytes.count >= minimumBytes else {
                throw AuthError(.weakSecret, "BULKHEAD_JWT_SECRET has \(bytes.count) bytes; at least \(minimumBytes) are required")
            }
            return try Secret(bytes: bytes)
        }
        // Two rounds: a file that another process publishes between our read and our create is read.
        for _ in 0..<2 {
            if let bytes = try SecretFile.read(file) { return try fromFile(bytes, file) }
            let fresh = try Crypto.randomBytes(generatedBytes)
            if try SecretFile.publish(fresh, at: file) { return try fromFile(fresh, file) }
        }
        throw AuthError(.secretUnavailable, "\(file): appears and disappears while it is being created")
    }

    private static func fromFile(_ bytes: [UInt8], _ file: String) throws(AuthError) -> Secret {
        guard bytes.count >= minimumBytes else {
            throw AuthError(.weakSecret, "\(file) holds \(bytes.count) bytes; at least \(minimumBytes) are required")
        }
        return try Secret(bytes: bytes)
    }

    /// The first 8 hex digits of SHA-256(secret): names the key in logs without revealing it.
    public var keyID: String { id }

    public var description: String { "Secret(keyID: \(id))" }
    public var customMirror: Mirror { Mirror(self, children: ["keyID": id]) }
}

/// The secret file's system calls. Every descriptor is owned and O_CLOEXEC; EINTR is retried.
private enum SecretFile {
    /// An open descriptor, closed when it goes out of scope.
    struct Descriptor: ~Copyable {
        let raw: Int32
        deinit { _ = close(raw) }
    }

    static func failure(_ what: String, _ path: String, _ err: Int32 = errno) -> AuthError {
        AuthError(.secretUnavailable, "\(what)(\(path)): \(String(cString: strerror(err)))")
    }

    /// open(2) with O_CLOEXEC, retried on EINTR: the descriptor, or minus errno.
    static func open(_ path: String, _ flags: Int32, _ mode: mode_t = 0) -> Int32 {
        while true {
            let fd = Glibc.open(path, flags | O_CLOEXEC, mode)
            if fd >= 0 || errno != EINTR { return fd >= 0 ? fd : -errno }
        }
    }

    /// The file's bytes, or nil when it does not exist.
    static func read(_ path: String) throws(AuthError) -> [UInt8]? {
        let raw = open(path, O_RDONLY | O_NOCTTY)
        if raw == -ENOENT { return nil }
        guard raw >= 0 else { throw failure("open", path, -raw) }
        let fd = Descriptor(raw: raw)
        var st = stat()
        guard fstat(fd.raw, &st) == 0 else { throw failure("fstat", path) }
        guard st.st_mode & 0o170000 == 0o100000 else {
            throw AuthError(.secretUnavailable, "\(path) is not a regular file")
        }
        // A file someone else owns could hold a key they chose (an attacker who can write the
        // directory); ours or root's only, as sshd does for its keys.
        guard st.st_uid == geteuid() || st.st_uid == 0 else {
            throw AuthError(.secretUnavailable, "\(path) is owned by uid \(st.st_uid), neither this process's uid nor root")
        }
        let mode = st.st_mode & 0o7777
        guard mode & 0o077 == 0 else {
            let text = String(mode, radix: 8)
            throw AuthError(.secretUnavailable, "\(path) is accessible by group or others (mode 0\(text)); it must be 0600 or stricter")
        }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1024)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd.raw, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw failure("read", path)
            }
            if n == 0 { return bytes }
            bytes.append(contentsOf: chunk[0..<n])
            guard bytes.count <= Secret.maximumFileBytes else {
                throw AuthError(.secretUnavailable, "\(path) is larger than \(Secret.maximumFileBytes) bytes")
            }
        }
    }

    /// Writes `bytes` to a new private file next to `path` (O_CREAT|O_EXCL, mode 0600), fsyncs it,
    /// and links it to `path`, which never replaces an existing file, so `path` appears complete or
    /// not at all. False when `path` already exists (someone else published first).
    static func publish(_ bytes: [UInt8], at path: String) throws(AuthError) -> Bool {
        let directory = path.lastIndex(of: "/").map { $0 == path.startIndex ? "/" : String(path[..<$0]) } ?? "."
        let temporary = "\(path).tmp-\(getpid())-\(Crypto.hex(try Crypto.randomBytes(4)))"
        do {
            let raw = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600)
            guard raw >= 0 else { throw failure("open", temporary, -raw) }
            let fd = Descriptor(raw: raw)
            defer { _ = unlink(temporary) }
            var written = 0
            while written < bytes.count {
                let n = bytes[written...].withUnsafeBytes { Glibc.write(fd.raw, $0.baseAddress, $0.count) }
                if n < 0 {
                    if errno == EINTR { continue }
                    throw failure("write", temporary)
                }
                written += n
            }
            guard fsync(fd.raw) == 0 else { throw failure("fsync", temporary) }
            guard link(temporary, path) == 0 else {
                if errno == EEXIST { return false }
                throw failure("link", path)
            }
        }
        // The new directory entry is durable only once the directory itself is synced.
        let rawDir = open(directory, O_RDONLY | O_DIRECTORY)
        guard rawDir >= 0 else { throw failure("open", directory, -rawDir) }
        let dir = Descriptor(raw: rawDir)
        guard fsync(dir.raw) == 0 else { throw failure("fsync", directory) }
        return true
    }
}
