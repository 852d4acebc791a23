// Seeded mutation fuzzing of the verifier (~20,000 tokens): never a crash, every refusal typed and quiet about the token, every acceptance correct by an independent check.

import Foundation
import Testing

@testable import Auth

@Suite struct FuzzTests {
    /// Bytes a mutation likes to insert: the separators, padding, standard-base64 characters,
    /// base64url characters and a few non-ASCII ones.
    static let interesting: [String] = [".", "=", "+", "/", "-", "_", "A", "z", "0", " ", "\u{0}", "é", "%", "\n"]
    /// JSON material for payload and header mutations that are then validly re-signed.
    static let jsonBits: [String] = [
        "{", "}", "[", "]", ":", ",", "\"", "\\", "\\u0000", "\\ud800", "0", "-", "1e30", ".5", "null", "true",
        #""alg""#, #""none""#, #""HS256""#, #""crit""#, #""jku""#, #""exp""#, #""iss""#, #""aud""#, #""sub""#, "\u{FF}",
    ]

    static let es256Header = #"{"alg":"ES256","typ":"JWT"}"#

    /// An independent acceptance check: Foundation's base64 and JSON, recomputed HMAC, the claim rules.
    static func acceptanceIsCorrect(_ token: String, _ result: VerifiedToken, esSeed: String) -> Bool {
        let parts = token.split(separator: ".", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3, token.utf8.count <= 8192 else { return false }
        func decode(_ s: String) -> Data? {
            var t = s.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
            while t.count % 4 != 0 { t += "=" }
            return Data(base64Encoded: t)
        }
        guard let h = decode(parts[0]), let p = decode(parts[1]), let s = decode(parts[2]) else { return false }
        // Canonical: the decoded bytes encode back to exactly the received text.
        guard b64([UInt8](h)) == parts[0], b64([UInt8](p)) == parts[1], b64([UInt8](s)) == parts[2] else { return false }
        guard let header = try? JSONSerialization.jsonObject(with: h) as? [String: Any],
            let claims = try? JSONSerialization.jsonObject(with: p) as? [String: Any],
            let alg = header["alg"] as? String
        else { return false }
        for forbidden in ["jku", "jwk", "x5u", "x5c", "x5t", "x5t#S256", "crit"] where header[forbidden] != nil { return false }
        switch alg {
        case "HS256":
            guard result.source == .issued, [UInt8](s) == hmac(parts[0] + "." + parts[1]) else { return false }
            guard claims["iss"] as? String == "bulkhead", claims["aud"] as? String == "bulkhead" else { return false }
            guard claims["jti"] is String, claims["iat"] is NSNumber, result.tenantID == claims["sub"] as? String else { return false }
        case "ES256":
            // No private key here: the only acceptable ES256 token is the one the CLI signed.
            guard result.source == .external, token == esSeed, result.tenantID == "acme-corp" else { return false }
        default:
            return false
        }
        if let exp = claims["exp"] as? NSNumber, !(now < exp.int64Value + 30) { return false }
        if let nbf = claims["nbf"] as? NSNumber, now + 30 < nbf.int64Value { return false }
        if let iat = claims["iat"] as? NSNumber, iat.int64Value > now + 30 { return false }
        return result.claims.issuer == claims["iss"] as? String && result.claims.subject == claims["sub"] as? String
    }

    static func mutate(_ token: String, _ rng: inout SplitMix64) -> String {
        var chars = Array(token.unicodeScalars)
        let rounds = Bool.random(using: &rng) ? 1 : Int.random(in: 2...4, using: &rng)
        for _ in 0..<rounds {
            let at = chars.isEmpty ? 0 : Int.random(in: 0..<chars.count, using: &rng)
            let pick = interesting.randomElement(using: &rng)!.unicodeScalars
            switch Int.random(in: 0..<8, using: &rng) {
            case 0 where !chars.isEmpty: chars[at] = pick.first!
            case 1: chars.insert(contentsOf: pick, at: at)
            case 2 where !chars.isEmpty: chars.remove(at: at)
            case 3: chars = Array(chars.prefix(at))
            case 4 where !chars.isEmpty:
                // Flip a low bit of a character, keeping it in the base64url alphabet most of the time.
                let c = chars[at].value
                if let s = Unicode.Scalar(c ^ 1) { chars[at] = s }
            case 5:
                let end = min(chars.count, at + Int.random(in: 1...12, using: &rng))
                chars.insert(contentsOf: chars[at..<end], at: at)
            case 6:
                var parts = String(String.UnicodeScalarView(chars)).split(separator: ".", omittingEmptySubsequences: false)
                if parts.count >= 2 { parts.swapAt(0, Int.random(in: 1..<parts.count, using: &rng)) }
                chars = Array(parts.joined(separator: ".").unicodeScalars)
            default:
                let big = String(repeating: "A", count: Int.random(in: 1...9000, using: &rng))
                chars.insert(contentsOf: big.unicodeScalars, at: at)
            }
        }
        return String(String.UnicodeScalarView(chars))
    }

    /// Mutates the decoded JSON of the header or the payload, then signs it validly with HS256,
    /// so the mutation reaches the header and claim rules instead of stopping at the signature.
    static func mutateAndResign(_ header: String, _ payload: String, _ rng: inout SplitMix64) -> String {
        var h = Array(header.utf8)
        var p = Array(payload.utf8)
        let rounds = Int.random(in: 1...3, using: &rng)
        for _ in 0..<rounds {
            let onHeader = Int.random(in: 0..<4, using: &rng) == 0
            var doc = onHeader ? h : p
            let at = doc.isEmpty ? 0 : Int.random(in: 0..<doc.count, using: &rng)
            let bit = Array(jsonBits.randomElement(using: &rng)!.utf8)
            switch Int.random(in: 0..<4, using: &rng) {
            case 0 where !doc.isEmpty: doc.replaceSubrange(at..<min(doc.count, at + bit.count), with: bit)
            case 1: doc.insert(contentsOf: bit, at: at)
            case 2 where !doc.isEmpty: doc.remove(at: at)
            default:
                // Change a digit: moves times across the window and out of range.
                if let i = doc.indices.filter({ (0x30...0x39).contains(doc[$0]) }).randomElement(using: &rng) {
                    doc[i] = UInt8.random(in: 0x30...0x39, using: &rng)
                }
            }
            if onHeader { h = doc } else { p = doc }
        }
        return hs256(header: h, payload: p)
    }

    @Test func mutatedTokensNeverCrashAndAreJudgedCorrectly() throws {
        let v = verifier(external: try externalIssuer(.es256, Keys.p256))
        let esSeed = Keys.p256.token(header: Self.es256Header, payload: externalPayload())
        let issued = TokenIssuer(secret: secret)
        let headers = [standardHeader, #"{"alg":"HS256"}"#, #"{"kid":"k1","alg":"HS256","typ":"JWT"}"#]
        let payloads = [
            standardPayload,
            payload(["exp": "\(now + 5)", "nbf": "\(now - 5)", "scope": #""a b c""#]),
            payload(["exp": "\(now - 25)", "iat": "\(now + 25)"]),
        ]
        let seeds =
            [esSeed, issued.issue(claims()), issued.issue(claims(expiresAt: now + 1, scopes: ["admin"]))]
            + headers.flatMap { h in payloads.map { hs256(header: h, payload: $0) } }
        for seed in seeds { _ = try v.verify(seed, now: now) }

        var rng = SplitMix64(seed: 0xB01C_4EAD)
        var outcomes: [String: Int] = [:]
        var wrongAcceptances = 0
        let total = 20_000
        for i in 0..<total {
            let token: String
            if i % 3 == 0 {
                token = Self.mutateAndResign(headers.randomElement(using: &rng)!, payloads.randomElement(using: &rng)!, &rng)
            } else {
                token = Self.mutate(seeds.randomElement(using: &rng)!, &rng)
            }
            do {
                let result = try v.verify(token, now: now)
                outcomes["accepted", default: 0] += 1
                if !Self.acceptanceIsCorrect(token, result, esSeed: esSeed) {
                    wrongAcceptances += 1
                    Issue.record("wrongly accepted: \(token)")
                }
            } catch {
                outcomes[error.code.rawValue, default: 0] += 1
                expectNoLeak(error, token: token)
            }
        }
        #expect(wrongAcceptances == 0)
        // The fuzz reached every layer: most refusal kinds occur, and some mutants are valid.
        #expect(outcomes["accepted", default: 0] > 100, "\(outcomes)")
        for code: AuthError.Code in [.tooLarge, .malformed, .badSignature, .algorithmNotAllowed, .badClaim, .expired] {
            #expect(outcomes[code.rawValue, default: 0] > 0, "\(code.rawValue) never occurred: \(outcomes)")
        }
        #expect(outcomes.values.reduce(0, +) == total)
    }

    @Test func randomBytesNeverCrash() {
        let v = verifier(external: try? externalIssuer(.edDSA, Keys.ed25519))
        var rng = SplitMix64(seed: 42)
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_..")
        for _ in 0..<5_000 {
            let n = Int.random(in: 0...300, using: &rng)
            let token = String((0..<n).map { _ in alphabet.randomElement(using: &rng)! })
            if let accepted = try? v.verify(token, now: now) { Issue.record("random text accepted: \(accepted)") }
        }
    }
}

@Suite struct LeakTests {
    static let canary = "CANARY7f3a"

    /// Tokens whose refusal would be tempting to explain by quoting the offending part.
    static let cases: [(AuthError.Code, String)] = [
        (.algorithmNotAllowed, hs256(header: #"{"alg":"\#(canary)"}"#)),
        (.malformed, hs256(header: #"{"alg":"HS256","typ":"\#(canary)"}"#)),
        (.forbiddenHeader, hs256(header: #"{"alg":"HS256","jku":"https://\#(canary).example"}"#)),
        (.unknownCritical, hs256(header: #"{"alg":"HS256","crit":["\#(canary)"],"\#(canary)":1}"#)),
        (.malformed, hs256(header: #"{"alg":"HS256","\#(canary)":1,"\#(canary)":2}"#)),
        (.malformed, hs256(payload: String(standardPayload.dropLast()) + #","\#(canary)":1,"\#(canary)":2}"#)),
        (.malformed, hs256(payload: #"{"\#(canary)""#)),
        (.malformed, hs256(header: #"{"alg":"HS256","kid":"\#(canary)"} trailing"#)),
        (.wrongIssuer, hs256(payload: payload(["iss": "\"\(canary)\""]))),
        (.wrongAudience, hs256(payload: payload(["aud": "\"\(canary)\""]))),
        (.wrongAudience, hs256(payload: payload(["aud": "[\"\(canary)\"]"]))),
        (.badClaim, hs256(payload: payload(["sub": "\"\(canary) x\""]))),
        (.badClaim, hs256(payload: payload(["exp": "\"\(canary)\""]))),
        (.badClaim, hs256(payload: payload(["scope": "[\"\(canary)\"]"]))),
        (.badSignature, hs256(payload: payload(["sub": "\"\(canary)\""]), key: Array(repeating: 3, count: 32))),
        (.malformed, b64(#"{"alg":"HS256","kid":"\#(canary)"}"#) + "." + b64(standardPayload) + ".\(canary)=="),
        (.tooLarge, hs256(payload: payload(["pad": "\"" + String(repeating: canary, count: 900) + "\""]))),
    ]

    @Test(arguments: 0..<cases.count)
    func refusalsNeverQuoteTheToken(_ index: Int) {
        let (code, token) = Self.cases[index]
        do {
            _ = try verifier().verify(token, now: now)
            Issue.record("accepted")
        } catch {
            #expect(error.code == code, "\(error)")
            #expect(!error.detail.contains(Self.canary), "\(error)")
            #expect(!error.description.contains(Self.canary))
            #expect(!error.detail.contains(segments(token).last ?? "-"))
            expectNoLeak(error, token: token)
        }
    }
}
