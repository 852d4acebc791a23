// Owns full verification of a token (RFC 7519, RFC 8725): size cap, structure, header, signature, then claims, against a policy and an injected clock.
import JSON

/// What every token must match. `leewaySeconds` absorbs clock skew on exp, nbf and iat.
public struct VerifierPolicy: Sendable {
    public var issuer: String
    public var audience: String
    public var leewaySeconds: Int64 = 30
    /// Longer tokens are refused before any parsing or cryptography.
    public var maxTokenBytes = 8192

    public init(issuer: String, audience: String) {
        self.issuer = issuer
        self.audience = audience
    }
}

/// A token that passed every check.
public struct VerifiedToken: Sendable, Equatable {
    public enum Source: Sendable, Equatable { case issued, external }
    public var source: Source
    public var claims: Claims
    /// Issued tokens: `sub`. External tokens: the value of the issuer's `tenantClaim`.
    public var tenantID: String

    public init(source: Source, claims: Claims, tenantID: String) {
        self.source = source
        self.claims = claims
        self.tenantID = tenantID
    }
}

/// Verifies issued HS256 tokens and, when configured, the external issuer's tokens. Revocation
/// (is this jti still valid?) is the caller's check, on every request.
public final class TokenVerifier: Sendable {
    let secret: Secret
    let policy: VerifierPolicy
    let external: ExternalIssuer?

    public init(secret: Secret, policy: VerifierPolicy, external: ExternalIssuer? = nil) {
        precondition(policy.leewaySeconds >= 0, "VerifierPolicy.leewaySeconds must not be negative")
        precondition(policy.maxTokenBytes > 0, "VerifierPolicy.maxTokenBytes must be positive")
        self.secret = secret
        self.policy = policy
        self.external = external
    }

    /// Full verification at time `now` (unix seconds). Every refusal is an AuthError.
    public func verify(_ token: String, now: Int64) throws(AuthError) -> VerifiedToken {
        // Rule 1, before anything else looks at the text.
        guard token.utf8.count <= policy.maxTokenBytes else {
            throw AuthError(.tooLarge, "token is longer than \(policy.maxTokenBytes) bytes")
        }
        var text = token
        return try text.withUTF8 { bytes in
            Result { () throws(AuthError) in try verify(bytes: bytes, now: now) }
        }.get()
    }

    private func verify(bytes: UnsafeBufferPointer<UInt8>, now: Int64) throws(AuthError) -> VerifiedToken {
        let token = try CompactToken(bytes, externalAlgorithm: external?.algorithm)
        let signingInput = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(bytes)[0..<token.signingInputLength])
        switch token.kind {
        case .issued:
            guard secret.hmac.verify(signingInput, tag: token.signature) else {
                throw AuthError(.badSignature, "the HS256 signature does not verify")
            }
        case .external:
            // checkHeader returns .external only when an external issuer is configured.
            guard let external, external.key.verify(signingInput, signature: token.signature) else {
                throw AuthError(.badSignature, "the \(external?.algorithm.rawValue ?? "?") signature does not verify")
            }
        }

        let parsed: JSONValue
        do throws(JSONError) {
            parsed = try JSONParser.parse(token.payload, options: CompactToken.jsonOptions)
        } catch {
            throw CompactToken.jsonFailure("payload", error)
        }
        guard let payload = parsed.objectValue else { throw AuthError(.malformed, "the payload is not a JSON object") }
        return try checkClaims(payload, kind: token.kind, now: now)
    }

    /// The claim rules, in order: iss, aud, sub, jti, the time claims' syntax, exp, nbf, iat, scope, tenant.
    private func checkClaims(_ payload: JSONObject, kind: CompactToken.Kind, now: Int64) throws(AuthError) -> VerifiedToken {
        let issued = kind == .issued
        let expectedIssuer = issued ? policy.issuer : external?.issuer ?? ""
        let expectedAudience = issued ? policy.audience : external?.audience ?? ""

        guard let iss = payload["iss"] else { throw AuthError(.missingClaim, "iss is required") }
        guard let issuer = iss.stringValue, ClaimRules.same(issuer, expectedIssuer) else {
            throw AuthError(.wrongIssuer, "iss is not the expected issuer")
        }
        guard let aud = payload["aud"] else { throw AuthError(.missingClaim, "aud is required") }
        guard let audience = aud.stringValue else {
            // RFC 7519 allows an array; accepting one would let a token meant for several
            // services pass here, so only a single string is accepted (docs/AUTH.md).
            throw AuthError(.wrongAudience, "aud must be a single string (arrays are refused)")
        }
        guard ClaimRules.same(audience, expectedAudience) else {
            throw AuthError(.wrongAudience, "aud is not the expected audience")
        }

        guard let sub = payload["sub"] else { throw AuthError(.missingClaim, "sub is required") }
        guard let subject = sub.stringValue,
            issued ? ClaimRules.isIssuedSubject(subject) : ClaimRules.isExternalSubject(subject)
        else {
            throw AuthError(
                .badClaim,
                issued ? "sub must be 1-128 characters of [A-Za-z0-9._:@-]" : "sub must be a string of 1-\(ClaimRules.maxExternalSubjectBytes) bytes")
        }

        var jwtID = ""
        if let jti = payload["jti"] {
            guard let s = jti.stringValue, ClaimRules.isJWTID(s) else {
                throw AuthError(.badClaim, "jti must be a string of 1-\(ClaimRules.maxJWTIDScalars) characters")
            }
            jwtID = s
        } else if issued {
            throw AuthError(.missingClaim, "jti is required")
        }

        let iat = try Self.time(payload, "iat")
        let exp = try Self.time(payload, "exp")
        let nbf = try Self.time(payload, "nbf")
        if issued && iat == nil { throw AuthError(.missingClaim, "iat is required") }
        try checkTimes(expiresAt: exp, notBefore: nbf, issuedAt: iat, now: now)

        var scopes: [String] = []
        if let scope = payload["scope"] {
            guard let s = scope.stringValue else { throw AuthError(.badClaim, "scope must be a space-separated string") }
            scopes = s.split(separator: " ").map(String.init)
        }

        let tenantID: String
        if issued {
            tenantID = subject
        } else {
            let name = external?.tenantClaim ?? "sub"
            guard let value = payload[name] else { throw AuthError(.missingClaim, "the tenant claim \(name) is required") }
            guard let t = value.stringValue, ClaimRules.isTenantID(t) else {
                throw AuthError(.badClaim, "the tenant claim \(name) must match ^[a-z0-9][a-z0-9-]{0,62}$")
            }
            tenantID = t
        }

        let claims = Claims(
            issuer: issuer, audience: audience, subject: subject, jwtID: jwtID, issuedAt: iat ?? 0,
            expiresAt: exp, notBefore: nbf, scopes: scopes)
        return VerifiedToken(source: issued ? .issued : .external, claims: claims, tenantID: tenantID)
    }

    /// The time window at `now`, with the policy's leeway. Also run on every cache hit.
    func checkTimes(expiresAt exp: Int64?, notBefore nbf: Int64?, issuedAt iat: Int64?, now: Int64) throws(AuthError) {
        let leeway = policy.leewaySeconds
        // Valid while now < exp + leeway; so with no leeway a token is expired from the second of exp on.
        if let exp, now >= Self.saturatingAdd(exp, leeway) {
            throw AuthError(.expired, "the token expired (exp) more than \(leeway) s ago")
        }
        if let nbf, Self.saturatingAdd(now, leeway) < nbf {
            throw AuthError(.notYetValid, "the token is not valid yet (nbf more than \(leeway) s ahead)")
        }
        if let iat, iat > Self.saturatingAdd(now, leeway) {
            throw AuthError(.issuedInFuture, "the token was issued (iat) more than \(leeway) s in the future")
        }
    }

    /// A NumericDate claim: absent → nil; else a plain non-negative integer (no sign, fraction or
    /// exponent) in 0...253402300799.
    static func time(_ payload: JSONObject, _ name: String) throws(AuthError) -> Int64? {
        guard let value = payload[name] else { return nil }
        guard case .number(let n) = value, n.lexeme.utf8.first != UInt8(ascii: "-"), let seconds = n.int64,
            ClaimRules.timeRange.contains(seconds)
        else {
            throw AuthError(.badClaim, "\(name) must be an integer number of seconds in 0...\(ClaimRules.timeRange.upperBound)")
        }
        return seconds
    }

    static func saturatingAdd(_ a: Int64, _ b: Int64) -> Int64 {
        let (sum, overflow) = a.addingReportingOverflow(b)
        return overflow ? (b > 0 ? .max : .min) : sum
    }
}
