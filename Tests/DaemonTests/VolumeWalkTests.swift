// Walks of a volume the tenant controls: the walker of CBulkhead on its own (a directory
// swapped for a link, a directory moved under the walk, one descriptor at any depth,
// removal past PATH_MAX) and through the daemon (a 100,000-level tree is scanned, backed
// up and purged; a link out of the volume is not counted; purge then create starts from
// zero; names a restore would refuse are counted, not lost; no volume is adopted).
import CBulkhead
import Foundation
import Glibc
import Synchronization
import Testing

/// `depth` directories named "d", each in the one before, below `root`: made through
/// descriptors (a path that deep could not be resolved), owned by uid/gid.
func nest(_ root: String, depth: Int, uid: UInt32 = 0, gid: UInt32 = 0) throws {
    var fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else { throw TestFailure("open \(root): \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    for level in 0..<depth {
        let next = mkdirat(fd, "d", 0o700) == 0 ? openat(fd, "d", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1
        guard next >= 0, fchown(next, uid, gid) == 0 else {
            throw TestFailure("level \(level): \(String(cString: strerror(errno)))")
        }
        close(fd)
        fd = next
    }
}

/// The tenant's uid (and gid, the same number).
func uidOf(_ d: Daemon, _ tenant: String) throws -> UInt32 {
    let uid = try #require(jsonObject(d.ctl("--json", "tenant", "show", tenant).stdout)["uid"] as? Int)
    return UInt32(uid)
}

/// A file of `bytes` disk blocks (allocated, not written).
func allocated(_ path: String, bytes: Int) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
    guard fd >= 0, posix_fallocate(fd, 0, off_t(bytes)) == 0 else { throw TestFailure("fallocate \(path)") }
    close(fd)
}

/// Every entry of a walk, as (event, depth, name), until its end or error.
func walkAll(_ path: String) -> (entries: [(Int, Int, String)], result: Int32) {
    var walk: OpaquePointer?
    let opened = bh_walk_open(AT_FDCWD, path, nil, &walk, nil)
    guard opened == 0, let walk else { return ([], opened) }
    defer { bh_walk_close(walk) }
    var entries: [(Int, Int, String)] = []
    var e = bh_walk_entry()
    while true {
        let r = bh_walk_next(walk, &e)
        guard r == 1 else { return (entries, r) }
        entries.append((Int(e.event.rawValue), e.depth, e.name.map { String(cString: $0) } ?? ""))
    }
}

final class Swaps: Sendable {
    let stop = Atomic<Bool>(false)
    let done = Atomic<Int>(0)
}

@Suite(.serialized) struct VolumeWalkTests {
    // MARK: The walker alone

    @Test func aDirectorySwappedForALinkIsNeverFollowed() throws {
        let base = try makeTemporaryDirectory()
        defer { _ = bh_remove_tree(base) }
        let volume = base + "/volume", outside = base + "/outside"
        for dir in [volume, volume + "/a", outside] { mkdir(dir, 0o700) }
        try allocated(volume + "/a/small", bytes: 64 << 10)
        try allocated(outside + "/large", bytes: 64 << 20)
        let honest = bh_tree_bytes(volume, nil)
        #expect(honest > 0 && honest < 1 << 20)

        // What the hostile worker did: "a" becomes a link to a large directory and back,
        // 10,000 times while the scans run (nftw was caught about once in 10,000 scans).
        let swaps = Swaps()
        let swapper = Thread {
            while !swaps.stop.load(ordering: .relaxed) {
                rename(volume + "/a", volume + "/a.away")
                symlink(outside, volume + "/a")
                unlink(volume + "/a")
                rename(volume + "/a.away", volume + "/a")
                swaps.done.add(1, ordering: .relaxed)
            }
        }
        swapper.start()
        var scans = 0, moved = 0, largest: Int64 = 0
        while scans < 2000 || swaps.done.load(ordering: .relaxed) < 10_000 {
            let bytes = bh_tree_bytes(volume, nil)
            if bytes == -Int64(BH_WALK_MOVED) { moved += 1 } else { #expect(bytes > 0, "\(String(cString: bh_walk_strerror(bytes)))") }
            largest = max(largest, bytes)
            scans += 1
        }
        swaps.stop.store(true, ordering: .relaxed)
        while !swapper.isFinished { _ = poll(nil, 0, 1) }
        print("\(scans) scans during swaps: \(moved) stopped as moved, largest \(largest) bytes")
        #expect(largest < 1 << 20)
    }

    @Test func aDirectoryMovedUnderTheWalkEndsItWithItsOwnError() throws {
        let base = try makeTemporaryDirectory()
        defer { _ = bh_remove_tree(base) }
        for dir in ["/a", "/a/b", "/a/b/c", "/z"] { mkdir(base + dir, 0o700) }
        var walk: OpaquePointer?
        #expect(bh_walk_open(AT_FDCWD, base, nil, &walk, nil) == 0)
        let w = try #require(walk)
        defer { bh_walk_close(w) }
        var e = bh_walk_entry()
        // Down to c, then "a" (above the walk) moves into "z".
        var seen: [String] = []
        while seen.last != "c" {
            #expect(bh_walk_next(w, &e) == 1)
            seen.append(e.name.map { String(cString: $0) } ?? "")
        }
        #expect(rename(base + "/a", base + "/z/a") == 0)
        var r: Int32 = 1
        while r == 1 { r = bh_walk_next(w, &e) }
        #expect(r == -Int32(BH_WALK_MOVED))
        #expect(String(cString: bh_walk_strerror(Int64(r))) == "a directory was moved or replaced while it was walked")
        #expect(bh_walk_next(w, &e) == r)  // it stays ended

        // A directory listed, then replaced by a link before the walk goes in.
        #expect(rename(base + "/z/a", base + "/a") == 0)
        var second: OpaquePointer?
        #expect(bh_walk_open(AT_FDCWD, base + "/a", nil, &second, nil) == 0)
        let w2 = try #require(second)
        defer { bh_walk_close(w2) }
        #expect(bh_walk_next(w2, &e) == 1 && e.event == BH_WALK_DIRECTORY)
        #expect(rename(base + "/a/b", base + "/b-away") == 0 && symlink("/", base + "/a/b") == 0)
        #expect(bh_walk_next(w2, &e) == -Int32(BH_WALK_MOVED))
    }

    @Test func entriesComeAsTheyAreAndLeaveAfterTheirContents() throws {
        let base = try makeTemporaryDirectory()
        defer { _ = bh_remove_tree(base) }
        mkdir(base + "/dir", 0o700)
        try allocated(base + "/dir/file", bytes: 4096)
        symlink("/etc", base + "/dir/link")
        mkfifo(base + "/fifo", 0o600)
        let (entries, result) = walkAll(base)
        #expect(result == 0)
        let byName = Dictionary(entries.filter { $0.0 != Int(BH_WALK_LEAVE.rawValue) }.map { ($0.2, ($0.0, $0.1)) }) { a, _ in a }
        #expect(byName["dir"]! == (Int(BH_WALK_DIRECTORY.rawValue), 1))
        #expect(byName["file"]! == (Int(BH_WALK_FILE.rawValue), 2))
        #expect(byName["link"]! == (Int(BH_WALK_OTHER.rawValue), 2))
        #expect(byName["fifo"]! == (Int(BH_WALK_OTHER.rawValue), 1))
        let leave = try #require(entries.firstIndex { $0.0 == Int(BH_WALK_LEAVE.rawValue) })
        #expect(entries[leave].1 == 1 && entries[..<leave].contains { $0.2 == "file" } && entries[..<leave].contains { $0.2 == "link" })
        #expect(entries.count == 5)
    }

    /// In a process of its own (an exit test), with room for 8 more descriptors than it
    /// has open: a walk, a scan and the removal of a tree 6,000 levels deep (12 KB of
    /// path, past PATH_MAX) keep one directory open at a time.
    @Test func oneDescriptorAtAnyDepthAndRemovalPastPathMax() async {
        await #expect(processExitsWith: .success) {
            guard let base = try? makeTemporaryDirectory() else { exit(10) }
            func check() -> Int32 {
                guard (try? nest(base, depth: 6000)) != nil else { return 11 }
                let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 1000
                var limit = rlimit(rlim_cur: rlim_t(open + 8), rlim_max: rlim_t(open + 8))
                guard setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 12 }
                let (entries, result) = walkAll(base)
                guard result == 0, entries.count == 12_000, entries.map(\.1).max() == 6000 else { return 13 }
                guard bh_tree_bytes(base, nil) > 6000 * 4096 else { return 14 }
                guard bh_remove_tree(base) == 0, access(base, F_OK) != 0 else { return 15 }
                return 0
            }
            let status = check()
            _ = bh_remove_tree(base)  // whatever a failure left
            exit(status)
        }
    }

    // MARK: Through the daemon

    @Test func aHundredThousandLevelsAreScannedBackedUpAndPurged() throws {
        let d = try Daemon()
        let volume = d.volumes + "/tenant-deep-data"
        defer {
            d.stop()
            _ = bh_remove_tree(d.volumes)  // whatever a failure left this deep: Foundation could not
            d.cleanUp()
        }
        try d.start()
        let key = try d.tenant("deep")
        let uid = try uidOf(d, "deep")
        try nest(volume, depth: 100_000, uid: uid, gid: uid)

        // The scan runs at start: the daemon measures the whole tree and lives on.
        d.stop()
        try d.start()
        try eventually(120, "the start-up scan measured the tree") {
            (usageOf(d, "deep")["storage_gb"] as? Double ?? 0) * 1_073_741_824 >= 100_000 * 4096
        }
        try expectHealthy(d, key: key)
        #expect(!d.logText().contains("storage_scan_failed"))

        // A backup goes down as far as a restore could come back (paths of 1024 bytes:
        // 512 levels of "d/"); the level below is reported as left out.
        let archive = d.directory + "/deep.tar"
        let backup = d.ctl("--json", "tenant", "backup", "deep", "--out", archive)
        #expect(backup.status == 0, "\(backup.stderr)")
        let answer = jsonObject(backup.stdout)
        #expect(answer["directories"] as? Int == 512 && answer["left_out"] as? Int == 1, "\(backup.stdout)")
        try FileManager.default.removeItem(atPath: archive)
        let text = d.ctl("tenant", "backup", "deep", "--out", archive)
        #expect(text.stdout.contains("(1 entries left out: names a restore would refuse)"), "\(text.stdout)")

        // The volume is set aside at once, then removed in the background.
        let purge = d.ctl("tenant", "delete", "deep", "--purge")
        #expect(purge.status == 0, "\(purge.stderr)")
        #expect(access(volume, F_OK) != 0)
        try eventually(300, "the purged volume is removed") { d.logText().contains("purged_volume_removed") }
        #expect(try FileManager.default.contentsOfDirectory(atPath: d.volumes).isEmpty)
        #expect(!d.logText().contains("purged_volume_not_removed"))
        #expect(d.process?.isRunning == true)
    }

    @Test func aLinkOutOfTheVolumeIsNotCounted() throws {
        let d = try Daemon()
        defer { d.cleanUp() }
        try d.start()
        let key = try d.tenant("acme")
        let outside = d.directory + "/outside"
        mkdir(outside, 0o755)
        try allocated(outside + "/large", bytes: 256 << 20)
        let volume = d.volumes + "/tenant-acme-data"
        symlink(outside, volume + "/escape")
        symlink("/", volume + "/root")
        d.stop()
        try d.start()
        try eventually(20, "the start-up scan measured the volume") { (usageOf(d, "acme")["storage_gb"] as? Double ?? 0) > 0 }
        let bytes = (usageOf(d, "acme")["storage_gb"] as? Double ?? 0) * 1_073_741_824
        #expect(bytes < 1_048_576, "\(bytes) bytes")
        try expectHealthy(d, key: key)
    }

    @Test func purgeThenCreateStartsFromZero() throws {
        let d = try Daemon(extra: "[ratelimit]\nrate = 1000/second\nburst = 1000")
        defer { d.cleanUp() }
        try d.start()
        var key = try d.tenant("acme")
        #expect(d.ctl("limits", "set", "acme", "--storage-gb", "0.004").status == 0)  // 4.3 MB
        let file = [UInt8](repeating: 7, count: 3 << 20)
        #expect(try raw(d, "PUT", "/v1/files/big.bin", key: key, body: file).status == 200)
        for i in 0..<3 { #expect(try d.call(key: key, body: echo("\(i)")).status == 200) }
        // Purged at once: its last requests and its workers' CPU time are not written yet.
        #expect(d.ctl("tenant", "delete", "acme", "--purge").status == 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: d.volumes).allSatisfy { $0.hasPrefix(".bulkhead-purge-acme-") })

        key = try d.tenant("acme")
        try eventually(10, "everything is written") {
            (try parsePrometheus(try d.call("GET", "/metrics", key: nil).text))["bulkhead_usage_flush_lag_milliseconds"] == 0
        }
        let month = String(UsageTests.today().prefix(7))
        // Nothing of the old tenant (a scan of the new, empty volume may have run).
        let rows = try #require(jsonObject(d.ctl("usage", "export", "--month", month, "--format", "json").stdout)["rows"] as? [[String: Any]])
        #expect(rows.allSatisfy { $0["requests"] as? Int == 0 && $0["compute_seconds"] as? Double == 0 && ($0["storage_bytes"] as? Int ?? 0) <= 4096 },
                "\(rows)")
        let usage = usageOf(d, "acme")
        #expect(usage["requests"] as? Int == 0 && (usage["storage_gb"] as? Double ?? 1) * 1_073_741_824 <= 4096, "\(usage)")
        // No stale storage figure: the same file fits the same quota again.
        #expect(d.ctl("limits", "set", "acme", "--storage-gb", "0.004").status == 0)
        #expect(try raw(d, "PUT", "/v1/files/big.bin", key: key, body: file).status == 200)
    }

    @Test func namesARestoreWouldRefuseAreCountedNotLost() throws {
        let d = try Daemon()
        defer { d.cleanUp() }
        try d.start()
        let key = try d.tenant("acme")
        #expect(try raw(d, "PUT", "/v1/files/kept.txt", key: key, body: Array("kept".utf8)).status == 200)
        let uid = try uidOf(d, "acme")
        let volume = d.volumes + "/tenant-acme-data"
        let root = open(volume, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer { close(root) }
        // A name that is not UTF-8, a FIFO (which a backup must never wait on), and a
        // file in the reserved directory.
        let latin1: [CChar] = [0x63, 0x61, 0x66, -23, 0]  // "caf\u{E9}" in Latin-1
        let made = openat(root, latin1, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        #expect(made >= 0 && fchown(made, uid, uid) == 0)
        close(made)
        #expect(mkfifoat(root, "pipe", 0o600) == 0)
        #expect(mkdirat(root, ".bulkhead", 0o700) == 0 || errno == EEXIST)
        try allocated(volume + "/.bulkhead/notes", bytes: 4096)

        let archive = d.directory + "/acme.tar"
        let backup = d.ctl("--json", "tenant", "backup", "acme", "--out", archive)
        #expect(backup.status == 0, "\(backup.stderr)")
        let answer = jsonObject(backup.stdout)
        #expect(answer["files"] as? Int == 1 && answer["left_out"] as? Int == 2 && answer["skipped"] as? Int == 1, "\(backup.stdout)")
        #expect(d.logText().contains("\"left_out\":2"))
        // What was archived comes back whole.
        #expect(d.ctl("tenant", "delete", "acme", "--purge").status == 0)
        let again = try d.tenant("acme")
        #expect(d.ctl("tenant", "restore", "acme", archive).status == 0)
        #expect(try raw(d, "GET", "/v1/files/kept.txt", key: again).text == "kept")
    }

    @Test func aVolumeOfAnotherUIDIsNeverAdopted() throws {
        let d = try Daemon()
        defer { d.cleanUp() }
        try d.start()
        _ = try d.tenant("first")  // the volumes root exists
        let volume = d.volumes + "/tenant-ghost-data"
        mkdir(volume, 0o700)
        chown(volume, 240_500, 240_500)
        try "someone's".write(toFile: volume + "/data.txt", atomically: false, encoding: .utf8)
        let r = d.ctl("tenant", "create", "ghost")
        #expect(r.status == 1)
        #expect(r.stderr.contains("already exists and belongs to uid 240500"), "\(r.stderr)")
        #expect(d.ctl("tenant", "show", "ghost").status == 1)
        var st = stat()
        #expect(lstat(volume, &st) == 0 && st.st_uid == 240_500)
        #expect(try String(contentsOfFile: volume + "/data.txt", encoding: .utf8) == "someone's")
    }

    @Test func whatAPurgeSetAsideIsRemovedAtStart() throws {
        let d = try Daemon()
        defer { d.cleanUp() }
        try d.start()
        _ = try d.tenant("acme")
        let held = d.volumes + "/.bulkhead-purge-gone-0123456789abcdef"
        mkdir(held, 0o700)
        try nest(held, depth: 5000)
        d.stop()
        try d.start()
        try eventually(60, "what was set aside is removed") { d.logText().contains("purged_volume_removed") }
        #expect(access(held, F_OK) != 0)
        #expect(try FileManager.default.contentsOfDirectory(atPath: d.volumes) == ["tenant-acme-data"])
    }
}
