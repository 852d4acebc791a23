// Backups end to end: a tenant's files and Dict survive backup, `delete --purge`, create
// and restore; hostile archives are refused without touching anything; the daemon's own
// state is copied consistently while it runs.
import Foundation
import Glibc
import Store
import Testing

/// One ustar entry (a test's own, independent of the daemon's writer).
func tarEntry(_ name: String, type: Character = "0", content: [UInt8] = [], link: String = "") -> [UInt8] {
    var b = [UInt8](repeating: 0, count: 512)
    func put(_ s: String, _ at: Int) { for (i, c) in s.utf8.enumerated() { b[at + i] = c } }
    func octal(_ v: Int, _ width: Int) -> String { String(repeating: "0", count: width - 1 - String(v, radix: 8).count) + String(v, radix: 8) }
    put(name, 0)
    put(octal(0o644, 8), 100)
    put(octal(0, 8), 108)
    put(octal(0, 8), 116)
    put(octal(content.count, 12), 124)
    put(octal(0, 12), 136)
    put("        ", 148)
    b[156] = type.asciiValue!
    put(link, 157)
    put("ustar", 257)
    put("00", 263)
    put(octal(b.reduce(0) { $0 + Int($1) }, 7), 148)
    let padding = (512 - content.count % 512) % 512
    return b + content + [UInt8](repeating: 0, count: padding)
}

let tarEnd = [UInt8](repeating: 0, count: 1024)

@Suite(.serialized) struct BackupTests {
    @Test func backupPurgeRestoreGivesBackFilesAndDict() throws {
        let d = try Daemon()
        defer { d.cleanUp() }
        try d.start()
        let key = try d.tenant("acme")
        let big = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        #expect(try raw(d, "PUT", "/v1/files/reports/2026/q4.bin", key: key, body: big).status == 200)
        #expect(try raw(d, "PUT", "/v1/files/" + String(repeating: "n", count: 120) + ".txt", key: key, body: Array("long".utf8)).status == 200)
        #expect(try raw(d, "PUT", "/v1/dict/greeting", key: key, body: Array("hello".utf8), type: "text/plain").status == 201)
        #expect(try raw(d, "PUT", "/v1/dict/binary", key: key, body: (0...255).map(UInt8.init)).status == 201)
        // A link the tenant made to somewhere else is left out, never followed.
        let volume = d.volumes + "/tenant-acme-data"
        symlink("/etc/passwd", volume + "/passwd")

        let archive = d.directory + "/acme.tar"
        let backup = d.ctl("tenant", "backup", "acme", "--out", archive)
        #expect(backup.status == 0, "\(backup.stderr)")
        #expect(backup.stdout.contains("1 links or special files left out"))
        #expect(d.ctl("tenant", "backup", "acme", "--out", archive).status == 1)  // never overwritten
        let tar = try Data(contentsOf: URL(fileURLWithPath: archive))
        #expect(tar.range(of: Data("root:x:0:0".utf8)) == nil)

        let state = d.directory + "/state-copy.db"
        #expect(d.ctl("backup-state", "--out", state).status == 0)
        #expect(try Store(path: state).tenants().map(\.id) == ["acme"])

        #expect(d.ctl("tenant", "delete", "acme", "--purge").status == 0)
        #expect(!FileManager.default.fileExists(atPath: volume))
        let again = try d.tenant("acme")
        let restore = d.ctl("tenant", "restore", "acme", archive)
        #expect(restore.status == 0, "\(restore.stderr)")
        #expect(try raw(d, "GET", "/v1/files/reports/2026/q4.bin", key: again).body == big)
        #expect(try raw(d, "GET", "/v1/files/" + String(repeating: "n", count: 120) + ".txt", key: again).text == "long")
        let greeting = try raw(d, "GET", "/v1/dict/greeting", key: again)
        #expect(greeting.text == "hello" && greeting.header("Content-Type") == "text/plain")
        #expect(try raw(d, "GET", "/v1/dict/binary", key: again).body == (0...255).map(UInt8.init))
        // Everything belongs to the tenant's uid.
        let owner = try FileManager.default.attributesOfItem(atPath: volume + "/reports/2026/q4.bin")[.ownerAccountID] as? NSNumber
        let uid = jsonObject(d.ctl("--json", "tenant", "show", "acme").stdout)["uid"] as? Int
        #expect(owner?.intValue == uid)
        // A second restore into the now full volume is refused.
        #expect(d.ctl("tenant", "restore", "acme", archive).status == 1)
    }

    @Test(arguments: [
        ("absolute path", tarEntry("/etc/evil", content: Array("x".utf8))),
        ("dot-dot", tarEntry("../../escaped", content: Array("x".utf8))),
        ("dot-dot inside", tarEntry("a/../../escaped", content: Array("x".utf8))),
        ("symlink", tarEntry("link", type: "2", link: "/etc")),
        ("hard link", tarEntry("hard", type: "1", link: "/etc/passwd")),
        ("character device", tarEntry("null", type: "3")),
        ("FIFO", tarEntry("fifo", type: "6")),
        ("pax path with dot-dot", tarEntry("PaxHeaders/x", type: "x", content: Array("22 path=../../escaped\n".utf8))
            + tarEntry("innocent", content: Array("x".utf8))),
        ("file then link under it", tarEntry("ok.txt", content: Array("fine".utf8)) + tarEntry("dir/link", type: "2", link: "../..")),
        ("pax length that lies", tarEntry("PaxHeaders/x", type: "x", content: Array("99 path=innocent\n".utf8))
            + tarEntry("innocent", content: Array("x".utf8))),
        ("pax record split on its newline", tarEntry("PaxHeaders/x", type: "x", content: Array("12 path=a\n\n7 path=b\n".utf8))
            + tarEntry("innocent", content: Array("x".utf8))),
        ("pax path not UTF-8", tarEntry("PaxHeaders/x", type: "x", content: Array("12 path=a".utf8) + [0xFF] + Array("b\n".utf8))
            + tarEntry("innocent", content: Array("x".utf8))),
    ] as [(String, [UInt8])])
    func hostileArchivesAreRefused(name: String, entries: [UInt8]) throws {
        let d = try Daemon()
        defer { d.cleanUp() }
        try d.start()
        _ = try d.tenant("acme")
        let archive = d.directory + "/hostile.tar"
        try Data(entries + tarEnd).write(to: URL(fileURLWithPath: archive))
        let r = d.ctl("tenant", "restore", "acme", archive)
        #expect(r.status == 1, "\(name): \(r.stdout)")
        #expect(r.stderr.contains("refused"), "\(name): \(r.stderr)")
        // Nothing outside the volume, nothing in it, no staging left behind.
        #expect(!FileManager.default.fileExists(atPath: d.volumes + "/../escaped"))
        #expect(!FileManager.default.fileExists(atPath: d.state + "/escaped"))
        #expect(!FileManager.default.fileExists(atPath: "/etc/evil"))
        #expect((try? FileManager.default.contentsOfDirectory(atPath: d.volumes + "/tenant-acme-data"))?.isEmpty == true)
        #expect((try FileManager.default.contentsOfDirectory(atPath: d.volumes)).allSatisfy { !$0.hasPrefix(".bulkhead-restore") })
    }

    @Test func aDamagedArchiveIsRefused() throws {
        let d = try Daemon()
        defer { d.cleanUp() }
        try d.start()
        _ = try d.tenant("acme")
        let archive = d.directory + "/bad.tar"
        var bytes = tarEntry("ok.txt", content: Array("fine".utf8)) + tarEnd
        bytes[150] ^= 0x01  // the checksum no longer matches
        try Data(bytes).write(to: URL(fileURLWithPath: archive))
        let r = d.ctl("tenant", "restore", "acme", archive)
        #expect(r.status == 1 && r.stderr.contains("checksum"), "\(r.stderr)")
        try Data(Array(tarEntry("ok.txt", content: Array("fine".utf8)).prefix(600))).write(to: URL(fileURLWithPath: archive))
        #expect(d.ctl("tenant", "restore", "acme", archive).status == 1)
    }
}
