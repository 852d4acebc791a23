// The control plane end to end: a real bulkheadd, the real bulkheadctl, a real SQLite
// file, real volumes — and the kernel's word on who is connecting.
import Auth
import Foundation
import Store
import Tenants
import Testing

/// One daemon at a time: each test owns its state directory and processes.
@Suite(.serialized) struct ControlPlaneTests {
    @Test func tenantCreatePrintsExactlyTheSeedsOutputAndProvisionsTheVolume() throws {
        let d = try Daemon()
        defer { d.cleanUp() }
        try d.start()
        let r = d.ctl("tenant", "create", "customer-123", "--name", "Acme Corp")
        #expect(r.status == 0, "\(r.stderr)")
        let lines = r.stdout.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines.count == 3 && lines[2].isEmpty)
        #expect(lines.first == "Created tenant: customer-123")
        #expect(lines.count > 1 && lines[1].hasPrefix("API Key: eyJ"))
        let volume = d.volumes + "/tenant-customer-123-data"
        let attrs = try FileManager.default.attributesOfItem(atPath: volume)
        #expect((attrs[.ownerAccountID] as? NSNumber)?.uint32Value == 240_000)
        #expect((attrs[.posixPermissions] as? NSNumber)?.intValue == 0o700)
        #expect(d.ctl("tenant", "list").stdout.contains("customer-123  Acme Corp  active  240000"))
        let show = d.ctl("--json", "tenant", "show", "customer-123")
        #expect(jsonField(show.stdout, "volume") == d.volumes + "/tenant-customer-123-data")
        // The second tenant gets the next uid; a duplicate id is refused.
        #expect(d.ctl("tenant", "create", "second").status == 0)
        #expect(d.ctl("tenant", "show", "second").stdout.contains("uid: 240001"))
        let dup = d.ctl("tenant", "create", "customer-123")
        #expect(dup.status == 1)
        #expect(dup.stderr == "bulkheadctl: tenant customer-123 already exists\n")
        // Nothing secret in the log.
        let token = String(lines[1].dropFirst("API Key: ".count))
        let signature = String(token.split(separator: ".").last ?? "")
        #expect(!d.logText().contains(signature))
        #expect(!(d.ctl("audit").stdout.contains(signature)))
    }

    @Test func badTenantIdsAreRefusedAndNothingIsCreated() throws {
        let d = try Daemon()
        defer { d.cleanUp() }
        try d.start()
        let before = (try? FileManager.default.contentsOfDirectory(atPath: d.volumes)) ?? []
        for id in ["../x", "a/b", "Upper", "", String(repeating: "a", count: 64), "über", "-x", "x\ny", "."] {
            let r = d.ctl("tenant", "create", id)
            #expect(r.status == 1, "\(id): \(r.stdout)")
            #expect(r.stderr.hasPrefix("bulkheadctl: invalid tenant id"), "\(id): \(r.stderr)")
            #expect(r.stderr.split(separator: "\n").count == 1)
        }
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: d.volumes)) ?? []) == before)
        #expect(d.ctl("tenant", "list").stdout == "(none)\n")
        #expect(d.ctl("audit", "--limit", "3").stdout.contains("refused: bad_request"))
    }

    @Test func lifecycleSuspendResumeDeleteAndPurge() throws {
        let d = try Daemon()
        defer { d.cleanUp() }
        try d.start()
        #expect(d.ctl("tenant", "create", "acme").status == 0)
        #expect(d.ctl("tenant", "suspend", "acme").stdout == "Suspended tenant: acme\n")
        #expect(d.ctl("tenant", "show", "acme").stdout.contains("status: suspended"))
        #expect(d.ctl("tenant", "resume", "acme").stdout == "Resumed tenant: acme\n")
        #expect(d.ctl("tenant", "delete", "acme").status == 0)
        #expect(FileManager.default.fileExists(atPath: d.volumes + "/tenant-acme-data"))  // kept without --purge
        #expect(d.ctl("tenant", "show", "acme").status == 1)
        // Re-created, then purged: the volume goes, links inside are removed, not followed.
        #expect(d.ctl("tenant", "create", "acme").status == 0)
        let outside = d.directory + "/outside.txt"
        try "keep me".write(toFile: outside, atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: d.volumes + "/tenant-acme-data/link", withDestinationPath: outside)
        try FileManager.default.createDirectory(atPath: d.volumes + "/tenant-acme-data/a/b", withIntermediateDirectories: true)
        let purge = d.ctl("tenant", "delete", "acme", "--purge")
        #expect(purge.stdout == "Deleted tenant: acme (volume purged)\n", "\(purge.stderr)")
        #expect(!FileManager.default.fileExists(atPath: d.volumes + "/tenant-acme-data"))
        #expect(try String(contentsOfFile: outside, encoding: .utf8) == "keep me")
        #expect(d.ctl("tenant", "suspend", "nobody").stderr == "bulkheadctl: no tenant nobody\n")
    }

    @Test func keysIssueListRevokeRotate() throws {
        let d = try Daemon()
        defer { d.cleanUp() }
        try d.start()
        let created = d.ctl("--json", "tenant", "create", "acme")
        let firstJTI = try #require(jsonField(created.stdout, "jti"))
        let issued = d.ctl("key", "issue", "acme", "--ttl", "90d", "--scope", "process")
        #expect(issued.status == 0)
        #expect(issued.stdout.hasPrefix("API Key: eyJ"))
        let list = d.ctl("key", "list", "acme")
        #expect(list.stdout.split(separator: "\n").count == 3)  // header + 2 keys
        #expect(!list.stdout.contains("eyJ"))  // never the tokens
        #expect(d.ctl("key", "revoke", firstJTI).stdout == "Revoked key: \(firstJTI)\n")
        #expect(d.ctl("key", "list", "acme").stdout.contains("revoked"))
        let secondJTI = try #require(jsonField(d.ctl("--json", "key", "issue", "acme").stdout, "jti"))
        let rotated = d.ctl("--json", "key", "rotate", secondJTI, "--grace", "1h")
        #expect(rotated.status == 0)
        #expect(d.ctl("key", "list", "acme").stdout.contains("rotating"))
        #expect(d.ctl("key", "rotate", secondJTI).status == 1)  // already rotated
        #expect(d.ctl("key", "revoke", "not-a-key").stderr.contains("32 hex characters"))
        let admin = d.ctl("admin-key", "issue", "--name", "ops")
        #expect(admin.stdout.hasPrefix("API Key: eyJ"))

        // What the request path will see, from the daemon's own database and secret.
        let store = try Store(path: d.state + "/bulkhead.db")
        let secret = try Secret.load(environmentValue: nil, file: d.state + "/jwt.key")
        let auth = Authenticator(
            verifier: CachingVerifier(verifier: TokenVerifier(secret: secret, policy: VerifierPolicy(issuer: "bulkhead", audience: "bulkhead"))),
            keys: KeyRegistry(try store.allKeys()), tenants: TenantDirectory(try store.tenants()))
        let now = Int64(Date().timeIntervalSince1970)
        #expect(auth.authenticate(try #require(apiKey(created.stdout, json: true)), now: now) == .failure(.revokedKey))
        #expect(auth.authenticate(try #require(apiKey(rotated.stdout, json: true)), now: now).isSuccess)
        if case .success(.admin(let name, _)) = auth.authenticate(try #require(apiKey(admin.stdout, json: false)), now: now) {
            #expect(name == "ops")
        } else {
            Issue.record("the admin key is not an admin principal")
        }
    }

    @Test func aPeerThatIsNeitherRootNorAdminIsRefusedAndAudited() throws {
        let d = try Daemon()
        defer { d.cleanUp() }
        try d.start()
        // uid 4242 with gid 0 passes the socket's 0660 root:root permissions, so it is the
        // SO_PEERCRED check that refuses it (the admin group does not exist here).
        let r = d.ctl("status", asUID: 4242)
        #expect(r.status == 1)
        #expect(r.stderr == "bulkheadctl: permission denied: uid 4242 is neither root nor in the admin group\n")
        let audit = d.ctl("audit", "--limit", "5").stdout
        #expect(audit.contains("uid 4242"))
        #expect(audit.contains("control.connect"))
        #expect(audit.contains("refused: forbidden"))
        // The daemon goes on serving root.
        #expect(d.ctl("status").status == 0)
    }

    @Test func bulkheadctlUsageAndUnreachableDaemon() throws {
        let d = try Daemon()
        defer { d.cleanUp() }
        // Not running: one clear line, exit 1, no hang.
        let down = d.ctl("status")
        #expect(down.status == 1)
        #expect(down.stderr == "bulkheadctl: bulkheadd is not running (no control socket at \(d.socket))\n")
        // Usage errors: exit 2; help: exit 0 at every level.
        #expect(run(buildDirectory + "/bulkheadctl", []).status == 2)
        #expect(d.ctl("frobnicate").status == 2)
        #expect(d.ctl("tenant").status == 2)
        #expect(d.ctl("tenant", "create").stderr.hasPrefix("bulkheadctl: missing ID\n"))
        #expect(d.ctl("tenant", "create", "a", "--bogus", "x").status == 2)
        #expect(d.ctl("key", "issue", "a", "--ttl", "forever").status == 2)
        for help in [["--help"], ["tenant", "--help"], ["tenant", "create", "--help"], ["key", "rotate", "--help"], ["audit", "--help"]] {
            let r = run(buildDirectory + "/bulkheadctl", help)
            #expect(r.status == 0, "\(help)")
            #expect(r.stdout.hasPrefix("usage: bulkheadctl"), "\(help)")
        }
    }

    @Test func acknowledgedCreatesSurviveKill9() throws {
        let d = try Daemon()
        defer { d.cleanUp() }
        try d.start()
        // Four clients create tenants as fast as they can; the daemon is killed mid-burst.
        let acknowledged = Acknowledged()
        let group = DispatchGroup()
        for client in 0..<4 {
            DispatchQueue.global().async(group: group) {
                for i in 0..<200 {
                    let id = "burst-\(client)-\(i)"
                    let r = d.ctl("tenant", "create", id)
                    guard r.status == 0 else { return }
                    if let key = apiKey(r.stdout, json: false) { acknowledged.add(id, key) }
                }
            }
        }
        try eventually(60, "some creates acknowledged") { acknowledged.count >= 20 }
        d.kill9()
        group.wait()
        try d.start()
        let store = try Store(path: d.state + "/bulkhead.db")
        #expect(try store.integrityCheck() == "ok")
        let secret = try Secret.load(environmentValue: nil, file: d.state + "/jwt.key")
        let auth = Authenticator(
            verifier: CachingVerifier(verifier: TokenVerifier(secret: secret, policy: VerifierPolicy(issuer: "bulkhead", audience: "bulkhead"))),
            keys: KeyRegistry(try store.allKeys()), tenants: TenantDirectory(try store.tenants()))
        let now = Int64(Date().timeIntervalSince1970)
        let all = acknowledged.all
        #expect(all.count >= 20)
        for (id, key) in all {
            #expect(try store.tenant(id) != nil, "acknowledged tenant \(id) is missing")
            #expect(FileManager.default.fileExists(atPath: d.volumes + "/tenant-\(id)-data"))
            #expect(auth.authenticate(key, now: now) == .success(.tenant(id: id, scopes: ["process", "dict", "files", "usage"],
                                                                         keyID: jwtID(key))))
        }
        #expect(d.stop() == 0)  // SIGTERM: a clean exit
    }
}

final class Acknowledged: @unchecked Sendable {  // guarded by lock
    private let lock = NSLock()
    private var items: [(String, String)] = []
    func add(_ id: String, _ key: String) { lock.withLock { items.append((id, key)) } }
    var count: Int { lock.withLock { items.count } }
    var all: [(String, String)] { lock.withLock { items } }
}

func jsonField(_ text: String, _ key: String) -> String? {
    guard let obj = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any] else { return nil }
    return obj[key] as? String
}

func apiKey(_ text: String, json: Bool) -> String? {
    if json { return jsonField(text, "api_key") }
    return text.split(separator: "\n").first { $0.hasPrefix("API Key: ") }.map { String($0.dropFirst(9)) }
}

/// The jti claim of a token we issued (its payload is our own JSON).
func jwtID(_ token: String) -> String? {
    let parts = token.split(separator: ".")
    guard parts.count == 3 else { return nil }
    var b64 = parts[1].replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
    while b64.count % 4 != 0 { b64 += "=" }
    guard let data = Data(base64Encoded: b64) else { return nil }
    return jsonField(String(decoding: data, as: UTF8.self), "jti")
}

extension Result {
    var isSuccess: Bool { if case .success = self { true } else { false } }
}
