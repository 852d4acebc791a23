// Conformance: the compact form, base64url, and the JOSE header (RFC 7515, RFC 8725 §3.1, §3.10, §3.11).

import Testing

@testable import Auth

@Suite struct StructureTests {
    @Test func issuedTokenIsAccepted() throws {
        let c = claims(expiresAt: now + 3600, scopes: ["process", "dict:read"])
        let token = TokenIssuer(secret: secret).issue(c)
        let v = try accept(token)
        #expect(v == VerifiedToken(source: .issued, claims: c, tenantID: "customer-123"))
    }

    @Test func issuedTokenHasTheFixedHeaderAndClaimOrder() throws {
        let c = claims(expiresAt: now + 3600, notBefore: now - 5, scopes: ["a", "b"])
        let token = TokenIssuer(secret: secret).issue(c)
        let s = segments(token)
        #expect(s.count == 3)
        #expect(s[0] == "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9")
        var p = s[1]
        let decoded = p.withUTF8 { Base64URL.decode($0) }.map { String(decoding: $0, as: UTF8.self) }
        #expect(
            decoded
                == #"{"iss":"bulkhead","aud":"bulkhead","sub":"customer-123","jti":"key-1","iat":\#(now - 60),"exp":\#(now + 3600),"nbf":\#(now - 5),"scope":"a b"}"#
        )
        // Optional claims are left out, not written as null.
        let minimal = segments(TokenIssuer(secret: secret).issue(claims()))[1]
        #expect(minimal == b64(standardPayload))
        // Deterministic: the same claims give the same token.
        #expect(TokenIssuer(secret: secret).issue(c) == token)
    }

    @Test func craftedStandardTokenIsAccepted() throws {
        let v = try accept(hs256())
        #expect(v.tenantID == "customer-123")
        #expect(v.claims.jwtID == "key-1")
        #expect(v.claims.expiresAt == nil)
        #expect(v.claims.scopes == [])
    }

    // MARK: Signature

    @Test func flippedSignatureBitIsRefused() {
        let parts = segments(hs256())
        for bit in [0, 7, 100, 255] {
            var mac = hmac(parts[0] + "." + parts[1])
            mac[bit / 8] ^= 1 << UInt8(bit % 8)
            expectRefusal(.badSignature, parts[0] + "." + parts[1] + "." + b64(mac))
        }
    }

    @Test func truncatedSignatureIsRefused() {
        let parts = segments(hs256())
        let mac = hmac(parts[0] + "." + parts[1])
        for n in [31, 16, 1] {
            expectRefusal(.badSignature, parts[0] + "." + parts[1] + "." + b64(Array(mac.prefix(n))))
        }
        // Cutting characters off the text leaves a length that is not base64url, or wrong bits.
        expectRefusal(.malformed, String(hs256().dropLast()))
        // 32 MAC bytes followed by more.
        expectRefusal(.badSignature, parts[0] + "." + parts[1] + "." + b64(mac + [0]))
    }

    @Test func emptySignatureIsRefused() {
        let parts = segments(hs256())
        expectRefusal(.malformed, parts[0] + "." + parts[1] + ".")
    }

    @Test func signatureOfAnotherPayloadIsRefused() {
        let a = segments(hs256())
        let b = segments(hs256(payload: payload(["sub": #""customer-999""#])))
        expectRefusal(.badSignature, a[0] + "." + b[1] + "." + a[2])
    }

    @Test func signatureWithAnotherSecretIsRefused() {
        expectRefusal(.badSignature, hs256(key: Array("another-secret-another-secret-another-secret".utf8)))
    }

    // MARK: alg

    @Test(arguments: ["none", "None", "NONE", "nOnE"])
    func algNoneIsRefused(_ alg: String) {
        let header = #"{"alg":"\#(alg)","typ":"JWT"}"#
        let unsigned = b64(header) + "." + b64(standardPayload)
        // Without a signature the third segment is empty, which is already malformed…
        expectRefusal(.malformed, unsigned + ".")
        // …and with one (a valid HMAC of the input, or anything) the algorithm is refused.
        expectRefusal(.algorithmNotAllowed, hs256(header: header))
        expectRefusal(.algorithmNotAllowed, unsigned + "." + b64("sig"))
    }

    @Test(arguments: [
        #"{"typ":"JWT"}"#, #"{}"#,  // missing
        #"{"alg":"HS384"}"#, #"{"alg":"HS512"}"#, #"{"alg":"hs256"}"#, #"{"alg":"HS256 "}"#, #"{"alg":" HS256"}"#,
        #"{"alg":"HS256\u0000"}"#, #"{"alg":"ＨＳ256"}"#, #"{"alg":""}"#, #"{"alg":"PS256"}"#, #"{"alg":"ES256K"}"#,  // unknown
        #"{"alg":"RS256"}"#, #"{"alg":"ES256"}"#, #"{"alg":"EdDSA"}"#,  // no external issuer configured
        #"{"alg":256}"#, #"{"alg":null}"#, #"{"alg":true}"#, #"{"alg":["HS256"]}"#, #"{"alg":{"name":"HS256"}}"#,  // not a string
    ])
    func algorithmOutsideConfigurationIsRefused(_ header: String) {
        expectRefusal(.algorithmNotAllowed, hs256(header: header))
    }

    @Test func headerWithoutTypAndWithKidIsAccepted() throws {
        _ = try accept(hs256(header: #"{"alg":"HS256"}"#))
        _ = try accept(hs256(header: #"{"kid":"2026-01","alg":"HS256","typ":"JWT"}"#))
        _ = try accept(hs256(header: #"{ "alg" : "HS256" , "x-extra" : [1, {"a": null}] }"#))
    }

    @Test(arguments: [#""jwt""#, #""at+jwt""#, #""JOSE""#, #""""#, "1", "null", #"["JWT"]"#])
    func typOtherThanJWTIsRefused(_ typ: String) {
        expectRefusal(.malformed, hs256(header: #"{"alg":"HS256","typ":\#(typ)}"#))
    }

    // MARK: Header parameters

    @Test(arguments: [
        #""jku":"https://attacker.example/jwks.json""#,
        #""jwk":{"kty":"oct","k":"c2VjcmV0"}"#,
        #""x5u":"https://attacker.example/cert.pem""#,
        #""x5c":["MIIB"]"#,
        #""x5t":"abc""#,
        #""x5t#S256":"abc""#,
        #""jku":null"#,
    ])
    func keyCarryingHeaderIsRefused(_ member: String) {
        expectRefusal(.forbiddenHeader, hs256(header: #"{"alg":"HS256",\#(member)}"#))
    }

    @Test(arguments: [#"["exp"]"#, #"["b64"]"#, "[]", #""exp""#, "null", "42"])
    func critIsRefused(_ crit: String) {
        expectRefusal(.unknownCritical, hs256(header: #"{"alg":"HS256","crit":\#(crit),"exp":1,"b64":false}"#))
    }

    // MARK: Segments and base64url

    @Test(arguments: [
        "", ".", "..", "...", "abc", "abc.def", "a.b.c.d", "a..b", ".a.b", "a.b.",
    ])
    func wrongSegmentStructureIsRefused(_ token: String) {
        expectRefusal(.malformed, token)
    }

    @Test func twoAndFourSegmentsAreRefused() {
        let parts = segments(hs256())
        expectRefusal(.malformed, parts[0] + "." + parts[1])
        expectRefusal(.malformed, parts.joined(separator: ".") + "." + parts[2])
        expectRefusal(.malformed, parts.joined(separator: ".") + ".")
        // A JWE has five.
        expectRefusal(.malformed, parts.joined(separator: ".") + ".AAAA.AAAA")
    }

    @Test func nonBase64URLCharactersAreRefused() {
        let token = hs256()
        let parts = segments(token)
        for (i, part) in parts.enumerated() {
            for bad in ["+", "/", "=", " ", "\n", "*", "é", "\u{0}", "%3D"] {
                var p = parts
                p[i] = String(part.prefix(4)) + bad + String(part.dropFirst(4))
                expectRefusal(.malformed, p.joined(separator: "."))
            }
        }
    }

    @Test func paddingIsRefused() {
        let parts = segments(hs256())
        // The 32-byte MAC is 43 characters; padded it would be 44.
        #expect(parts[2].count == 43)
        expectRefusal(.malformed, parts[0] + "." + parts[1] + "." + parts[2] + "=")
        expectRefusal(.malformed, parts[0] + "=." + parts[1] + "." + parts[2])
        expectRefusal(.malformed, parts[0] + "." + parts[1] + "==." + parts[2])
    }

    @Test func nonCanonicalBase64URLIsRefused() {
        let parts = segments(hs256())
        // The last of 43 characters carries 4 data bits and 2 unused ones; setting an unused bit
        // gives the same bytes under a lenient decoder, so it must be refused.
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        let last = alphabet.firstIndex(of: parts[2].last!)!
        #expect(last & 3 == 0)
        let altered = String(parts[2].dropLast()) + String(alphabet[last | 1])
        expectRefusal(.malformed, parts[0] + "." + parts[1] + "." + altered)
        // Length ≡ 1 (mod 4) cannot be base64 at all.
        expectRefusal(.malformed, parts[0] + "." + parts[1] + "." + parts[2] + "AA")
    }

    // MARK: JSON

    @Test(arguments: [
        "not json", "", "{", #"{"alg":"HS256""#, #"{"alg":"HS256",}"#, #"{'alg':'HS256'}"#, #"{"alg":"HS256"} x"#,
    ])
    func headerThatIsNotJSONIsRefused(_ header: String) {
        let token = hs256(header: header)
        // An empty header encodes to an empty segment, which is refused for that reason.
        expectRefusal(.malformed, token)
    }

    @Test(arguments: ["[]", #"["alg","HS256"]"#, #""HS256""#, "1", "null", "true"])
    func headerThatIsNotAnObjectIsRefused(_ header: String) {
        expectRefusal(.malformed, hs256(header: header))
    }

    @Test func headerWithBadUTF8IsRefused() {
        let header: [UInt8] = Array(#"{"alg":"HS256","kid":""#.utf8) + [0xFF, 0xFE] + Array(#""}"#.utf8)
        expectRefusal(.malformed, hs256(header: header, payload: Array(standardPayload.utf8)))
        let overlong: [UInt8] = Array(#"{"alg":"HS256","kid":""#.utf8) + [0xC0, 0xAF] + Array(#""}"#.utf8)
        expectRefusal(.malformed, hs256(header: overlong, payload: Array(standardPayload.utf8)))
        let bom: [UInt8] = [0xEF, 0xBB, 0xBF] + Array(standardHeader.utf8)
        expectRefusal(.malformed, hs256(header: bom, payload: Array(standardPayload.utf8)))
    }

    @Test(arguments: ["not json", "{", "[]", #""claims""#, "42", "null", #"{"iss":"bulkhead"} {}"#])
    func payloadThatIsNotAJSONObjectIsRefused(_ payload: String) {
        expectRefusal(.malformed, hs256(payload: payload))
    }

    @Test func payloadWithBadUTF8IsRefused() {
        let bad: [UInt8] = Array(payload(["name": #""x"#]).utf8.dropLast(2)) + [0xED, 0xA0, 0x80] + Array(#""}"#.utf8)
        expectRefusal(.malformed, hs256(header: Array(standardHeader.utf8), payload: bad))
    }

    @Test func duplicateNamesAreRefused() {
        expectRefusal(.malformed, hs256(header: #"{"alg":"HS256","alg":"none"}"#))
        expectRefusal(.malformed, hs256(header: #"{"alg":"none","alg":"HS256"}"#))
        for claim in ["iss", "aud", "sub", "jti", "iat"] {
            let doubled = String(standardPayload.dropLast()) + #","\#(claim)":"x"}"#
            expectRefusal(.malformed, hs256(payload: doubled))
        }
        let exp = String(payload(["exp": "\(now + 10)"]).dropLast()) + #","exp":99999999999}"#
        expectRefusal(.malformed, hs256(payload: exp))
        // The same name written with an escape is the same name.
        let escaped = String(standardPayload.dropLast()) + #","\u0073ub":"admin"}"#
        expectRefusal(.malformed, hs256(payload: escaped))
    }

    // MARK: Size

    /// A token of exactly `length` bytes with a valid signature (a padding claim makes up the size).
    func tokenOfLength(_ length: Int) -> String {
        var pad = max(0, (length - 81) * 3 / 4 - 200)
        while true {
            let t = hs256(payload: payload(["pad": "\"" + String(repeating: "x", count: pad) + "\""]))
            if t.utf8.count == length { return t }
            if t.utf8.count > length { return "" }
            pad += 1
        }
    }

    @Test func oversizedTokenIsRefusedBeforeAnyCrypto() throws {
        let big = tokenOfLength(9000)
        #expect(big.utf8.count == 9000)
        // The signature is valid: with a larger cap the very same token verifies…
        var roomy = policy()
        roomy.maxTokenBytes = 10_000
        _ = try TokenVerifier(secret: secret, policy: roomy).verify(big, now: now)
        // …and under the default cap it is too large, not a bad signature or anything parsed.
        expectRefusal(.tooLarge, big)
        // Size is checked first: 9000 bytes of anything, not even a token, is tooLarge too.
        expectRefusal(.tooLarge, String(repeating: "!", count: 9000))
        expectRefusal(.tooLarge, String(repeating: "é", count: 4097))  // 8194 UTF-8 bytes
    }

    @Test func sizeCapIsInclusive() throws {
        let exact = tokenOfLength(8192)
        let over = tokenOfLength(8193)
        try #require(exact.utf8.count == 8192 && over.utf8.count == 8193)
        _ = try accept(exact)
        expectRefusal(.tooLarge, over)
    }

    // MARK: Algorithm confusion

    @Test func hs256SignedWithAPublicKeyIsABadSignature() throws {
        for key in [Keys.rsa, Keys.p256, Keys.ed25519] {
            let forged = TokenIssuer(secret: try Secret(bytes: key.publicPEM)).issue(claims())
            // Without an external issuer, and with one configured for this very key: the HS256
            // path only ever uses the configured secret, never key material.
            expectRefusal(.badSignature, forged)
            let algorithm: ExternalIssuer.Algorithm
            switch key.kind {
            case .rsa: algorithm = .rs256
            case .ec: algorithm = .es256
            default: algorithm = .edDSA
            }
            expectRefusal(.badSignature, forged, by: verifier(external: try externalIssuer(algorithm, key)))
            // The same with the external issuer's claims.
            let externalForged = hs256(payload: externalPayload(), key: key.publicPEM)
            expectRefusal(.badSignature, externalForged, by: verifier(external: try externalIssuer(algorithm, key)))
        }
    }
}

@Suite struct Base64URLTests {
    @Test func roundTripsEveryLength() {
        var rng = SplitMix64(seed: 7)
        for n in 0..<200 {
            let bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &rng) }
            var text = Base64URL.encode(bytes)
            #expect(!text.contains("=") && !text.contains("+") && !text.contains("/"))
            #expect(text.utf8.count == (n * 4 + 2) / 3)
            #expect(text.withUTF8 { Base64URL.decode($0) } == bytes)
        }
    }

    @Test func knownVectors() {
        // RFC 4648 §10, unpadded, base64url alphabet.
        let vectors = ["": "", "f": "Zg", "fo": "Zm8", "foo": "Zm9v", "foob": "Zm9vYg", "fooba": "Zm9vYmE", "foobar": "Zm9vYmFy"]
        for (plain, encoded) in vectors {
            #expect(Base64URL.encode(Array(plain.utf8)) == encoded)
        }
        #expect(Base64URL.encode([0xFB, 0xFF, 0xBF]) == "-_-_")
    }

    @Test(arguments: ["Zg==", "Zh", "Zm9=", "Zm9w", "A", "AAAAA", "Zm+v", "Zm/v", "Zm9v\n", "Zm 9v"])
    func refusesNonCanonicalOrForeignText(_ text: String) {
        var t = text
        let decoded = t.withUTF8 { Base64URL.decode($0) }
        // "Zm9w" is canonical ("fop"); everything else here is refused.
        if text == "Zm9w" { #expect(decoded == Array("fop".utf8)) } else { #expect(decoded == nil) }
    }
}
