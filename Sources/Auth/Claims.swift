// Owns the claim set of a token and the rules each registered claim must satisfy (shared by the issuer and the verifier).

/// The claims Bulkhead reads from and writes into a token's payload.
public struct Claims: Sendable, Equatable {
    public var issuer: String  // iss
    public var audience: String  // aud (one string; arrays are refused)
    public var subject: String  // sub
    /// jti: required in issued tokens (keys are listed and revoked by it); "" when an external token has none.
    public var jwtID: String
    /// iat, unix seconds: required in issued tokens; 0 when an external token has none.
    public var issuedAt: Int64
    public var expiresAt: Int64?  // exp
    public var notBefore: Int64?  // nbf
    /// The "scope" claim: one string of space-separated scopes (RFC 8693 §4.2); empty when absent.
    public var scopes: [String]

    public init(
        issuer: String, audience: String, subject: String, jwtID: String, issuedAt: Int64,
        expiresAt: Int64? = nil, notBefore: Int64? = nil, scopes: [String] = []
    ) {
        self.issuer = issuer
        self.audience = audience
        self.subject = subject
        self.jwtID = jwtID
        self.issuedAt = issuedAt
        self.expiresAt = expiresAt
        self.notBefore = notBefore
        self.scopes = scopes
    }
}

/// Syntax rules for claim values, in one place so that the issuer never writes what the verifier refuses.
enum ClaimRules {
    /// Time claims are whole seconds in 0...253402300799 (9999-12-31T23:59:59Z).
    static let timeRange: ClosedRange<Int64> = 0...253_402_300_799
    static let maxSubjectBytes = 128
    static let maxJWTIDScalars = 128
    /// External subjects are not ours to shape, only bounded.
    static let maxExternalSubjectBytes = 1024

    /// Issued `sub`: 1–128 of [A-Za-z0-9._:@-] (a tenant id, or an admin form such as "admin:ops").
    static func isIssuedSubject(_ s: String) -> Bool {
        let u = s.utf8
        guard (1...maxSubjectBytes).contains(u.count) else { return false }
        return u.allSatisfy { c in
            switch c {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"),
                UInt8(ascii: ":"), UInt8(ascii: "@"), UInt8(ascii: "-"):
                return true
            default: return false
            }
        }
    }

    static func isExternalSubject(_ s: String) -> Bool { (1...maxExternalSubjectBytes).contains(s.utf8.count) }

    /// `jti`: 1–128 Unicode scalars.
    static func isJWTID(_ s: String) -> Bool {
        var n = 0
        for _ in s.unicodeScalars {
            n += 1
            if n > maxJWTIDScalars { return false }
        }
        return n > 0
    }

    /// Tenant ids (SPEC §5): ^[a-z0-9][a-z0-9-]{0,62}$.
    static func isTenantID(_ s: String) -> Bool {
        let u = s.utf8
        guard (1...63).contains(u.count), let first = u.first, first != UInt8(ascii: "-") else { return false }
        return u.allSatisfy { c in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(c) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c)
                || c == UInt8(ascii: "-")
        }
    }

    /// One scope of the space-separated "scope" string: non-empty, no space.
    static func isScope(_ s: String) -> Bool { !s.isEmpty && !s.utf8.contains(UInt8(ascii: " ")) }

    /// Exact byte equality: RFC 7519 §2 compares StringOrURI values without any transformation,
    /// while Swift `==` would also equate canonically equivalent Unicode.
    static func same(_ a: String, _ b: String) -> Bool { a.utf8.elementsEqual(b.utf8) }
}
