// From token to principal with an injected clock: revocation and rotation take effect on
// the very next request even when the token's signature check is cached.
import Auth
import Foundation
import Store
import Tenants
import Testing

struct Fixture {
    let secret: Secret
    let issuer: TokenIssuer
    let keys = KeyRegistry()
    let tenants = TenantDirectory()
    let auth: Authenticator
    let cache: CachingVerifier
    static let t0: Int64 = 1_800_000_000

    init() throws {
        secret = try Secret(bytes: Array(repeating: 7, count: 32))
        issuer = TokenIssuer(secret: secret)
        cache = CachingVerifier(verifier: TokenVerifier(secret: secret, policy: VerifierPolicy(issuer: "bulkhead", audience: "bulkhead")))
        auth = Authenticator(verifier: cache, keys: keys, tenants: tenants)
        for (i, id) in ["tenant-a", "tenant-b"].enumerated() {
            tenants.put(TenantRecord(id: id, name: id, status: .active, uid: UInt32(300_000 + i), gid: UInt32(300_000 + i), createdAt: Self.t0))
        }
    }

    func key(_ tenant: String?, jti: String, scopes: [String] = ["process", "dict", "files", "usage"],
             subject: String? = nil, expires: Int64? = nil) -> String {
        keys.put(KeyRecord(jti: jti, tenantID: tenant, kind: tenant == nil ? .admin : .tenant, scopes: scopes,
                           issuedAt: Self.t0, expiresAt: expires))
        return issuer.issue(Claims(issuer: "bulkhead", audience: "bulkhead", subject: subject ?? tenant ?? "admin:ops",
                                   jwtID: jti, issuedAt: Self.t0, expiresAt: expires, notBefore: nil, scopes: scopes))
    }
}

@Suite struct AuthenticatorTests {
    @Test func aValidTenantKeyNamesItsTenantOnly() throws {
        let f = try Fixture()
        let token = f.key("tenant-a", jti: "a1")
        let p = try f.auth.authenticate(token, now: Fixture.t0 + 10).get()
        #expect(p == .tenant(id: "tenant-a", scopes: ["process", "dict", "files", "usage"], keyID: "a1"))
        #expect(p.mayAccess(tenant: "tenant-a"))
        #expect(!p.mayAccess(tenant: "tenant-b"))  // a tenant-A token for tenant B's resources
        #expect(!p.has(scope: "admin"))
    }

    @Test func revocationTakesEffectOnTheNextRequestEvenWhenCached() throws {
        let f = try Fixture()
        let token = f.key("tenant-a", jti: "a1")
        #expect(f.auth.authenticate(token, now: Fixture.t0).isSuccess)
        #expect(f.auth.authenticate(token, now: Fixture.t0).isSuccess)
        #expect(f.cache.hits >= 1)  // the second check came from the cache
        f.keys.put(KeyRecord(jti: "a1", tenantID: "tenant-a", kind: .tenant, scopes: ["process"], issuedAt: Fixture.t0,
                             revokedAt: Fixture.t0 + 1))
        #expect(f.auth.authenticate(token, now: Fixture.t0 + 1) == .failure(.revokedKey))
    }

    @Test func theOldKeyOfARotationWorksInsideItsGraceOnly() throws {
        let f = try Fixture()
        let old = f.key("tenant-a", jti: "old")
        let new = f.key("tenant-a", jti: "new")
        f.keys.put(KeyRecord(jti: "old", tenantID: "tenant-a", kind: .tenant, scopes: ["process"], issuedAt: Fixture.t0,
                             replacedBy: "new", graceUntil: Fixture.t0 + 3600))
        #expect(f.auth.authenticate(old, now: Fixture.t0 + 3599).isSuccess)
        #expect(f.auth.authenticate(old, now: Fixture.t0 + 3600) == .failure(.rotatedKey))
        #expect(f.auth.authenticate(new, now: Fixture.t0 + 3600).isSuccess)
    }

    @Test func suspendedDeletedAndForeignKeysAreRefused() throws {
        let f = try Fixture()
        let token = f.key("tenant-a", jti: "a1")
        f.tenants.put(TenantRecord(id: "tenant-a", name: "a", status: .suspended, uid: 300_000, gid: 300_000, createdAt: Fixture.t0))
        let suspended = f.auth.authenticate(token, now: Fixture.t0)
        #expect(suspended == .failure(.tenantSuspended))
        if case .failure(let e) = suspended { #expect(e.isForbidden) }  // 403, not 401
        // Deleted: its keys are gone from the registry.
        f.keys.remove(["a1"])
        #expect(f.auth.authenticate(token, now: Fixture.t0) == .failure(.unknownKey))
        // A validly signed token whose jti belongs to another tenant's key.
        _ = f.key("tenant-b", jti: "b1")
        let forged = f.issuer.issue(Claims(issuer: "bulkhead", audience: "bulkhead", subject: "tenant-a", jwtID: "b1",
                                           issuedAt: Fixture.t0, expiresAt: nil, notBefore: nil, scopes: []))
        #expect(f.auth.authenticate(forged, now: Fixture.t0) == .failure(.unknownKey))
        // Garbage and expired tokens are typed refusals.
        #expect(f.auth.authenticate("not a token", now: Fixture.t0) == .failure(.invalidToken(.malformed)))
        let expiring = f.key("tenant-b", jti: "b2", expires: Fixture.t0 + 60)
        #expect(f.auth.authenticate(expiring, now: Fixture.t0 + 1000) == .failure(.invalidToken(.expired)))
    }

    @Test func adminKeysAreAdminsAndScopesAreNarrowed() throws {
        let f = try Fixture()
        let admin = f.key(nil, jti: "ad1", scopes: ["admin"], subject: "admin:ops")
        #expect(try f.auth.authenticate(admin, now: Fixture.t0).get() == .admin(name: "ops", keyID: "ad1"))
        let narrow = f.key("tenant-b", jti: "b3", scopes: ["process"])
        let p = try f.auth.authenticate(narrow, now: Fixture.t0).get()
        #expect(p.has(scope: "process"))
        #expect(!p.has(scope: "dict"))
        // A tenant key cannot claim the admin scope.
        let sneaky = f.key("tenant-b", jti: "b4", scopes: ["admin"], subject: "tenant-b")
        #expect(f.auth.authenticate(sneaky, now: Fixture.t0) == .failure(.unknownKey))
    }
}

extension Result {
    var isSuccess: Bool { if case .success = self { true } else { false } }
}
