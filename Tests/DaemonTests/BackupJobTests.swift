// Backups and restores against a hostile tenant and a careless admin: they run off the
// control loop (which keeps answering), a Dict the tenant keeps locked fails its backup
// at the deadline, sparse files cannot make an archive that restore would refuse, the
// tenant is kept out during a restore, only a regular file is taken as the archive, and
// names come back exactly as they were.
import Control
import Foundation
import Glibc
import JSON
import Store
import Testing

/// bulkheadctl started in the background; `finish` waits for it and gives its output.
final class BackgroundCtl {
    private let process = Process()
    private let out = Pipe(), err = Pipe()

    init(_ d: Daemon, _ args: String...) throws {
        process.executableURL = URL(fileURLWithPath: buildDirectory + "/bulkheadctl")
        process.arguments = ["--socket", d.socket] + args
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    var isRunning: Bool { process.isRunning }

    func finish() -> Ran {
        let o = out.fileHandleForReading.readDataToEndOfFile()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Ran(status: process.terminationStatus, stdout: String(decoding: o, as: UTF8.self), stderr: String(decoding: e, as: UTF8.self))
    }
}

/// A pipe; `readEndSeesEOF` polls (with a deadline) until every copy of the write end is closed.
struct TestPipe {
    let read: Int32, write: Int32

    init() throws {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { throw TestFailure("pipe: \(String(cString: strerror(errno)))") }
        read = fds[0]
        write = fds[1]
    }

    func readEndSeesEOF() throws -> Bool {
        var result = false
        try eventually(10, "the daemon closes its copy of the descriptor") {
            var p = pollfd(fd: read, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 0) == 1 else { return false }
            var byte: UInt8 = 0
            result = Glibc.read(read, &byte, 1) == 0
            return true
        }
        return result
    }
}

@Suite(.serialized) struct BackupJobTests {
    @Test func aDictLockedByItsTenantFailsTheBackupWhileTheControlSocketAnswers() throws {
        let d = try Daemon(hostile: true)
        defer { d.cleanUp() }
        try d.start()
        let key = try d.tenant("acme")
        #expect(try raw(d, "PUT", "/v1/dict/greeting", key: key, body: Array("hello".utf8)).status == 201)
        let lock = try d.call(key: key, body: #"{"task":"lock_dict"}"#)
        #expect(lock.status == 200 && ((lock.json["result"] as? [String: Any])?["result"] as? Int ?? -1) > 0, "\(lock.text)")

        var backup = try BackgroundCtl(d, "tenant", "backup", "acme", "--out", d.directory + "/locked.tar")
        // While the job waits on the lock, another job is refused (probed with a quick
        // one, backup-state: should it come first, the backup is refused and started again).
        var probes = 0
        func probe() -> Ran {
            probes += 1
            let path = d.directory + "/probe-\(probes).db"
            defer { unlink(path) }
            return d.ctl("backup-state", "--out", path)
        }
        try eventually(20, "the backup job is running") {
            if !backup.isRunning {
                let early = backup.finish()
                guard early.stderr.contains("already running") else { throw TestFailure("the backup ended early: \(early.stderr)") }
                backup = try BackgroundCtl(d, "tenant", "backup", "acme", "--out", d.directory + "/locked.tar")
            }
            let r = probe()
            return r.status == 1 && r.stderr.contains("already running")
        }
        // Meanwhile the control socket answers, and the job is still running afterwards.
        #expect(d.ctl("status").status == 0)
        #expect(d.ctl("tenant", "show", "acme").status == 0)
        #expect(probe().stderr.contains("already running"))

        let r = backup.finish()
        #expect(r.status == 1)
        #expect(r.stderr.contains("stayed locked for 10 s"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: d.directory + "/locked.tar"))
        // Nothing of the attempt is left in the tenant's volume.
        let left = try FileManager.default.contentsOfDirectory(atPath: d.volumes + "/tenant-acme-data/.bulkhead")
        #expect(left.allSatisfy { !$0.contains("backup") }, "\(left)")
        // Once the tenant lets go (its workers stop), the backup goes through.
        #expect(d.ctl("workers", "kill", "acme").status == 0)
        let again = d.ctl("tenant", "backup", "acme", "--out", d.directory + "/unlocked.tar")
        #expect(again.status == 0, "\(again.stderr)")
    }

    @Test func sparseFilesPastTheQuotaAreRefusedBeforeTheyAreWritten() throws {
        let d = try Daemon(hostile: true)
        defer { d.cleanUp() }
        try d.start()
        let key = try d.tenant("acme")
        #expect(d.ctl("limits", "set", "acme", "--storage-gb", "0.5").status == 0)
        let sparse = try d.call(key: key, body: #"{"task":"sparse","data":3}"#)
        #expect((sparse.json["result"] as? [String: Any])?["result"] as? Int == 3, "\(sparse.text)")

        let r = d.ctl("tenant", "backup", "acme", "--out", d.directory + "/sparse.tar")
        #expect(r.status == 1)
        #expect(r.stderr.contains("refused") && r.stderr.contains("more than a restore accepts")
            && r.stderr.contains("storage quota is 0.5 GiB") && r.stderr.contains("sparse files count at their full size"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: d.directory + "/sparse.tar"))
        #expect(d.logText().contains("tenant_backup_refused"))
    }

    @Test func theTenantIsKeptOutDuringARestoreAndItsDictWorksAfterwards() throws {
        let d = try Daemon(hostile: true)
        defer { d.cleanUp() }
        try d.start()
        var key = try d.tenant("acme")
        #expect(try raw(d, "PUT", "/v1/dict/greeting", key: key, body: Array("hello".utf8)).status == 201)
        let archive = d.directory + "/acme.tar"
        #expect(d.ctl("tenant", "backup", "acme", "--out", archive).status == 0)
        #expect(d.ctl("tenant", "delete", "acme", "--purge").status == 0)
        key = try d.tenant("acme")

        // A request that keeps a worker busy: the restore waits for it to be stopped (the
        // exit grace), and meanwhile every request of the tenant is refused.
        let busy = try d.connect()
        busy.send(request(key: key, body: #"{"task":"hang"}"#))
        try eventually(10, "the worker is busy") {
            (jsonObject(d.ctl("--json", "status").stdout)["pools"] as? [[String: Any]])?.first?["busy"] as? Int == 1
        }
        let restore = try BackgroundCtl(d, "tenant", "restore", "acme", archive)
        // Polled with a task that writes nothing: a write before the restore began would
        // (rightly) make it refuse a volume that is no longer empty.
        var refused: HTTPReply?
        try eventually(10, "requests are refused during the restore") {
            let r = try d.call(key: key, body: #"{"task":"echo","data":1}"#)
            if r.errorCode == "tenant_restoring" { refused = r }
            return refused != nil
        }
        #expect(refused?.status == 503 && refused?.header("Retry-After") == "5")
        #expect(try raw(d, "PUT", "/v1/dict/during", key: key, body: Array("x".utf8)).errorCode == "tenant_restoring")
        #expect(try raw(d, "GET", "/v1/dict/greeting", key: key).errorCode == "tenant_restoring")

        let r = restore.finish()
        #expect(r.status == 0, "\(r.stderr)")
        let greeting = try raw(d, "GET", "/v1/dict/greeting", key: key)
        #expect(greeting.status == 200 && greeting.text == "hello")
        #expect(try raw(d, "PUT", "/v1/dict/after", key: key, body: Array("y".utf8)).status == 201)
        #expect(try raw(d, "GET", "/v1/dict/during", key: key).status == 404)
        // A refused restore clears the mark too.
        #expect(d.ctl("tenant", "restore", "acme", archive).status == 1)  // the volume is not empty
        #expect(try raw(d, "GET", "/v1/dict/after", key: key).text == "y")
    }

    @Test func longNamesWithANewlineComeBackExactly() throws {
        let d = try Daemon()
        defer { d.cleanUp() }
        try d.start()
        let key = try d.tenant("acme")
        let name = String(repeating: "L", count: 110) + "\nrenamed.txt"
        let encoded = String(repeating: "L", count: 110) + "%0Arenamed.txt"
        #expect(try raw(d, "PUT", "/v1/files/" + encoded, key: key, body: Array("newline".utf8)).status == 200)
        let archive = d.directory + "/names.tar"
        #expect(d.ctl("tenant", "backup", "acme", "--out", archive).status == 0)
        #expect(d.ctl("tenant", "delete", "acme", "--purge").status == 0)
        let again = try d.tenant("acme")
        let r = d.ctl("tenant", "restore", "acme", archive)
        #expect(r.status == 0, "\(r.stderr)")
        let volume = d.volumes + "/tenant-acme-data"
        #expect(try FileManager.default.contentsOfDirectory(atPath: volume).filter { !$0.hasPrefix(".") } == [name])
        #expect(try raw(d, "GET", "/v1/files/" + encoded, key: again).text == "newline")
    }

    @Test func backupStateWorksBeforeAnyTenantExists() throws {
        let d = try Daemon()
        defer { d.cleanUp() }
        try d.start()
        #expect(!FileManager.default.fileExists(atPath: d.volumes))
        let copy = d.directory + "/state-copy.db"
        let r = d.ctl("backup-state", "--out", copy)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(try Store(path: copy).tenants().isEmpty)
        // Its temporary copy is gone.
        #expect((try? FileManager.default.contentsOfDirectory(atPath: d.state + "/backup-tmp")) ?? [] == [])
    }

    @Test func onlyARegularFileIsTakenAndAStrayDescriptorIsClosed() throws {
        let d = try Daemon()
        defer { d.cleanUp() }
        try d.start()
        _ = try d.tenant("acme")
        // A pipe as the backup target: refused, and the daemon keeps no copy of it.
        let target = try TestPipe()
        defer { close(target.read) }
        do {
            _ = try ControlClient.call(socket: d.socket, command: "tenant.backup", arguments: JSONObject([("ID", .string("acme"))]),
                                       descriptor: target.write)
            Issue.record("a pipe was taken as the backup target")
        } catch {
            #expect(error.kind == .refused(.badRequest) && error.description.contains("not a regular file"), "\(error.description)")
        }
        close(target.write)
        #expect(try target.readEndSeesEOF())

        // A descriptor sent with a command that takes none is closed unused.
        let stray = try TestPipe()
        defer { close(stray.read) }
        let status = try ControlClient.call(socket: d.socket, command: "status", arguments: JSONObject([]), descriptor: stray.write)
        #expect(status["uptime_seconds"] != nil)
        close(stray.write)
        #expect(try stray.readEndSeesEOF())

        // A pipe as the archive to restore from (bulkheadctl opens /dev/stdin): refused.
        let p = Process()
        p.executableURL = URL(fileURLWithPath: buildDirectory + "/bulkheadctl")
        p.arguments = ["--socket", d.socket, "tenant", "restore", "acme", "/dev/stdin"]
        let input = Pipe(), err = Pipe()
        p.standardInput = input
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        let message = String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        try input.fileHandleForWriting.close()
        #expect(p.terminationStatus == 1 && message.contains("not a regular file"), "\(message)")
    }
}
