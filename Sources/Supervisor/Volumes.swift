// Volumes: a tenant's volume directory (owned by its uid, mode 0700) — provisioning it,
// setting it aside and removing it, and walking it safely (`VolumeWalk`) while the tenant,
// who controls everything inside, may change it under the walk.
import CBulkhead
import Dispatch
import Glibc
import Log

public struct VolumeError: Error, Sendable, CustomStringConvertible {
    public enum Code: Sendable { case failed, occupied }
    public let code: Code
    public let description: String

    public init(_ code: Code = .failed, description: String) {
        self.code = code
        self.description = description
    }

    /// A walk's error (-errno or -BH_WALK_MOVED), in words: never a path.
    init(walk error: Int64) {
        self.init(description: String(cString: bh_walk_strerror(error)))
    }
}

public enum Volumes {
    /// `<root>/<prefix>-<tenant>-data`.
    public static func path(root: String, prefix: String, tenant: String) -> String {
        "\(root)/\(prefix)-\(tenant)-data"
    }

    /// Makes sure the tenant's volume exists, is a real directory (not a link), belongs to
    /// the tenant's uid and gid, and is 0700. Creates it (and the root, 0711) when `create`.
    public static func ensure(tenant: TenantIdentity, root: String, prefix: String, create: Bool) throws(VolumeError) -> String {
        let path = path(root: root, prefix: prefix, tenant: tenant.id)
        var st = stat()
        if lstat(path, &st) != 0 {
            guard errno == ENOENT else { throw VolumeError(description: "volume \(path): \(String(cString: strerror(errno)))") }
            guard create else { throw VolumeError(description: "Volume not found: \(path) (and [volumes] auto_create is off)") }
            try makeRoot(root)
            guard mkdir(path, 0o700) == 0 || errno == EEXIST else {
                throw VolumeError(description: "cannot create volume \(path): \(String(cString: strerror(errno)))")
            }
            guard lchown(path, tenant.uid, tenant.gid) == 0, lstat(path, &st) == 0 else {
                throw VolumeError(description: "cannot give volume \(path) to uid \(tenant.uid): \(String(cString: strerror(errno)))")
            }
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else { throw VolumeError(description: "volume \(path) is not a directory") }
        guard st.st_uid == tenant.uid, st.st_gid == tenant.gid else {
            // Someone else's data (an earlier tenant's, kept by a delete without --purge):
            // never adopted, never changed.
            throw VolumeError(.occupied, description: "volume \(path) already exists and belongs to uid \(st.st_uid) gid \(st.st_gid), not the tenant's \(tenant.uid)/\(tenant.gid): move it away or remove it first")
        }
        if st.st_mode & 0o7777 != 0o700 {
            guard chmod(path, 0o700) == 0 else { throw VolumeError(description: "cannot chmod volume \(path)") }
        }
        return path
    }

    /// The volumes root: root-owned, 0711 — tenants can reach their own directory, not list others.
    private static func makeRoot(_ root: String) throws(VolumeError) {
        var components: [Substring] = []
        for part in root.split(separator: "/") {
            components.append(part)
            let prefix = "/" + components.joined(separator: "/")
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
                throw VolumeError(description: "cannot create \(prefix): \(String(cString: strerror(errno)))")
            }
        }
        _ = chmod(root, 0o711)
    }
}

extension Volumes {
    /// Holding directories of purged volumes in the volumes root: `.bulkhead-purge-<id>-<random>`.
    static let holdingPrefix = ".bulkhead-purge-"

    /// Sets the tenant's volume aside for removal: renames it, in one step, to a holding
    /// name in the root-owned volumes root, so the volume path is free at once and a purge
    /// that fails later never leaves data where a new tenant of the same id would find it.
    /// Returns the holding path, or nil when there is no volume. The tenant's workers must
    /// have exited first.
    public static func detach(tenant: String, root: String, prefix: String) throws(VolumeError) -> String? {
        let path = path(root: root, prefix: prefix, tenant: tenant)
        var st = stat()
        guard lstat(path, &st) == 0 else {
            if errno == ENOENT { return nil }
            throw VolumeError(description: "volume \(path): \(String(cString: strerror(errno)))")
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else { throw VolumeError(description: "volume \(path) is not a directory") }
        let held = "\(root)/\(holdingPrefix)\(tenant)-\(String(UInt64.random(in: 0...UInt64.max), radix: 16))"
        guard rename(path, held) == 0 else {
            throw VolumeError(description: "cannot move volume \(path) aside: \(String(cString: strerror(errno)))")
        }
        return held
    }

    /// Puts a volume `detach` set aside back in place (when the rest of a purge failed).
    public static func reattach(_ held: String, tenant: String, root: String, prefix: String) throws(VolumeError) {
        guard rename(held, path(root: root, prefix: prefix, tenant: tenant)) == 0 else {
            throw VolumeError(description: "cannot put \(held) back: \(String(cString: strerror(errno)))")
        }
    }

    /// Deletes the trees `detach` set aside, with everything in them (bh_remove_tree: any
    /// depth, a link removed as a link, no other mount entered), one after another on a
    /// thread of their own so that a volume of millions of entries holds up no command,
    /// and logs each outcome. What is left when the daemon stops is removed at its next start.
    public static func remove(held: [String], log: Logger) {
        guard !held.isEmpty else { return }
        removals.async {
            for path in held {
                let r = bh_remove_tree(path)
                if r == 0 {
                    log.info("purged_volume_removed", [("path", .string(path))])
                } else {
                    log.warning("purged_volume_not_removed", [("path", .string(path)),
                                                              ("reason", .string(String(cString: bh_walk_strerror(Int64(r)))))])
                }
            }
        }
    }

    private static let removals = DispatchQueue(label: "bulkhead.volume-removal")

    /// Removes, as `remove(held:)` does, what purges set aside and did not finish removing
    /// (the daemon stopped or failed during one): at start.
    public static func removeLeftovers(root: String, log: Logger) {
        guard let dir = opendir(root) else { return }
        var held: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name.hasPrefix(holdingPrefix) { held.append(root + "/" + name) }
        }
        closedir(dir)
        remove(held: held, log: log)
    }
}

/// One walk of a directory tree through the walker of CBulkhead (bh_walk_*): descriptors
/// only, never following a link or entering another filesystem, any depth with one open
/// directory; a directory moved under it ends it with an error, never elsewhere.
public struct VolumeWalk: ~Copyable {
    public enum Event: Sendable { case directory, file, other, leave }

    public struct Entry {
        public let event: Event
        /// The directory that holds the entry: open until the next `next()`.
        public let directory: Int32
        /// The name's raw bytes (empty for `.leave`).
        public let name: [UInt8]
        /// 1 for the entries of the walk's root.
        public let depth: Int
        /// lstat of the entry as it was listed (for `.leave`, only st_dev and st_ino).
        public let status: stat
    }

    private let walk: OpaquePointer

    /// A walk of the directory `path` relative to the directory `dir`, opened without
    /// following a link.
    public init(at dir: Int32, _ path: String = ".") throws(VolumeError) {
        var walk: OpaquePointer?
        let r = bh_walk_open(dir, path, nil, &walk, nil)
        guard r == 0, let walk else { throw VolumeError(walk: Int64(r)) }
        self.walk = walk
    }

    deinit { bh_walk_close(walk) }

    /// The next entry, nil at the end.
    public func next() throws(VolumeError) -> Entry? {
        var e = bh_walk_entry()
        let r = bh_walk_next(walk, &e)
        guard r >= 0 else { throw VolumeError(walk: Int64(r)) }
        guard r == 1 else { return nil }
        let event: Event = switch e.event {
        case BH_WALK_DIRECTORY: .directory
        case BH_WALK_FILE: .file
        case BH_WALK_LEAVE: .leave
        default: .other
        }
        let name = e.name.map { Array(UnsafeRawBufferPointer(start: $0, count: e.name_length)) } ?? []
        return Entry(event: event, directory: e.directory_fd, name: name, depth: e.depth, status: e.st)
    }

    /// After a `.directory` entry: do not go into it.
    public func skip() { bh_walk_skip(walk) }
}
