// Conformance: registered claims of issued tokens (RFC 7519 §4.1, RFC 8725 §3.8, §3.9) against a fixed clock.

import Testing

@testable import Auth

@Suite struct ClaimTests {
    // MARK: exp

    @Test func expiryWithLeeway() throws {
        // Valid while now < exp + leeway.
        _ = try accept(hs256(payload: payload(["exp": "\(now + 1)"])))
        _ = try accept(hs256(payload: payload(["exp": "\(now - 29)"])))  // inside the 30 s leeway
        expectRefusal(.expired, hs256(payload: payload(["exp": "\(now - 30)"])))  // exactly at the edge
        expectRefusal(.expired, hs256(payload: payload(["exp": "\(now - 31)"])))
        expectRefusal(.expired, hs256(payload: payload(["exp": "\(now - 86_400)"])))
        expectRefusal(.expired, hs256(payload: payload(["exp": "0"])))
    }

    @Test func expEqualToNow() throws {
        let token = hs256(payload: payload(["exp": "\(now)"]))
        // With leeway 0 a token is expired from the second of exp on; with leeway 30 it is still inside.
        expectRefusal(.expired, token, by: verifier(leeway: 0))
        let v = try accept(token, by: verifier(leeway: 30))
        #expect(v.claims.expiresAt == now)
        _ = try accept(hs256(payload: payload(["exp": "\(now + 1)"])), by: verifier(leeway: 0))
    }

    @Test func hugeLeewayDoesNotOverflow() throws {
        let v = verifier(leeway: .max)
        _ = try accept(hs256(payload: payload(["exp": "0", "nbf": "253402300799"])), by: v)
        _ = try accept(hs256(payload: payload(["exp": "1"])), by: v, at: .max - 1)
        expectRefusal(.expired, hs256(payload: payload(["exp": "1"])), by: verifier(leeway: 0), at: .max)
        expectRefusal(.notYetValid, hs256(payload: payload(["nbf": "1", "iat": "0"])), by: verifier(leeway: 0), at: .min)
    }

    // MARK: nbf, iat

    @Test func notBefore() throws {
        _ = try accept(hs256(payload: payload(["nbf": "\(now)"])))
        _ = try accept(hs256(payload: payload(["nbf": "\(now + 30)"])))  // inside the leeway
        expectRefusal(.notYetValid, hs256(payload: payload(["nbf": "\(now + 31)"])))
        expectRefusal(.notYetValid, hs256(payload: payload(["nbf": "\(now + 86_400)"])))
        expectRefusal(.notYetValid, hs256(payload: payload(["nbf": "\(now + 1)"])), by: verifier(leeway: 0))
    }

    @Test func issuedInTheFuture() throws {
        _ = try accept(hs256(payload: payload(["iat": "\(now)"])))
        _ = try accept(hs256(payload: payload(["iat": "\(now + 30)"])))
        expectRefusal(.issuedInFuture, hs256(payload: payload(["iat": "\(now + 31)"])))
        expectRefusal(.issuedInFuture, hs256(payload: payload(["iat": "253402300799"])))
        expectRefusal(.issuedInFuture, hs256(payload: payload(["iat": "\(now + 1)"])), by: verifier(leeway: 0))
    }

    @Test func timeClaimsAreCheckedInOrder() {
        // exp before nbf before iat, whatever the member order.
        let all = payload(["iat": "\(now + 100)", "nbf": "\(now + 100)", "exp": "\(now - 100)"])
        expectRefusal(.expired, hs256(payload: all))
        expectRefusal(.notYetValid, hs256(payload: payload(["iat": "\(now + 100)", "nbf": "\(now + 100)"])))
    }

    static let badNumbers = [
        #""1767225600""#, "1767225600.0", "1767225600.5", "1.7672256e9", "1e3", "1E3", "-1", "-0",
        "1e30", "-1e30", "253402300800", "9223372036854775807", "9223372036854775808",
        "99999999999999999999999999", "true", "null", "[]", "{}", #""""#,
    ]

    @Test(arguments: ["exp", "nbf", "iat"], badNumbers)
    func timeClaimThatIsNotAnIntegerInRangeIsRefused(_ claim: String, _ value: String) {
        expectRefusal(.badClaim, hs256(payload: payload([claim: value])))
    }

    @Test func timeClaimRangeEnds() throws {
        let v = try accept(hs256(payload: payload(["exp": "253402300799", "nbf": "0", "iat": "0"])))
        #expect(v.claims.expiresAt == 253_402_300_799)
        #expect(v.claims.notBefore == 0)
        #expect(v.claims.issuedAt == 0)
    }

    // MARK: iss, aud

    @Test func issuer() {
        expectRefusal(.wrongIssuer, hs256(payload: payload(["iss": #""attacker""#])))
        expectRefusal(.wrongIssuer, hs256(payload: payload(["iss": #""Bulkhead""#])))
        expectRefusal(.wrongIssuer, hs256(payload: payload(["iss": #""bulkhead ""#])))
        expectRefusal(.wrongIssuer, hs256(payload: payload(["iss": #"["bulkhead"]"#])))
        expectRefusal(.wrongIssuer, hs256(payload: payload(["iss": "null"])))
        expectRefusal(.wrongIssuer, hs256(payload: payload(["iss": "1"])))
        expectRefusal(.missingClaim, hs256(payload: payload(removing: ["iss"])))
    }

    @Test func issuerIsComparedByteForByte() throws {
        // "é" precomposed and decomposed are equal Swift strings but different claim values.
        var p = policy()
        p.issuer = "caf\u{E9}"
        let v = TokenVerifier(secret: secret, policy: p)
        _ = try accept(hs256(payload: payload(["iss": "\"caf\u{E9}\""])), by: v)
        expectRefusal(.wrongIssuer, hs256(payload: payload(["iss": "\"cafe\u{301}\""])), by: v)
    }

    @Test func audience() {
        expectRefusal(.wrongAudience, hs256(payload: payload(["aud": #""other-service""#])))
        expectRefusal(.wrongAudience, hs256(payload: payload(["aud": #""""#])))
        expectRefusal(.wrongAudience, hs256(payload: payload(["aud": "42"])))
        expectRefusal(.missingClaim, hs256(payload: payload(removing: ["aud"])))
    }

    @Test(arguments: [#"["bulkhead"]"#, #"["other","bulkhead"]"#, "[]"])
    func audienceArrayIsRefusedDeliberately(_ aud: String) {
        // RFC 7519 allows an array; Bulkhead accepts only a single string (docs/AUTH.md).
        expectRefusal(.wrongAudience, hs256(payload: payload(["aud": aud])))
    }

    // MARK: sub, jti

    @Test func subject() throws {
        expectRefusal(.missingClaim, hs256(payload: payload(removing: ["sub"])))
        for bad in [#""""#, #""acme corp""#, #""a/b""#, #""tenant\n""#, #""ünï""#, "42", "null", #"["a"]"#, "\"" + String(repeating: "a", count: 129) + "\""] {
            expectRefusal(.badClaim, hs256(payload: payload(["sub": bad])))
        }
        for good in ["customer-123", "admin:ops", "ops@example.com", "A.b_c-9", String(repeating: "a", count: 128)] {
            let v = try accept(hs256(payload: payload(["sub": "\"\(good)\""])))
            #expect(v.tenantID == good)
            #expect(v.claims.subject == good)
        }
    }

    @Test func jwtID() throws {
        expectRefusal(.missingClaim, hs256(payload: payload(removing: ["jti"])))
        for bad in [#""""#, "42", "null", "\"" + String(repeating: "j", count: 129) + "\""] {
            expectRefusal(.badClaim, hs256(payload: payload(["jti": bad])))
        }
        let v = try accept(hs256(payload: payload(["jti": "\"" + String(repeating: "ü", count: 128) + "\""])))
        #expect(v.claims.jwtID.count == 128)
    }

    @Test func issuedAtIsRequired() {
        expectRefusal(.missingClaim, hs256(payload: payload(removing: ["iat"])))
    }

    // MARK: scope and others

    @Test func scope() throws {
        #expect(try accept(hs256(payload: payload(["scope": #""process dict:read""#]))).claims.scopes == ["process", "dict:read"])
        #expect(try accept(hs256(payload: payload(["scope": #""""#]))).claims.scopes == [])
        #expect(try accept(hs256(payload: payload(["scope": #"" admin  ""#]))).claims.scopes == ["admin"])
        for bad in [#"["admin"]"#, "1", "null", "true", #"{"admin":true}"#] {
            expectRefusal(.badClaim, hs256(payload: payload(["scope": bad])))
        }
    }

    @Test func unknownClaimsAreIgnored() throws {
        let v = try accept(hs256(payload: payload(["name": #""Acme""#, "admin": "true", "nested": #"{"a":[1,2,{"b":null}]}"#])))
        #expect(v.claims == claims())
    }

    @Test func claimsRoundTripThroughTheIssuer() throws {
        let issuer = TokenIssuer(secret: secret)
        for c in [
            claims(), claims(expiresAt: now + 1), claims(notBefore: now - 1), claims(scopes: ["admin"]),
            claims(subject: "admin:root", jwtID: "k\"\\\u{1}é", issuedAt: 0, expiresAt: 253_402_300_799, notBefore: 0, scopes: ["a", "b", "c"]),
        ] {
            #expect(try accept(issuer.issue(c)).claims == c)
        }
    }

    @Test func checkOrderFollowsTheRules() {
        // iss before aud before sub before jti before times.
        let everythingWrong = payload(["iss": #""x""#, "aud": #""y""#, "sub": #""""#, "jti": "1", "exp": "1"])
        expectRefusal(.wrongIssuer, hs256(payload: everythingWrong))
        expectRefusal(.wrongAudience, hs256(payload: payload(["aud": #""y""#, "sub": #""""#, "exp": "1"])))
        expectRefusal(.badClaim, hs256(payload: payload(["sub": #""""#, "exp": "1"])))
        // The signature is checked before any claim: a wrong key with wrong claims is a bad signature.
        expectRefusal(.badSignature, hs256(payload: everythingWrong, key: Array(repeating: 7, count: 32)))
    }
}
