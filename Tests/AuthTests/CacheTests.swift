// CachingVerifier: hits and misses, clock re-checks on every hit, refusals never cached, FIFO bound, and concurrent use.

import Testing

@testable import Auth

@Suite struct CacheTests {
    let issuer = TokenIssuer(secret: secret)

    func cached(capacity: Int = 10_000, leeway: Int64 = 30) -> CachingVerifier {
        CachingVerifier(verifier: verifier(leeway: leeway), capacity: capacity)
    }

    func verify(_ cache: CachingVerifier, _ token: String, at time: Int64 = now) throws(AuthError) -> VerifiedToken {
        try cache.verify(token, now: time)
    }

    @Test func secondVerifyIsAHit() throws {
        let cache = cached()
        let token = issuer.issue(claims(expiresAt: now + 3600, scopes: ["admin"]))
        let first = try verify(cache, token)
        #expect(cache.hits == 0 && cache.misses == 1)
        let second = try verify(cache, token)
        #expect(cache.hits == 1 && cache.misses == 1)
        #expect(first == second)
        // A hit still hands back the jti, so the caller's per-request revocation check works on it.
        #expect(second.claims.jwtID == "key-1")
    }

    @Test func expiredTokenIsRefusedEvenWhenCached() throws {
        let cache = cached()
        let token = issuer.issue(claims(expiresAt: now + 60))
        _ = try verify(cache, token)
        _ = try verify(cache, token, at: now + 60 + 29)  // inside the leeway: a hit
        #expect(cache.hits == 1)
        expectRefusal(.expired, token) { (t: String) throws(AuthError) in try verify(cache, t, at: now + 60 + 30) }
        #expect(cache.hits == 1 && cache.misses == 1)
        // The entry was dropped: the next look-up is a miss.
        _ = try verify(cache, token)
        #expect(cache.hits == 1 && cache.misses == 2)
    }

    @Test func clockIsRecheckedBothWays() throws {
        let cache = cached(leeway: 0)
        let token = issuer.issue(claims(issuedAt: now, notBefore: now))
        _ = try verify(cache, token)
        // The clock stepped back: nbf is ahead now, although the token was cached.
        expectRefusal(.notYetValid, token) { (t: String) throws(AuthError) in try verify(cache, t, at: now - 1) }
        expectRefusal(.issuedInFuture, issuer.issue(claims(issuedAt: now))) { (t: String) throws(AuthError) in
            _ = try verify(cache, t)
            return try verify(cache, t, at: now - 1)
        }
    }

    @Test func modifiedTokenIsAMissAndRefused() throws {
        let cache = cached()
        let token = issuer.issue(claims())
        _ = try verify(cache, token)
        let parts = segments(token)
        let forged = parts[0] + "." + b64(payload(["sub": #""victim""#])) + "." + parts[2]
        expectRefusal(.badSignature, forged) { (t: String) throws(AuthError) in try verify(cache, t) }
        #expect(cache.hits == 0 && cache.misses == 2)
        // One more character of difference is another key too.
        expectRefusal(.badSignature, token + "A") { (t: String) throws(AuthError) in try verify(cache, t) }  // 33 MAC bytes
        #expect(cache.hits == 0 && cache.misses == 3)
    }

    @Test func refusalsAreNotCached() {
        let cache = cached()
        let bad = hs256(key: Array(repeating: 1, count: 32))
        for _ in 0..<3 { expectRefusal(.badSignature, bad) { (t: String) throws(AuthError) in try verify(cache, t) } }
        #expect(cache.hits == 0 && cache.misses == 3)
    }

    @Test func oversizedTokenIsRefusedBeforeHashing() {
        let cache = cached()
        expectRefusal(.tooLarge, String(repeating: "a", count: 8193)) { (t: String) throws(AuthError) in try verify(cache, t) }
        #expect(cache.hits == 0 && cache.misses == 0)
    }

    @Test func capacityEvictsTheOldest() throws {
        let cache = cached(capacity: 2)
        let tokens = (0..<3).map { issuer.issue(claims(jwtID: "k\($0)")) }
        for t in tokens { _ = try verify(cache, t) }
        #expect(cache.misses == 3)
        _ = try verify(cache, tokens[2])
        _ = try verify(cache, tokens[1])
        #expect(cache.hits == 2)
        _ = try verify(cache, tokens[0])  // evicted by tokens[2]
        #expect(cache.misses == 4)
        // tokens[0] came back in place of tokens[1], the oldest then.
        _ = try verify(cache, tokens[1])
        #expect(cache.misses == 5)
    }

    @Test func droppedEntriesDoNotCostCapacity() throws {
        let cache = cached(capacity: 3)
        let expiring = issuer.issue(claims(jwtID: "exp", expiresAt: now + 1))
        let a = issuer.issue(claims(jwtID: "a"))
        let b = issuer.issue(claims(jwtID: "b"))
        let c = issuer.issue(claims(jwtID: "c"))
        _ = try verify(cache, expiring)
        #expect(throws: AuthError.self) { try verify(cache, expiring, at: now + 1000) }  // dropped
        for t in [a, b, c] { _ = try verify(cache, t) }
        // Its ring slot was recycled for c without evicting a or b.
        for t in [a, b, c] { _ = try verify(cache, t) }
        #expect(cache.hits == 3)
    }

    @Test func concurrentUseIsConsistent() async throws {
        let cache = cached(capacity: 16)
        let tokens = (0..<40).map { issuer.issue(claims(subject: "tenant-\($0)", jwtID: "k\($0)")) }
        let bad = hs256(key: Array(repeating: 2, count: 32))
        let perTask = 500
        let ok = await withTaskGroup(of: Bool.self) { group in
            for task in 0..<8 {
                group.addTask {
                    var rng = SplitMix64(seed: UInt64(task))
                    for _ in 0..<perTask {
                        let i = Int.random(in: 0..<tokens.count, using: &rng)
                        if i == 0 {
                            guard (try? cache.verify(bad, now: now)) == nil else { return false }
                        } else {
                            guard (try? cache.verify(tokens[i], now: now))?.tenantID == "tenant-\(i)" else { return false }
                        }
                    }
                    return true
                }
            }
            return await group.reduce(true) { $0 && $1 }
        }
        #expect(ok)
        #expect(cache.hits + cache.misses == 8 * perTask)
        #expect(cache.hits > 0)
    }
}
