// Volumes: provisioning a tenant's volume directory (owned by its uid, mode 0700). The
// supervisor creates and checks the directory itself; it never opens anything inside.
import CBulkhead
import Glibc

public struct VolumeError: Error, Sendable, CustomStringConvertible {
    public let description: String
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
            throw VolumeError(description: "volume \(path) belongs to uid \(st.st_uid) gid \(st.st_gid), not the tenant's \(tenant.uid)/\(tenant.gid)")
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
    /// Deletes a volume and everything in it without following a symbolic link anywhere
    /// (a tenant's link to /etc is removed as a link) and without crossing into another
    /// mount. The tenant's workers must have exited first.
    public static func remove(tenant: String, root: String, prefix: String) throws(VolumeError) {
        let path = path(root: root, prefix: prefix, tenant: tenant)
        var st = stat()
        guard lstat(path, &st) == 0 else {
            if errno == ENOENT { return }
            throw VolumeError(description: "volume \(path): \(String(cString: strerror(errno)))")
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else { throw VolumeError(description: "volume \(path) is not a directory") }
        let r = bh_remove_tree(path)
        if r != 0 { throw VolumeError(description: "could not remove all of \(path): \(String(cString: strerror(-r)))") }
    }
}
