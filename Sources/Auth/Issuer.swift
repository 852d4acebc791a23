// Owns the two kinds of token source: TokenIssuer (HS256 keys this server signs) and ExternalIssuer (one configured outside issuer and its public key).
import JSON

/// Signs API keys: compact JWS with the header exactly {"alg":"HS256","typ":"JWT"} and the claims
/// in a fixed order (iss, aud, sub, jti, iat, exp?, nbf?, scope?), so equal claims give equal tokens.
public struct TokenIssuer: Sendable {
    private let secret: Secret

    /// base64url({"alg":"HS256","typ":"JWT"}).
    static let encodedHeader: [UInt8] = {
        var out: [UInt8] = []
        Base64URL.encode(Array(#"{"alg":"HS256","typ":"JWT"}"#.utf8), into: &out)
        return out
    }()

    public init(secret: Secret) { self.secret = secret }

    /// The signed token. The claims must be what `TokenVerifier` accepts for an issued token
    /// (sub 1–128 of [A-Za-z0-9._:@-], jti 1–128 characters, times in 0...253402300799, scopes
    /// non-empty without spaces): anything else is a bug in the caller and traps.
    public func issue(_ claims: Claims) -> String {
        precondition(ClaimRules.isIssuedSubject(claims.subject), "Claims.subject must be 1-128 of [A-Za-z0-9._:@-]")
        precondition(ClaimRules.isJWTID(claims.jwtID), "Claims.jwtID must be 1-128 characters")
        precondition(ClaimRules.timeRange.contains(claims.issuedAt), "Claims.issuedAt out of range")
        precondition(claims.expiresAt.map(ClaimRules.timeRange.contains) ?? true, "Claims.expiresAt out of range")
        precondition(claims.notBefore.map(ClaimRules.timeRange.contains) ?? true, "Claims.notBefore out of range")
        precondition(claims.scopes.allSatisfy(ClaimRules.isScope), "each scope must be non-empty and contain no space")

        var members: [(String, JSONValue)] = [
            ("iss", .string(claims.issuer)),
            ("aud", .string(claims.audience)),
            ("sub", .string(claims.subject)),
            ("jti", .string(claims.jwtID)),
            ("iat", .number(JSONNumber(claims.issuedAt))),
        ]
        if let exp = claims.expiresAt { members.append(("exp", .number(JSONNumber(exp)))) }
        if let nbf = claims.notBefore { members.append(("nbf", .number(JSONNumber(nbf)))) }
        if !claims.scopes.isEmpty { members.append(("scope", .string(claims.scopes.joined(separator: " ")))) }
        let payload = JSONValue.object(JSONObject(members)).serialized()

        var token = Self.encodedHeader
        token.reserveCapacity(token.count + (payload.count * 4 + 2) / 3 + 45)
        token.append(UInt8(ascii: "."))
        Base64URL.encode(payload, into: &token)
        let signature = token.withUnsafeBytes { secret.hmac.mac($0) }
        token.append(UInt8(ascii: "."))
        Base64URL.encode(signature, into: &token)
        return String(decoding: token, as: UTF8.self)
    }
}

/// One outside identity provider whose tokens are accepted, verified with its public key.
/// The algorithm is fixed here, by configuration: a token naming any other is refused.
public struct ExternalIssuer: Sendable {
    public enum Algorithm: String, Sendable {
        case rs256 = "RS256"  // RSASSA-PKCS1-v1_5 with SHA-256, RSA key of at least 2048 bits
        case es256 = "ES256"  // ECDSA on P-256 with SHA-256, 64-byte R‖S signature
        case edDSA = "EdDSA"  // Ed25519 (RFC 8037)
    }

    public let issuer: String
    public let audience: String
    public let algorithm: Algorithm
    /// The claim whose value is the tenant id (it must match ^[a-z0-9][a-z0-9-]{0,62}$).
    public let tenantClaim: String
    let key: PublicKey

    /// `publicKeyPEM` is a SubjectPublicKeyInfo PEM ("-----BEGIN PUBLIC KEY-----") whose key type
    /// fits `algorithm`: RSA ≥ 2048 bits for RS256, P-256 for ES256, Ed25519 for EdDSA; else `badPublicKey`.
    public init(issuer: String, audience: String, algorithm: Algorithm, publicKeyPEM: [UInt8], tenantClaim: String) throws(AuthError) {
        precondition(!tenantClaim.isEmpty, "tenantClaim must name a claim")
        self.issuer = issuer
        self.audience = audience
        self.algorithm = algorithm
        self.tenantClaim = tenantClaim
        key = try PublicKey(pem: publicKeyPEM, algorithm: algorithm)
    }
}
