// Backups (SPEC §9): `tenant backup` writes a tenant's volume as a tar stream into a file
// the admin opened and passed over the control socket; `tenant restore` reads one back
// into the tenant's empty volume; `backup-state` copies the daemon's own SQLite store.
// They run as control jobs (ControlJobs: off the control loop, one at a time).
// The daemon never opens an admin's path itself, so an admin-group member cannot make it
// write where root may write. Walking a volume never follows a link (the tenant controls
// what is in it), and a restore refuses absolute paths, `..`, links, devices and anything
// but files and directories, extracting into a fresh directory that only becomes the
// volume once everything in it has been checked and written.
import Archive
import CBulkhead
import Glibc
import JSON
import Store
import Supervisor
import Wire

extension AdminCommands {
    /// The control commands that run as jobs, each given the file the admin passed.
    public static let jobCommands: Set<String> = ["tenant.backup", "tenant.restore", "backup-state"]

    /// The Dict inside a volume, copied with SQLite's backup API rather than as bytes.
    static let dictPath = FilePath.reserved + "/dict.db"

    /// The most files and directories one archive may hold, so a restore cannot use up
    /// the file system's inodes; a backup past it is refused, as restoring it would be.
    static let maxArchiveEntries = 1_000_000

    /// How long the Dict may stay locked by its tenant before its backup fails.
    static let dictBusySeconds = 10

    func backupTenant(_ id: String, into fd: Int32?) throws(CommandError) -> Answer {
        let fd = try Self.adminFile(fd, writing: true, "tenant backup needs the output file (--out FILE)")
        let record = try existing(id)
        let volume = Volumes.path(root: settings.volumesRoot, prefix: settings.volumePrefix, tenant: id)
        let root = open(volume, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard root >= 0 else { throw CommandError(.notFound, "volume \(volume): \(String(cString: strerror(errno)))") }
        defer { close(root) }
        let quota = storageQuota(id)
        var writer = TarWriter(fd: fd, limits: ArchiveLimits(contentBytes: quota.bytes, entries: Self.maxArchiveEntries))
        var counts = (files: 0, directories: 0, bytes: Int64(0), skipped: 0)
        var leftOut = 0
        do throws(ArchiveError) {
            leftOut = try walk(root, "", &writer, &counts)
            try addDict(root, owner: record, &writer, &counts)
            try writer.finish()
        } catch {
            guard error.code == .overLimit else { throw CommandError(.internal, "backup of \(id) failed: \(error.description)") }
            log.warning("tenant_backup_refused", [("tenant", .string(id)), ("reason", .string(error.description))])
            throw CommandError(.conflict, "backup of \(id) refused: the volume holds \(error.description), more than a restore "
                + "accepts (\(Self.limitsText(quota.gib))); sparse files count at their full size")
        }
        try Self.flush(fd, "backup of \(id)")
        log.info("tenant_backup", [("tenant", .string(id)), ("files", .of(counts.files)), ("bytes", .of(counts.bytes)),
                                   ("skipped", .of(counts.skipped)), ("left_out", .of(leftOut))])
        return Answer(value: .object(JSONObject([
            ("id", .string(id)), ("files", .number(JSONNumber(counts.files))), ("directories", .number(JSONNumber(counts.directories))),
            ("bytes", .number(JSONNumber(counts.bytes))), ("archive_bytes", .number(JSONNumber(writer.bytesWritten))),
            ("skipped", .number(JSONNumber(counts.skipped))), ("left_out", .number(JSONNumber(leftOut))),
        ])), target: id)
    }

    /// Directories and regular files below the directory `dir` (at `prefix`), with the
    /// walker of CBulkhead (VolumeWalk): descriptors only, no link followed, any depth, and
    /// names as the raw bytes they are. Returns how many entries were left out because a
    /// restore could not take them back — a name that is not UTF-8, a path the files API
    /// refuses (over 1024 bytes, a reserved name...); a directory left out counts once, with
    /// what is in it. Any other failure, or a tenant moving a directory under the walk,
    /// fails the backup.
    private func walk(_ dir: Int32, _ prefix: String, _ writer: inout TarWriter,
                      _ counts: inout (files: Int, directories: Int, bytes: Int64, skipped: Int)) throws(ArchiveError) -> Int {
        let entries: VolumeWalk
        do { entries = try VolumeWalk(at: dir) } catch { throw ArchiveError("cannot read the volume: \(error.description)") }
        var directories = [prefix]  // the one being read, after its ancestors
        var leftOut = 0
        while true {
            let next: VolumeWalk.Entry?
            do { next = try entries.next() } catch {
                throw ArchiveError("walking \"\(Self.printable(directories.last!))\": \(error.description)")
            }
            guard let entry = next else { return leftOut }
            let parent = directories.last!
            switch entry.event {
            case .leave:
                directories.removeLast()
                continue
            case .other:
                counts.skipped += 1  // links, sockets, FIFOs: never part of a backup
                continue
            case .directory, .file: break
            }
            // The archive's paths, and so a restore's, are UTF-8.
            guard let name = String(validating: entry.name, as: UTF8.self) else {
                leftOut += 1
                entries.skip()
                continue
            }
            let path = parent.isEmpty ? name : parent + "/" + name
            // The Dict is copied through SQLite (addDict); its WAL files are part of that copy.
            // Uploads in progress (.bulkhead/tmp, formerly .bulkhead-tmp-*) are not files yet.
            if path.hasPrefix(Self.dictPath) || path == FilePath.reserved + "/tmp" || name.hasPrefix(".bulkhead-tmp-") {
                entries.skip()
                continue
            }
            if Self.restorable(path) != nil {
                leftOut += 1
                entries.skip()
                continue
            }
            if entry.event == .directory {
                try writer.directory(path, mode: UInt32(entry.status.st_mode & 0o777), mtime: Int64(entry.status.st_mtim.tv_sec))
                counts.directories += 1
                directories.append(path)
            } else {
                try copyListed(entry, name: name, path: path, &writer, &counts)
            }
        }
    }

    /// The regular file the walk listed, opened without following a link and without
    /// blocking (a FIFO put in its place cannot stall the daemon), and checked to be that
    /// same file.
    private func copyListed(_ entry: VolumeWalk.Entry, name: String, path: String, _ writer: inout TarWriter,
                            _ counts: inout (files: Int, directories: Int, bytes: Int64, skipped: Int)) throws(ArchiveError) {
        let file = openat(entry.directory, name, O_RDONLY | O_NONBLOCK | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC)
        guard file >= 0 else { throw ArchiveError("cannot open \"\(Self.printable(path))\": \(String(cString: strerror(errno)))") }
        defer { close(file) }
        var now = stat()
        guard fstat(file, &now) == 0 else { throw ArchiveError("cannot stat \"\(Self.printable(path))\": \(String(cString: strerror(errno)))") }
        guard (now.st_mode & S_IFMT) == S_IFREG, now.st_dev == entry.status.st_dev, now.st_ino == entry.status.st_ino else {
            throw ArchiveError("\"\(Self.printable(path))\" was replaced while it was archived; try again (tenant suspend first for a quiet volume)")
        }
        try writer.file(path, from: file, size: Int64(now.st_size), mode: UInt32(now.st_mode & 0o777), mtime: Int64(now.st_mtim.tv_sec))
        counts.files += 1
        counts.bytes += Int64(now.st_size)
    }

    /// A consistent copy of the tenant's Dict, if it has one (and it is a regular file of
    /// the tenant's own, not a link to something else). SQLite opens files by name, so
    /// the copy is made by a thread confined to the volume as the tenant (ConfinedThread):
    /// no name the tenant controls can lead it anywhere else. The copy is made beside the
    /// Dict (the only place that thread can write), then handed over as a descriptor.
    private func addDict(_ root: Int32, owner: TenantRecord, _ writer: inout TarWriter,
                         _ counts: inout (files: Int, directories: Int, bytes: Int64, skipped: Int)) throws(ArchiveError) {
        enum Found { case none, skipped, copied(fd: Int32, mtime: Int64), failed(String) }
        var found = Found.none
        do throws(ConfinedThread.Failure) {
            try ConfinedThread.run(in: root, uid: owner.uid, gid: owner.gid) {
                let source = "/" + Self.dictPath
                var st = stat()
                guard lstat(source, &st) == 0 else { return }
                guard (st.st_mode & S_IFMT) == S_IFREG, st.st_uid == owner.uid else {
                    found = .skipped
                    return
                }
                // Named like the Dict's own files, which a backup's walk leaves out; the
                // copies of a backup that the daemon's end cut short go first.
                Self.removeDictCopies()
                let copy = "/" + FilePath.reserved + "/" + Self.dictCopyPrefix + "\(UInt64.random(in: 0...UInt64.max))"
                defer { for suffix in ["", "-journal", "-wal", "-shm"] { unlink(copy + suffix) } }
                do throws(StoreError) {
                    try SQLiteBackup.copy(from: source, to: copy, followLinks: false, busySeconds: Self.dictBusySeconds)
                } catch {
                    found = .failed(error.message)
                    return
                }
                let fd = open(copy, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)  // a FIFO put there would not block
                guard fd >= 0 else {
                    found = .failed("the copy could not be read: \(String(cString: strerror(errno)))")
                    return
                }
                found = .copied(fd: fd, mtime: Int64(st.st_mtim.tv_sec))
            }
        } catch {
            throw ArchiveError("the Dict could not be copied: \(error.description)")
        }
        switch found {
        case .none: return
        case .skipped:
            counts.skipped += 1
        case .failed(let why):
            throw ArchiveError("the Dict could not be copied: \(why)")
        case .copied(let file, let mtime):
            defer { close(file) }
            var st = stat()
            guard fstat(file, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { throw ArchiveError("the Dict copy could not be read") }
            try writer.file(Self.dictPath, from: file, size: Int64(st.st_size), mode: 0o600, mtime: mtime)
            counts.files += 1
            counts.bytes += Int64(st.st_size)
        }
    }

    /// The Dict's copies in `.bulkhead`: named like its own files (`dict.db…`).
    private static let dictCopyPrefix = "dict.db-backup-"

    /// Dict copies left in `/.bulkhead` (on a thread confined to the volume).
    private static func removeDictCopies() {
        guard let d = opendir("/" + FilePath.reserved) else { return }
        var stale: [String] = []
        while let entry = readdir(d) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name.hasPrefix(dictCopyPrefix) { stale.append(name) }
        }
        closedir(d)
        for name in stale { unlink("/" + FilePath.reserved + "/" + name) }
    }

    /// A consistent copy of the daemon's own store (tenants, keys, limits, usage, audit).
    func backupState(into fd: Int32?) throws(CommandError) -> Answer {
        let fd = try Self.adminFile(fd, writing: true, "backup-state needs the output file (--out FILE)")
        let scratch = try scratchDirectory()
        defer { _ = bh_remove_tree(scratch) }
        let temporary = scratch + "/state.db"
        do { try store.backup(to: temporary) } catch { throw storeError(error, "state backup") }
        let source = open(temporary, O_RDONLY | O_CLOEXEC)
        guard source >= 0 else { throw CommandError(.internal, "the state copy could not be read") }
        defer { close(source) }
        var total = 0
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let n = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else { throw CommandError(.internal, "reading the state copy failed") }
            if n == 0 { break }
            var done = 0
            while done < n {
                let w = buffer.withUnsafeBytes { write(fd, $0.baseAddress! + done, n - done) }
                if w < 0 && errno == EINTR { continue }
                guard w > 0 else { throw CommandError(.internal, "writing the backup failed: \(String(cString: strerror(errno)))") }
                done += w
            }
            total += n
        }
        try Self.flush(fd, "backup-state")
        log.info("state_backup", [("bytes", .of(total))])
        return Answer(value: .object(JSONObject([("bytes", .number(JSONNumber(total)))])))
    }

    /// The file the admin passed: a regular file (a pipe or a socket could hold a job up
    /// for ever), open for writing or for reading as the command needs.
    private static func adminFile(_ fd: Int32?, writing: Bool, _ missing: String) throws(CommandError) -> Int32 {
        guard let fd else { throw CommandError(.badRequest, missing) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw CommandError(.badRequest, "the file passed is not a regular file (a pipe, socket or device is refused)")
        }
        let access = fcntl(fd, F_GETFL) & O_ACCMODE
        guard access == O_RDWR || access == (writing ? O_WRONLY : O_RDONLY) else {
            throw CommandError(.badRequest, "the file passed is not open for \(writing ? "writing" : "reading")")
        }
        return fd
    }

    /// The admin's file on disk, or an error: a backup that may not have reached the disk did not succeed.
    private static func flush(_ fd: Int32, _ what: String) throws(CommandError) {
        guard fsync(fd) == 0 else {
            throw CommandError(.internal, "\(what): the file could not be flushed: \(String(cString: strerror(errno)))")
        }
    }

    /// An empty directory under state_dir for a job's temporary copies (root's, 0700).
    /// Jobs run one at a time, so whatever is there was left by one that the daemon's end
    /// cut short: it goes.
    private func scratchDirectory() throws(CommandError) -> String {
        let stateDir = String(store.path[..<(store.path.lastIndex(of: "/") ?? store.path.startIndex)])
        let path = (stateDir.isEmpty ? "." : stateDir) + "/backup-tmp"
        _ = bh_remove_tree(path)
        guard mkdir(path, 0o700) == 0 else {
            throw CommandError(.internal, "cannot create \(path): \(String(cString: strerror(errno)))")
        }
        return path
    }

    /// The tenant's storage quota, in GiB as configured and in bytes.
    private func storageQuota(_ id: String) -> (gib: Double, bytes: Int64) {
        let quota = admission.limitTable.limits(for: id).storageGB
        return (quota, Int64(max(0, min(quota * 1_073_741_824, Double(Int64.max / 2)))))
    }

    private static func limitsText(_ gib: Double) -> String {
        let quota = gib == gib.rounded() ? String(Int64(gib)) : String(gib)
        return "the tenant's storage quota is \(quota) GiB, and at most \(maxArchiveEntries) files and directories"
    }

    // MARK: Restore

    func restoreTenant(_ id: String, from fd: Int32?) throws(CommandError) -> Answer {
        let fd = try Self.adminFile(fd, writing: false, "tenant restore needs the archive (FILE)")
        let record = try existing(id)
        // From here until the end, whatever it is, the tenant's requests get 503
        // tenant_restoring: no worker starts, writes into the volume or keeps it open.
        guard directory.beginRestore(id) else { throw CommandError(.conflict, "\(id) is already being restored") }
        defer { directory.endRestore(id) }
        guard supervisor.stopTenant(id) else { throw CommandError(.conflict, "the tenant's workers did not stop; try again") }
        let volume = Volumes.path(root: settings.volumesRoot, prefix: settings.volumePrefix, tenant: id)
        guard Self.isEmptyOrMissing(volume) else {
            throw CommandError(.conflict, "volume \(volume) is not empty: restore goes into a new or emptied volume (tenant delete --purge, tenant create)")
        }
        removeStaging()
        let quota = storageQuota(id)
        let limits = ArchiveLimits(contentBytes: quota.bytes, entries: Self.maxArchiveEntries)
        let staging = settings.volumesRoot + "/" + Self.stagingPrefix + "\(id)-\(UInt64.random(in: 0...UInt64.max))"
        guard mkdir(staging, 0o700) == 0 else {
            throw CommandError(.internal, "cannot create \(staging): \(String(cString: strerror(errno)))")
        }
        var counts = (files: 0, directories: 0, bytes: Int64(0))
        do throws(ArchiveError) {
            let root = open(staging, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            guard root >= 0 else { throw ArchiveError("cannot open \(staging)") }
            defer { close(root) }
            try extract(from: fd, into: root, uid: record.uid, gid: record.gid, limits: limits, &counts)
            guard fchown(root, record.uid, record.gid) == 0, fchmod(root, 0o700) == 0 else {
                throw ArchiveError("cannot give the volume to uid \(record.uid)")
            }
        } catch {
            _ = bh_remove_tree(staging)
            log.warning("tenant_restore_refused", [("tenant", .string(id)), ("reason", .string(error.description))])
            let why = error.code == .overLimit ? "the archive holds \(error.description) (\(Self.limitsText(quota.gib)))" : error.description
            throw CommandError(.badRequest, "restore of \(id) refused, nothing changed: \(why)")
        }
        // All checked and written: the staging directory becomes the volume. A worker
        // that a request admitted just before the restore began may have started since:
        // stopped again, and the swap never merges into a volume written meanwhile.
        guard supervisor.stopTenant(id) else {
            _ = bh_remove_tree(staging)
            throw CommandError(.conflict, "restore of \(id): the tenant's workers did not stop; nothing changed, try again")
        }
        do throws(CommandError) { try Self.swap(staging, into: volume) } catch {
            _ = bh_remove_tree(staging)
            throw CommandError(error.code, "restore of \(id): \(error.message)")
        }
        // One started between the two would have the old, now removed directory as its root.
        _ = supervisor.stopTenant(id)
        guard directory.tenant(id)?.uid == record.uid else {
            _ = bh_remove_tree(volume)  // a restore of a tenant deleted meanwhile leaves nothing
            throw CommandError(.conflict, "restore of \(id): the tenant was deleted during the restore; nothing restored")
        }
        meter.storageChanged(id, by: counts.bytes)
        log.info("tenant_restored", [("tenant", .string(id)), ("files", .of(counts.files)), ("bytes", .of(counts.bytes))])
        return Answer(value: .object(JSONObject([
            ("id", .string(id)), ("files", .number(JSONNumber(counts.files))),
            ("directories", .number(JSONNumber(counts.directories))), ("bytes", .number(JSONNumber(counts.bytes))),
        ])), target: id)
    }

    /// Staging directories sit beside the volumes (the same file system, for rename).
    private static let stagingPrefix = ".bulkhead-restore-"

    /// Staging directories of restores that the daemon's end cut short (one restore runs
    /// at a time, so none is in use). Tenants cannot write to the volumes root.
    private func removeStaging() {
        guard let d = opendir(settings.volumesRoot) else { return }
        var stale: [String] = []
        while let entry = readdir(d) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name.hasPrefix(Self.stagingPrefix) { stale.append(name) }
        }
        closedir(d)
        for name in stale { _ = bh_remove_tree(settings.volumesRoot + "/" + name) }
    }

    /// `staging` becomes `volume`, which must be empty or missing: removed, then replaced
    /// by a rename that fails rather than land on anything created there meanwhile.
    private static func swap(_ staging: String, into volume: String) throws(CommandError) {
        if rmdir(volume) != 0 && errno != ENOENT {
            if errno == ENOTEMPTY || errno == EEXIST {
                throw CommandError(.conflict, "the volume was written to during the restore; nothing changed, try again")
            }
            throw CommandError(.internal, "cannot replace the volume: \(String(cString: strerror(errno)))")
        }
        let r = bh_rename_noreplace(AT_FDCWD, staging, AT_FDCWD, volume)
        if r == -EEXIST { throw CommandError(.conflict, "the volume was created again during the restore; nothing changed, try again") }
        guard r == 0 else {
            throw CommandError(.internal, "cannot move the restored volume into place: \(String(cString: strerror(-r)))")
        }
    }

    private static func isEmptyOrMissing(_ path: String) -> Bool {
        guard let d = opendir(path) else { return errno == ENOENT }
        defer { closedir(d) }
        while let entry = readdir(d) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name != "." && name != ".." { return false }
        }
        return true
    }

    /// Every entry of the archive into the directory `root`, owned by uid/gid.
    private func extract(from fd: Int32, into root: Int32, uid: UInt32, gid: UInt32, limits: ArchiveLimits,
                         _ counts: inout (files: Int, directories: Int, bytes: Int64)) throws(ArchiveError) {
        var reader = TarReader(fd: fd, limits: limits)
        while let entry = try reader.next() {
            var path = entry.path
            while path.hasSuffix("/") { path.removeLast() }
            if path.hasPrefix("./") { path.removeFirst(2) }
            if path.isEmpty || path == "." { try reader.skip(); continue }
            if let problem = Self.restorable(path) { throw ArchiveError("entry \"\(Self.printable(path))\": \(problem)") }
            let parts = path.split(separator: "/").map(String.init)
            let parent = try directory(root, Array(parts.dropLast()), uid: uid, gid: gid, &counts)
            defer { if parent != root { close(parent) } }
            switch entry.type {
            case .directory:
                let d = try directory(parent, [parts.last!], uid: uid, gid: gid, &counts)
                close(d)
            case .file:
                counts.bytes += entry.size
                let file = openat(parent, parts.last!, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
                guard file >= 0 else { throw ArchiveError("entry \"\(Self.printable(path))\": \(String(cString: strerror(errno)))") }
                defer { close(file) }
                try reader.read { (piece: [UInt8]) throws(ArchiveError) in
                    var done = 0
                    while done < piece.count {
                        let n = piece.withUnsafeBytes { write(file, $0.baseAddress! + done, $0.count - done) }
                        if n < 0 && errno == EINTR { continue }
                        guard n > 0 else { throw ArchiveError("writing \(path): \(String(cString: strerror(errno)))") }
                        done += n
                    }
                }
                guard fchown(file, uid, gid) == 0, fsync(file) == 0 else { throw ArchiveError("finishing \(path) failed") }
                counts.files += 1
            case .link, .symlink:
                throw ArchiveError("entry \"\(Self.printable(path))\" is a link: refused (a volume holds only files and directories)")
            case .other(let t):
                throw ArchiveError("entry \"\(Self.printable(path))\" is not a file or a directory (type \(Self.printable(String(UnicodeScalar(t))))): refused")
            }
        }
    }

    /// Walks (creating as needed) the directories `parts` below `base`; the last one's
    /// descriptor (the caller closes it unless it is `base`).
    private func directory(_ base: Int32, _ parts: [String], uid: UInt32, gid: UInt32,
                           _ counts: inout (files: Int, directories: Int, bytes: Int64)) throws(ArchiveError) -> Int32 {
        var current = base
        for part in parts {
            if mkdirat(current, part, 0o700) == 0 {
                counts.directories += 1
            } else if errno != EEXIST {
                throw ArchiveError("cannot create directory \(Self.printable(part)): \(String(cString: strerror(errno)))")
            }
            let next = openat(current, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            if current != base { close(current) }
            guard next >= 0 else { throw ArchiveError("\(Self.printable(part)) is not a directory") }
            guard fchown(next, uid, gid) == 0 else { throw ArchiveError("cannot give \(Self.printable(part)) to uid \(uid)") }
            current = next
        }
        return current
    }

    /// Why `path` may not be restored, or nil: the files API's rules, plus the Dict.
    static func restorable(_ path: String) -> String? {
        if path == FilePath.reserved || path == dictPath { return nil }
        if path.hasPrefix("/") { return "an absolute path: refused" }
        if path.split(separator: "/", omittingEmptySubsequences: false).contains("..") { return "leaves the volume (..): refused" }
        return FilePath.check(path)
    }
}
