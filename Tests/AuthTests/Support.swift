// Shared fixtures of the JWT conformance suite: a fixed clock, the test secret, raw token crafting, and OpenSSL CLI key pairs.

import Foundation
import Testing

@testable import Auth

/// The fixed clock every test uses: 2026-01-01T00:00:00Z.
let now: Int64 = 1_767_225_600

let secretText = "test-secret-0123456789-abcdefghijklmnop"  // 39 bytes
let secretBytes = Array(secretText.utf8)
let secret = try! Secret(bytes: secretBytes)

func policy(leeway: Int64 = 30) -> VerifierPolicy {
    var p = VerifierPolicy(issuer: "bulkhead", audience: "bulkhead")
    p.leewaySeconds = leeway
    return p
}

func verifier(leeway: Int64 = 30, external: ExternalIssuer? = nil) -> TokenVerifier {
    TokenVerifier(secret: secret, policy: policy(leeway: leeway), external: external)
}

func claims(
    subject: String = "customer-123", jwtID: String = "key-1", issuedAt: Int64 = now - 60,
    expiresAt: Int64? = nil, notBefore: Int64? = nil, scopes: [String] = []
) -> Claims {
    Claims(
        issuer: "bulkhead", audience: "bulkhead", subject: subject, jwtID: jwtID, issuedAt: issuedAt,
        expiresAt: expiresAt, notBefore: notBefore, scopes: scopes)
}

let standardHeader = #"{"alg":"HS256","typ":"JWT"}"#
/// A valid issued payload, as text, so that tests can vary it.
let standardPayload = #"{"iss":"bulkhead","aud":"bulkhead","sub":"customer-123","jti":"key-1","iat":\#(now - 60)}"#

func b64(_ bytes: [UInt8]) -> String { Base64URL.encode(bytes) }
func b64(_ text: String) -> String { Base64URL.encode(Array(text.utf8)) }

func hmac(_ input: String, key: [UInt8] = secretBytes) -> [UInt8] {
    var input = input
    return input.withUTF8 { HMACKey(key).mac(UnsafeRawBufferPointer($0)) }
}

/// header.payload signed with HS256 under `key` (the test secret unless told), from raw bytes,
/// so that any header or payload (invalid JSON, bad UTF-8) can be given a valid signature.
func hs256(header: [UInt8], payload: [UInt8], key: [UInt8] = secretBytes) -> String {
    let input = b64(header) + "." + b64(payload)
    return input + "." + b64(hmac(input, key: key))
}

func hs256(header: String = standardHeader, payload: String = standardPayload, key: [UInt8] = secretBytes) -> String {
    hs256(header: Array(header.utf8), payload: Array(payload.utf8), key: key)
}

/// A payload with the standard claims, `changes` replacing or adding members and `removing` dropping some.
/// Values are raw JSON text, so that wrong types and odd numbers can be written.
func payload(_ changes: KeyValuePairs<String, String> = [:], removing: Set<String> = []) -> String {
    var members: [(String, String)] = [
        ("iss", #""bulkhead""#), ("aud", #""bulkhead""#), ("sub", #""customer-123""#), ("jti", #""key-1""#),
        ("iat", "\(now - 60)"),
    ]
    members.removeAll { removing.contains($0.0) }
    for (k, v) in changes {
        if let i = members.firstIndex(where: { $0.0 == k }) { members[i].1 = v } else { members.append((k, v)) }
    }
    return "{" + members.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
}

/// The three segments of a compact token.
func segments(_ token: String) -> [String] { token.split(separator: ".", omittingEmptySubsequences: false).map(String.init) }

/// Expects `body` to refuse with `code`, and checks that the refusal does not quote the token.
func expectRefusal(
    _ code: AuthError.Code, _ token: String, sourceLocation: SourceLocation = #_sourceLocation,
    _ body: (String) throws(AuthError) -> VerifiedToken
) {
    do {
        let v = try body(token)
        Issue.record("accepted, expected \(code.rawValue): \(v)", sourceLocation: sourceLocation)
    } catch {
        #expect(error.code == code, "\(error)", sourceLocation: sourceLocation)
        expectNoLeak(error, token: token, sourceLocation: sourceLocation)
    }
}

func expectRefusal(
    _ code: AuthError.Code, _ token: String, by v: TokenVerifier = verifier(), at time: Int64 = now,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    expectRefusal(code, token, sourceLocation: sourceLocation) { (t: String) throws(AuthError) in try v.verify(t, now: time) }
}

/// No part of the token (whole, or any segment of 6+ characters, or its decoded text) and not
/// the secret appears in the error's text.
func expectNoLeak(_ error: AuthError, token: String, sourceLocation: SourceLocation = #_sourceLocation) {
    let text = error.detail + " " + error.description
    var pieces = [token, secretText]
    for s in segments(token) where s.count >= 6 {
        pieces.append(s)
        var text = s
        if let bytes = text.withUTF8({ Base64URL.decode($0) }), bytes.count >= 6,
            let decoded = String(validating: bytes, as: UTF8.self)
        {
            pieces.append(decoded)
        }
    }
    for piece in pieces where piece.count >= 6 {
        #expect(!text.contains(piece), "error text quotes the token or the secret: \(error)", sourceLocation: sourceLocation)
    }
}

func accept(_ token: String, by v: TokenVerifier = verifier(), at time: Int64 = now) throws(AuthError) -> VerifiedToken {
    try v.verify(token, now: time)
}

// MARK: - OpenSSL command line

enum OpenSSLCLI {
    /// Runs `openssl` with `arguments` in `directory`; fails the test (and returns false) on a non-zero exit.
    @discardableResult
    static func run(_ arguments: [String], in directory: URL) -> Bool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/openssl")
        p.arguments = arguments
        p.currentDirectoryURL = directory
        let err = Pipe()
        p.standardError = err
        p.standardOutput = FileHandle.nullDevice
        do { try p.run() } catch {
            Issue.record("cannot run openssl: \(error)")
            return false
        }
        let message = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else {
            Issue.record("openssl \(arguments.joined(separator: " ")) failed: \(String(decoding: message, as: UTF8.self))")
            return false
        }
        return true
    }

    /// A fresh directory, removed when `body` returns.
    static func withTemporaryDirectory<T>(_ body: (URL) throws -> T) rethrows -> T {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("authtests-\(UUID().uuidString)")
        try! FileManager.default.createDirectory(at: dir, withIntermediateDirectories: false)
        defer { try? FileManager.default.removeItem(at: dir) }
        return try body(dir)
    }
}

/// A key pair made by `openssl genpkey`; signs with `openssl dgst` / `openssl pkeyutl`.
struct KeyPair: Sendable {
    enum Kind: Sendable { case rsa(bits: Int), rsaPSS, ec(curve: String), ed25519, ed448 }
    let kind: Kind
    let privatePEM: [UInt8]
    let publicPEM: [UInt8]

    init(_ kind: Kind) {
        self.kind = kind
        var options: [String]
        switch kind {
        case .rsa(let bits): options = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:\(bits)"]
        case .rsaPSS: options = ["-algorithm", "RSA-PSS", "-pkeyopt", "rsa_keygen_bits:2048"]
        case .ec(let curve): options = ["-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:\(curve)"]
        case .ed25519: options = ["-algorithm", "ED25519"]
        case .ed448: options = ["-algorithm", "ED448"]
        }
        (privatePEM, publicPEM) = OpenSSLCLI.withTemporaryDirectory { dir in
            OpenSSLCLI.run(["genpkey"] + options + ["-out", "key.pem"], in: dir)
            OpenSSLCLI.run(["pkey", "-in", "key.pem", "-pubout", "-out", "pub.pem"], in: dir)
            let priv = (try? Data(contentsOf: dir.appendingPathComponent("key.pem"))).map { [UInt8]($0) } ?? []
            let pub = (try? Data(contentsOf: dir.appendingPathComponent("pub.pem"))).map { [UInt8]($0) } ?? []
            return (priv, pub)
        }
    }

    /// The raw signature the CLI makes over `message`: PKCS#1 v1.5 for RSA, DER ECDSA-Sig-Value
    /// for EC, 64/114 bytes for EdDSA.
    func sign(_ message: [UInt8]) -> [UInt8] {
        OpenSSLCLI.withTemporaryDirectory { dir in
            try! Data(privatePEM).write(to: dir.appendingPathComponent("key.pem"))
            try! Data(message).write(to: dir.appendingPathComponent("msg"))
            switch kind {
            case .ed25519, .ed448:
                OpenSSLCLI.run(["pkeyutl", "-sign", "-inkey", "key.pem", "-rawin", "-in", "msg", "-out", "sig"], in: dir)
            default:
                OpenSSLCLI.run(["dgst", "-sha256", "-sign", "key.pem", "-out", "sig", "msg"], in: dir)
            }
            return (try? Data(contentsOf: dir.appendingPathComponent("sig"))).map { [UInt8]($0) } ?? []
        }
    }

    /// A compact JWS of `header` and `payload` with the CLI's signature, converted to JWS form
    /// (R‖S) for EC keys unless `der` asks for the CLI's DER as is.
    func token(header: String, payload: String, der: Bool = false) -> String {
        let input = b64(header) + "." + b64(payload)
        var signature = sign(Array(input.utf8))
        if case .ec = kind, !der { signature = derToRS(signature) }
        return input + "." + b64(signature)
    }
}

/// DER ECDSA-Sig-Value (SEQUENCE { INTEGER r, INTEGER s }) → 64 bytes R‖S, each left-padded to 32.
func derToRS(_ der: [UInt8]) -> [UInt8] {
    var i = 0
    func length() -> Int {
        let first = Int(der[i]); i += 1
        guard first & 0x80 != 0 else { return first }
        var n = 0
        for _ in 0..<(first & 0x7F) { n = n << 8 | Int(der[i]); i += 1 }
        return n
    }
    func integer() -> [UInt8] {
        precondition(der[i] == 0x02); i += 1
        let n = length()
        var bytes = Array(der[i..<i + n]); i += n
        while bytes.count > 32 && bytes.first == 0 { bytes.removeFirst() }
        return [UInt8](repeating: 0, count: 32 - bytes.count) + bytes
    }
    precondition(der[i] == 0x30); i += 1
    _ = length()
    return integer() + integer()
}

/// Every key the suite uses, generated once per run.
enum Keys {
    static let rsa = KeyPair(.rsa(bits: 2048))
    static let otherRSA = KeyPair(.rsa(bits: 2048))
    static let rsa1024 = KeyPair(.rsa(bits: 1024))
    static let rsaPSS = KeyPair(.rsaPSS)
    static let p256 = KeyPair(.ec(curve: "P-256"))
    static let p384 = KeyPair(.ec(curve: "P-384"))
    static let ed25519 = KeyPair(.ed25519)
    static let ed448 = KeyPair(.ed448)
}

/// The external issuer of the suite: iss "https://idp.example", aud "bulkhead-api", tenant in "tenant".
func externalIssuer(_ algorithm: ExternalIssuer.Algorithm, _ key: KeyPair) throws(AuthError) -> ExternalIssuer {
    try ExternalIssuer(
        issuer: "https://idp.example", audience: "bulkhead-api", algorithm: algorithm, publicKeyPEM: key.publicPEM,
        tenantClaim: "tenant")
}

func externalPayload(_ changes: KeyValuePairs<String, String> = [:], removing: Set<String> = []) -> String {
    var members: [(String, String)] = [
        ("iss", #""https://idp.example""#), ("aud", #""bulkhead-api""#), ("sub", #""auth0|5f3c9a""#),
        ("tenant", #""acme-corp""#), ("iat", "\(now - 10)"), ("exp", "\(now + 3600)"),
    ]
    members.removeAll { removing.contains($0.0) }
    for (k, v) in changes {
        if let i = members.firstIndex(where: { $0.0 == k }) { members[i].1 = v } else { members.append((k, v)) }
    }
    return "{" + members.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
}

/// Deterministic PRNG for the fuzz tests (SplitMix64, Steele et al. 2014).
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
