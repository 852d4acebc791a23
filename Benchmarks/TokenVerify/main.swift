// Token verification and issuing throughput, single thread: uncached HS256, cached HS256 (CachingVerifier hit), issue.
// Run: swift build -c release && .build/release/bulkhead-bench-auth [N]
import Auth

enum TokenVerifyBenchmark {
    static func main() {
        let n = CommandLine.arguments.count > 1 ? Int(CommandLine.arguments[1]) ?? 200_000 : 200_000
        let secret = try! Secret(bytes: Array("bench-secret-bench-secret-bench-secret!!".utf8))
        let issuer = TokenIssuer(secret: secret)
        let now: Int64 = 1_767_225_600  // 2026-01-01T00:00:00Z
        let claims = Claims(
            issuer: "bulkhead", audience: "bulkhead", subject: "customer-123",
            jwtID: "0f8c2a6e-6a4b-4f8e-9d7c-3b1e5a9c2d41", issuedAt: now, expiresAt: now + 86_400 * 365,
            scopes: ["process", "dict:read", "dict:write"])
        let token = issuer.issue(claims)
        let verifier = TokenVerifier(secret: secret, policy: VerifierPolicy(issuer: "bulkhead", audience: "bulkhead"))
        let cache = CachingVerifier(verifier: verifier)
        print("token: \(token.utf8.count) bytes, \(n) iterations each, one thread")

        report("verify HS256, uncached", n) { (try? verifier.verify(token, now: now))?.tenantID == "customer-123" }
        report("verify HS256, cached (hit)", n) { (try? cache.verify(token, now: now))?.tenantID == "customer-123" }
        report("issue HS256", n) { issuer.issue(claims) == token }
        print("cache: \(cache.hits) hits, \(cache.misses) misses")
    }

    /// Runs `body` n times after a short warm-up and prints operations per second and time per
    /// operation; `body` says whether the operation gave the expected result (which also keeps
    /// the optimiser from dropping it).
    static func report(_ name: String, _ n: Int, _ body: () -> Bool) {
        var failures = 0
        for _ in 0..<min(n / 10, 10_000) where !body() { failures += 1 }
        let clock = ContinuousClock()
        let start = clock.now
        for _ in 0..<n where !body() { failures += 1 }
        let elapsed = clock.now - start
        if failures > 0 { print("\(name): \(failures) operations gave an unexpected result") }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let perSecond = Double(n) / seconds
        let micros = seconds / Double(n) * 1e6
        print("\(name.padding(30)) \(format(perSecond, 0).leftPadding(10)) /s   \(format(micros, 2).leftPadding(7)) µs/op")
    }

    static func format(_ x: Double, _ decimals: Int) -> String {
        var scale = 1.0
        for _ in 0..<decimals { scale *= 10 }
        let r = (x * scale).rounded() / scale
        let s = decimals == 0 ? String(Int(r)) : String(r)
        guard decimals > 0, let dot = s.firstIndex(of: ".") else { return s }
        let have = s.distance(from: dot, to: s.endIndex) - 1
        return s + String(repeating: "0", count: max(0, decimals - have))
    }
}

extension String {
    fileprivate func padding(_ width: Int) -> String { self + String(repeating: " ", count: max(0, width - count)) }
    fileprivate func leftPadding(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}

TokenVerifyBenchmark.main()
