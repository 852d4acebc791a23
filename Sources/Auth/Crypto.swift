// Owns every OpenSSL call of the module: SHA-256, HMAC-SHA256, constant-time compare, random bytes, and public-key signature checks.
//
// C pointers stay in this file: the types below hand out only Swift values.
import COpenSSL
import Glibc

enum Crypto {
    /// SHA-256 of `bytes` (EVP_Digest with the digest fetched once).
    static func sha256(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        var size: UInt32 = 0
        let ok = out.withUnsafeMutableBufferPointer { o in
            EVP_Digest(bytes.baseAddress, bytes.count, o.baseAddress, &size, Fetched.shared.sha256, nil)
        }
        // Hashing a memory buffer with a fetched SHA-256 fails only when memory is exhausted.
        precondition(ok == 1 && size == 32, "EVP_Digest(SHA-256) failed")
        return out
    }

    static func sha256(_ bytes: [UInt8]) -> [UInt8] {
        bytes.withUnsafeBytes { sha256($0) }
    }

    /// Equal lengths and equal bytes, in time independent of where they differ (CRYPTO_memcmp).
    /// The length itself is not secret here (it is fixed by the algorithm).
    static func constantTimeEqual(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        guard a.count == b.count else { return false }
        guard a.count > 0 else { return true }
        return CRYPTO_memcmp(a.baseAddress, b.baseAddress, a.count) == 0
    }

    /// `count` bytes from OpenSSL's CSPRNG (RAND_bytes).
    static func randomBytes(_ count: Int) throws(AuthError) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let ok = out.withUnsafeMutableBufferPointer { RAND_bytes($0.baseAddress, Int32($0.count)) }
        guard ok == 1 else {
            ERR_clear_error()
            throw AuthError(.secretUnavailable, "RAND_bytes failed: no random bytes to generate a secret")
        }
        return out
    }

    /// The hex text of `bytes`, lower case.
    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// Algorithm implementations fetched from the default provider once per process: an implicit
/// fetch (EVP_sha256()) costs a locked method-store lookup on every use.
/// @unchecked Sendable: the fetched EVP_MD / EVP_MAC are immutable after EVP_*_fetch and OpenSSL
/// documents them as shareable between threads (openssl-threads(7)); they are never freed.
private final class Fetched: @unchecked Sendable {
    static let shared = Fetched()
    let sha256: OpaquePointer
    let hmac: OpaquePointer

    private init() {
        guard let md = EVP_MD_fetch(nil, "SHA2-256", nil), let mac = EVP_MAC_fetch(nil, "HMAC", nil) else {
            // The default provider is part of libcrypto itself; without it nothing here can work.
            fatalError("OpenSSL: cannot fetch SHA2-256 / HMAC from the default provider")
        }
        sha256 = md
        hmac = mac
    }
}

/// An HMAC-SHA256 key, keyed once: each MAC duplicates a keyed template context
/// (EVP_MAC_CTX_dup), so the key schedule is not recomputed per token.
/// @unchecked Sendable: `template` is written only in `init`; afterwards it is only read, by
/// EVP_MAC_CTX_dup (its source is const), and every MAC then runs on its own duplicate.
final class HMACKey: @unchecked Sendable {
    private let template: OpaquePointer

    init(_ key: [UInt8]) {
        guard let ctx = EVP_MAC_CTX_new(Fetched.shared.hmac) else { fatalError("EVP_MAC_CTX_new: out of memory") }
        // OSSL_PARAM keeps pointers to its name and value, so both must outlive EVP_MAC_init
        // (a Swift string argument would be a temporary that dies after the construct call).
        guard let name = strdup("digest"), let value = strdup("SHA2-256") else { fatalError("strdup: out of memory") }
        defer {
            free(name)
            free(value)
        }
        var params = [OSSL_PARAM_construct_utf8_string(name, value, 0), OSSL_PARAM_construct_end()]
        let ok = key.withUnsafeBufferPointer { k in EVP_MAC_init(ctx, k.baseAddress, k.count, &params) }
        // Secret guarantees a non-empty key; HMAC-SHA256 then accepts any length.
        precondition(ok == 1, "EVP_MAC_init(HMAC, SHA2-256) failed")
        template = ctx
    }

    deinit { EVP_MAC_CTX_free(template) }

    /// HMAC-SHA256(key, message): 32 bytes.
    func mac(_ message: UnsafeRawBufferPointer) -> [UInt8] {
        guard let ctx = EVP_MAC_CTX_dup(template) else { fatalError("EVP_MAC_CTX_dup: out of memory") }
        defer { EVP_MAC_CTX_free(ctx) }
        var out = [UInt8](repeating: 0, count: 32)
        var length = 0
        let ok = out.withUnsafeMutableBufferPointer { o in
            EVP_MAC_update(ctx, message.baseAddress?.assumingMemoryBound(to: UInt8.self), message.count) == 1
                && EVP_MAC_final(ctx, o.baseAddress, &length, 32) == 1
        }
        precondition(ok && length == 32, "HMAC-SHA256 failed")
        return out
    }

    /// Whether `tag` is HMAC-SHA256(key, message): length 32 first, then CRYPTO_memcmp.
    func verify(_ message: UnsafeRawBufferPointer, tag: [UInt8]) -> Bool {
        guard tag.count == 32 else { return false }
        let expected = mac(message)
        return expected.withUnsafeBytes { e in tag.withUnsafeBytes { t in Crypto.constantTimeEqual(e, t) } }
    }
}

/// A public key for one JWS algorithm, loaded from PEM (SubjectPublicKeyInfo) and checked to be
/// of the algorithm's type and size.
/// @unchecked Sendable: the EVP_PKEY is never modified after `init`; each verification uses its own
/// EVP_MD_CTX, which OpenSSL supports concurrently on a shared key (openssl-threads(7)).
final class PublicKey: @unchecked Sendable {
    private let pkey: OpaquePointer
    let algorithm: ExternalIssuer.Algorithm

    /// A PEM longer than this is not a public key of any accepted type.
    static let maxPEMBytes = 64 << 10

    init(pem: [UInt8], algorithm: ExternalIssuer.Algorithm) throws(AuthError) {
        guard !pem.isEmpty, pem.count <= Self.maxPEMBytes else {
            throw AuthError(.badPublicKey, "public key PEM is empty or larger than \(Self.maxPEMBytes) bytes")
        }
        // BIO_new_mem_buf reads the buffer in place, so the BIO must not outlive the closure.
        let loaded: OpaquePointer? = pem.withUnsafeBytes { raw in
            guard let bio = BIO_new_mem_buf(raw.baseAddress, Int32(raw.count)) else { return nil }
            defer { BIO_free(bio) }
            return PEM_read_bio_PUBKEY(bio, nil, nil, nil)
        }
        ERR_clear_error()
        guard let key = loaded else {
            throw AuthError(.badPublicKey, "not a PEM public key (-----BEGIN PUBLIC KEY-----)")
        }
        var keep = false
        defer { if !keep { EVP_PKEY_free(key) } }
        switch algorithm {
        case .rs256:
            guard EVP_PKEY_is_a(key, "RSA") == 1 else { throw AuthError(.badPublicKey, "RS256 needs an RSA key") }
            let bits = EVP_PKEY_get_bits(key)
            guard bits >= 2048 else { throw AuthError(.badPublicKey, "RS256 needs an RSA key of at least 2048 bits, got \(bits)") }
        case .es256:
            guard EVP_PKEY_is_a(key, "EC") == 1 else { throw AuthError(.badPublicKey, "ES256 needs an EC key") }
            var name = [CChar](repeating: 0, count: 64)
            var length = 0
            let ok = EVP_PKEY_get_group_name(key, &name, name.count, &length)
            ERR_clear_error()
            let group = ok == 1 ? String(decoding: name.prefix(min(length, 63)).map { UInt8(bitPattern: $0) }, as: UTF8.self) : "?"
            guard group == "prime256v1" || group == "P-256" else {
                throw AuthError(.badPublicKey, "ES256 needs a P-256 key, got curve \(group)")
            }
        case .edDSA:
            guard EVP_PKEY_is_a(key, "ED25519") == 1 else { throw AuthError(.badPublicKey, "EdDSA needs an Ed25519 key") }
        }
        keep = true
        pkey = key
        self.algorithm = algorithm
    }

    deinit { EVP_PKEY_free(pkey) }

    /// Whether `signature` (the JWS form: RSA bytes, R‖S, or Ed25519 bytes) signs `message`.
    func verify(_ message: UnsafeRawBufferPointer, signature: [UInt8]) -> Bool {
        defer { ERR_clear_error() }  // a failed check leaves entries in this thread's error queue
        switch algorithm {
        case .rs256:
            guard signature.count == Int(EVP_PKEY_get_size(pkey)) else { return false }
            return signature.withUnsafeBytes { digestVerify(message, $0, md: Fetched.shared.sha256) }
        case .es256:
            guard let der = Self.derSignature(rs: signature) else { return false }
            return der.withUnsafeBytes { digestVerify(message, $0, md: Fetched.shared.sha256) }
        case .edDSA:
            guard signature.count == 64 else { return false }
            return signature.withUnsafeBytes { digestVerify(message, $0, md: nil) }
        }
    }

    /// EVP_DigestVerifyInit + EVP_DigestVerify: RSASSA-PKCS1-v1_5 / ECDSA with `md`, or Ed25519 with none.
    private func digestVerify(_ message: UnsafeRawBufferPointer, _ signature: UnsafeRawBufferPointer, md: OpaquePointer?) -> Bool {
        guard let ctx = EVP_MD_CTX_new() else { fatalError("EVP_MD_CTX_new: out of memory") }
        defer { EVP_MD_CTX_free(ctx) }
        guard EVP_DigestVerifyInit(ctx, nil, md, nil, pkey) == 1 else { return false }
        return EVP_DigestVerify(
            ctx, signature.baseAddress?.assumingMemoryBound(to: UInt8.self), signature.count,
            message.baseAddress?.assumingMemoryBound(to: UInt8.self), message.count) == 1
    }

    /// The DER ECDSA-Sig-Value of a JWS ES256 signature, which must be exactly 64 bytes R‖S
    /// (RFC 7518 §3.4) with neither half zero; anything else (a DER signature included) is nil.
    static func derSignature(rs: [UInt8]) -> [UInt8]? {
        guard rs.count == 64 else { return nil }
        guard rs[0..<32].contains(where: { $0 != 0 }), rs[32..<64].contains(where: { $0 != 0 }) else { return nil }
        return rs.withUnsafeBufferPointer { p -> [UInt8]? in
            guard let sig = ECDSA_SIG_new() else { fatalError("ECDSA_SIG_new: out of memory") }
            defer { ECDSA_SIG_free(sig) }
            guard let r = BN_bin2bn(p.baseAddress, 32, nil) else { fatalError("BN_bin2bn: out of memory") }
            guard let s = BN_bin2bn(p.baseAddress! + 32, 32, nil) else { BN_free(r); fatalError("BN_bin2bn: out of memory") }
            guard ECDSA_SIG_set0(sig, r, s) == 1 else { BN_free(r); BN_free(s); return nil }  // set0 owns them on success
            let length = i2d_ECDSA_SIG(sig, nil)
            guard length > 0 else { return nil }
            var der = [UInt8](repeating: 0, count: Int(length))
            let written = der.withUnsafeMutableBufferPointer { d -> Int32 in
                var cursor = d.baseAddress
                return i2d_ECDSA_SIG(sig, &cursor)
            }
            return written == length ? der : nil
        }
    }
}
