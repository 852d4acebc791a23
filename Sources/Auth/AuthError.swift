// Owns AuthError: every refusal of a token, a key or a secret, as a stable code plus short text.

/// Why a token, a public key or a secret was refused.
///
/// `code` is stable (it is what callers map to HTTP responses and metrics); `detail` is short
/// human text for logs. `detail` never contains the token, any part of it (decoded or not), or
/// the secret, so it is always safe to log.
public struct AuthError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: Code
    public var detail: String

    public enum Code: String, Sendable {
        case tooLarge = "token_too_large"
        case malformed = "malformed_token"
        case badSignature = "bad_signature"
        case algorithmNotAllowed = "algorithm_not_allowed"
        case forbiddenHeader = "forbidden_header"
        case unknownCritical = "unknown_critical_header"
        case expired = "token_expired"
        case notYetValid = "token_not_yet_valid"
        case issuedInFuture = "token_issued_in_future"
        case wrongIssuer = "wrong_issuer"
        case wrongAudience = "wrong_audience"
        case missingClaim = "missing_claim"
        case badClaim = "bad_claim"
        case weakSecret = "weak_secret"
        case secretUnavailable = "secret_unavailable"
        case badPublicKey = "bad_public_key"
    }

    public init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    public var description: String { "\(code.rawValue): \(detail)" }
}
