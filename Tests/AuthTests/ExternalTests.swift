// Conformance: tokens of a configured external issuer (RS256, ES256, EdDSA), its key checks, and algorithm switching between issuers.

import Testing

@testable import Auth

@Suite struct ExternalTests {
    static let rs256Header = #"{"alg":"RS256","typ":"JWT","kid":"idp-1"}"#
    static let es256Header = #"{"alg":"ES256","typ":"JWT"}"#
    static let edDSAHeader = #"{"alg":"EdDSA"}"#

    static func expectedClaims() -> Claims {
        Claims(
            issuer: "https://idp.example", audience: "bulkhead-api", subject: "auth0|5f3c9a", jwtID: "",
            issuedAt: now - 10, expiresAt: now + 3600)
    }

    @Test func rs256TokenIsAccepted() throws {
        let v = verifier(external: try externalIssuer(.rs256, Keys.rsa))
        let result = try accept(Keys.rsa.token(header: Self.rs256Header, payload: externalPayload()), by: v)
        #expect(result == VerifiedToken(source: .external, claims: Self.expectedClaims(), tenantID: "acme-corp"))
        // The same verifier still accepts issued tokens.
        #expect(try accept(hs256(), by: v).source == .issued)
    }

    @Test func es256TokenIsAccepted() throws {
        let v = verifier(external: try externalIssuer(.es256, Keys.p256))
        let token = Keys.p256.token(header: Self.es256Header, payload: externalPayload(["jti": #""ext-7""#, "scope": #""read write""#]))
        #expect(segments(token)[2].count == 86)  // 64 bytes R‖S
        let result = try accept(token, by: v)
        #expect(result.source == .external)
        #expect(result.tenantID == "acme-corp")
        #expect(result.claims.jwtID == "ext-7")
        #expect(result.claims.scopes == ["read", "write"])
    }

    @Test func edDSATokenIsAccepted() throws {
        let v = verifier(external: try externalIssuer(.edDSA, Keys.ed25519))
        let result = try accept(Keys.ed25519.token(header: Self.edDSAHeader, payload: externalPayload()), by: v)
        #expect(result == VerifiedToken(source: .external, claims: Self.expectedClaims(), tenantID: "acme-corp"))
    }

    @Test func externalSignaturesAreChecked() throws {
        let cases: [(ExternalIssuer.Algorithm, KeyPair, KeyPair, String)] = [
            (.rs256, Keys.rsa, Keys.otherRSA, Self.rs256Header),
            (.es256, Keys.p256, KeyPair(.ec(curve: "P-256")), Self.es256Header),
            (.edDSA, Keys.ed25519, KeyPair(.ed25519), Self.edDSAHeader),
        ]
        for (algorithm, key, otherKey, header) in cases {
            let v = verifier(external: try externalIssuer(algorithm, key))
            let token = key.token(header: header, payload: externalPayload())
            let parts = segments(token)
            var text = parts[2]
            var signature = text.withUTF8 { Base64URL.decode($0) }!
            // Flipped bit.
            signature[signature.count / 2] ^= 0x10
            expectRefusal(.badSignature, parts[0] + "." + parts[1] + "." + b64(signature), by: v)
            // Truncated and extended.
            signature[signature.count / 2] ^= 0x10
            expectRefusal(.badSignature, parts[0] + "." + parts[1] + "." + b64(Array(signature.dropLast())), by: v)
            expectRefusal(.badSignature, parts[0] + "." + parts[1] + "." + b64(signature + [0]), by: v)
            // Another payload under this signature.
            expectRefusal(.badSignature, parts[0] + "." + b64(externalPayload(["tenant": #""victim""#])) + "." + parts[2], by: v)
            // Signed by another key of the right type.
            expectRefusal(.badSignature, otherKey.token(header: header, payload: externalPayload()), by: v)
            // Empty.
            expectRefusal(.malformed, parts[0] + "." + parts[1] + ".", by: v)
        }
    }

    @Test func es256SignatureMustBeRawRS() throws {
        let v = verifier(external: try externalIssuer(.es256, Keys.p256))
        // The CLI's DER signature is valid ECDSA, but JWS wants R‖S: refused.
        expectRefusal(.badSignature, Keys.p256.token(header: Self.es256Header, payload: externalPayload(), der: true), by: v)
        let good = Keys.p256.token(header: Self.es256Header, payload: externalPayload())
        let parts = segments(good)
        var text = parts[2]
        let rs = text.withUTF8 { Base64URL.decode($0) }!
        let input = parts[0] + "." + parts[1]
        // r = 0 or s = 0 (the classic "psychic signature", CVE-2022-21449) and both zero.
        expectRefusal(.badSignature, input + "." + b64([UInt8](repeating: 0, count: 32) + rs[32...]), by: v)
        expectRefusal(.badSignature, input + "." + b64(Array(rs[..<32]) + [UInt8](repeating: 0, count: 32)), by: v)
        expectRefusal(.badSignature, input + "." + b64([UInt8](repeating: 0, count: 64)), by: v)
        // r or s ≥ the group order n.
        let ff = [UInt8](repeating: 0xFF, count: 32)
        expectRefusal(.badSignature, input + "." + b64(ff + rs[32...]), by: v)
        expectRefusal(.badSignature, input + "." + b64(Array(rs[..<32]) + ff), by: v)
        // R and S swapped.
        expectRefusal(.badSignature, input + "." + b64(Array(rs[32...] + rs[..<32])), by: v)
        // The DER conversion helper refuses the same shapes on its own.
        #expect(PublicKey.derSignature(rs: [UInt8](repeating: 0, count: 64)) == nil)
        #expect(PublicKey.derSignature(rs: Array(rs.prefix(63))) == nil)
        #expect(PublicKey.derSignature(rs: rs) != nil)
    }

    @Test func algorithmIsFixedByConfiguration() throws {
        let rsVerifier = verifier(external: try externalIssuer(.rs256, Keys.rsa))
        // ES256 / EdDSA tokens, validly signed by their own keys, when RS256 is configured.
        expectRefusal(.algorithmNotAllowed, Keys.p256.token(header: Self.es256Header, payload: externalPayload()), by: rsVerifier)
        expectRefusal(.algorithmNotAllowed, Keys.ed25519.token(header: Self.edDSAHeader, payload: externalPayload()), by: rsVerifier)
        // A valid RS256 token without any external issuer configured.
        expectRefusal(.algorithmNotAllowed, Keys.rsa.token(header: Self.rs256Header, payload: externalPayload()))
        // RS256 signed, but relabelled: the label picks the (only) configured key for that label.
        let rs = segments(Keys.rsa.token(header: Self.rs256Header, payload: externalPayload()))
        expectRefusal(.algorithmNotAllowed, b64(#"{"alg":"PS256"}"#) + "." + rs[1] + "." + rs[2], by: rsVerifier)
        expectRefusal(.algorithmNotAllowed, b64(#"{"alg":"rs256"}"#) + "." + rs[1] + "." + rs[2], by: rsVerifier)
        expectRefusal(.badSignature, b64(#"{"alg":"HS256"}"#) + "." + rs[1] + "." + rs[2], by: rsVerifier)
        expectRefusal(.algorithmNotAllowed, b64(#"{"alg":"none"}"#) + "." + rs[1] + "." + rs[2], by: rsVerifier)
        // jwk / x5c in an otherwise valid external token.
        let withJWK = Keys.rsa.token(header: #"{"alg":"RS256","jwk":{"kty":"RSA"}}"#, payload: externalPayload())
        expectRefusal(.forbiddenHeader, withJWK, by: rsVerifier)
        let withCrit = Keys.rsa.token(header: #"{"alg":"RS256","crit":["exp"]}"#, payload: externalPayload())
        expectRefusal(.unknownCritical, withCrit, by: rsVerifier)
    }

    @Test func externalClaims() throws {
        let v = verifier(external: try externalIssuer(.edDSA, Keys.ed25519))
        func token(_ changes: KeyValuePairs<String, String> = [:], removing: Set<String> = []) -> String {
            Keys.ed25519.token(header: Self.edDSAHeader, payload: externalPayload(changes, removing: removing))
        }
        // The external issuer's iss and aud, not the policy's.
        expectRefusal(.wrongIssuer, token(["iss": #""bulkhead""#]), by: v)
        expectRefusal(.wrongAudience, token(["aud": #""bulkhead""#]), by: v)
        expectRefusal(.wrongAudience, token(["aud": #"["bulkhead-api"]"#]), by: v)
        // The tenant claim.
        expectRefusal(.missingClaim, token(removing: ["tenant"]), by: v)
        for bad in [#""Acme""#, #""-acme""#, #""acme_corp""#, #""""#, "\"" + String(repeating: "a", count: 64) + "\"", "7", "null"] {
            expectRefusal(.badClaim, token(["tenant": bad]), by: v)
        }
        #expect(try accept(token(["tenant": "\"" + String(repeating: "a", count: 63) + "\""]), by: v).tenantID.count == 63)
        #expect(try accept(token(["tenant": #""0""#]), by: v).tenantID == "0")
        // sub: required, any non-empty string; jti and iat optional.
        expectRefusal(.missingClaim, token(removing: ["sub"]), by: v)
        expectRefusal(.badClaim, token(["sub": #""""#]), by: v)
        let minimal = try accept(token(removing: ["iat", "exp"]), by: v)
        #expect(minimal.claims.issuedAt == 0 && minimal.claims.expiresAt == nil && minimal.claims.jwtID == "")
        expectRefusal(.badClaim, token(["jti": "5"]), by: v)
        // The same time rules.
        expectRefusal(.expired, token(["exp": "\(now - 31)"]), by: v)
        expectRefusal(.notYetValid, token(["nbf": "\(now + 31)"]), by: v)
        expectRefusal(.issuedInFuture, token(["iat": "\(now + 31)"]), by: v)
        expectRefusal(.badClaim, token(["exp": "1.5e9"]), by: v)
        // A token with the issued tokens' claims but signed by the external key is an external token.
        expectRefusal(.wrongIssuer, Keys.ed25519.token(header: Self.edDSAHeader, payload: standardPayload), by: v)
    }

    @Test func tenantClaimCanBeSub() throws {
        let issuer = try ExternalIssuer(
            issuer: "https://idp.example", audience: "bulkhead-api", algorithm: .edDSA,
            publicKeyPEM: Keys.ed25519.publicPEM, tenantClaim: "sub")
        let v = verifier(external: issuer)
        let t = Keys.ed25519.token(header: Self.edDSAHeader, payload: externalPayload(["sub": #""acme-corp""#]))
        #expect(try accept(t, by: v).tenantID == "acme-corp")
        expectRefusal(.badClaim, Keys.ed25519.token(header: Self.edDSAHeader, payload: externalPayload()), by: v)
    }

    @Test func publicKeyMustMatchTheAlgorithm() {
        let cases: [(ExternalIssuer.Algorithm, [UInt8], String)] = [
            (.rs256, Keys.p256.publicPEM, "EC key for RS256"),
            (.rs256, Keys.ed25519.publicPEM, "Ed25519 key for RS256"),
            (.rs256, Keys.rsa1024.publicPEM, "1024-bit RSA"),
            (.rs256, Keys.rsaPSS.publicPEM, "RSA-PSS key for RS256"),
            (.es256, Keys.rsa.publicPEM, "RSA key for ES256"),
            (.es256, Keys.p384.publicPEM, "P-384 for ES256"),
            (.es256, Keys.ed25519.publicPEM, "Ed25519 for ES256"),
            (.edDSA, Keys.p256.publicPEM, "EC key for EdDSA"),
            (.edDSA, Keys.ed448.publicPEM, "Ed448 for EdDSA"),
            (.edDSA, Keys.rsa.publicPEM, "RSA for EdDSA"),
            (.rs256, Keys.rsa.privatePEM, "a private key"),
            (.es256, Keys.p256.privatePEM, "a private key"),
            (.rs256, [], "empty"),
            (.rs256, Array("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n".utf8), "garbage"),
            (.edDSA, Array(Keys.ed25519.publicPEM.dropLast(30)), "truncated"),
            (.edDSA, [UInt8](repeating: 0x41, count: 70_000), "huge"),
        ]
        for (algorithm, pem, what) in cases {
            do {
                _ = try ExternalIssuer(issuer: "i", audience: "a", algorithm: algorithm, publicKeyPEM: pem, tenantClaim: "tenant")
                Issue.record("\(what) accepted for \(algorithm.rawValue)")
            } catch {
                #expect(error.code == .badPublicKey, "\(what): \(error)")
            }
        }
    }

    @Test func rightKeysAreAccepted() throws {
        _ = try externalIssuer(.rs256, Keys.rsa)
        _ = try externalIssuer(.es256, Keys.p256)
        _ = try externalIssuer(.edDSA, Keys.ed25519)
        // A 3072-bit key is fine too.
        _ = try externalIssuer(.rs256, KeyPair(.rsa(bits: 3072)))
    }
}
