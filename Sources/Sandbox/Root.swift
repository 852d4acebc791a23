// Jail step: chroot into the tenant's volume.
import Glibc

enum Root {
    static func change(to root: String) throws(JailError) {
        guard root.hasPrefix("/") else { throw JailError(.changeRoot, "volume path \(root) is not absolute") }
        var st = stat()
        guard lstat(root, &st) == 0 else {
            throw JailError(.changeRoot, "volume \(root): \(String(cString: strerror(errno)))")
        }
        guard (st.st_mode & S_IFMT) == S_IFDIR else { throw JailError(.changeRoot, "volume \(root) is not a directory") }
        guard chroot(root) == 0 else { throw JailError(.changeRoot, "chroot(\(root)): \(String(cString: strerror(errno)))") }
        // Without chdir the working directory would still be outside the new root.
        guard chdir("/") == 0 else { throw JailError(.changeRoot, "chdir(/): \(String(cString: strerror(errno)))") }
    }
}
