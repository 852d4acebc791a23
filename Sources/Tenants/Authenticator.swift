// Authenticator: from a bearer token to who is calling — signature and claims (Auth, with
// its cache), then the key's current state and the tenant's, which may have changed
// since the token was cached.
import Auth
import Store

public enum Principal: Sendable, Equatable {
    case tenant(id: String, scopes: Set<String>, keyID: String?)
    case admin(name: String, keyID: String)

    /// A tenant reaches only its own resources; an admin reaches every tenant's admin views.
    public func mayAccess(tenant other: String) -> Bool {
        switch self {
        case .tenant(let id, _, _): return id == other
        case .admin: return true
        }
    }

    public func has(scope: String) -> Bool {
        switch self {
        case .tenant(_, let scopes, _): return scopes.contains(scope)
        case .admin: return scope == AdminCommands.adminScope
        }
    }
}

/// Why a request is not authenticated (401), not allowed (403), or not now (503).
public enum AuthFailure: Error, Sendable, Equatable {
    case invalidToken(AuthError.Code)
    case unknownKey
    case revokedKey
    case rotatedKey
    case unknownTenant
    case tenantSuspended
    /// A valid key whose tenant's volume is being restored (`tenant restore`): try later.
    case tenantRestoring

    /// 403 for a valid key whose tenant may not act; 401 for everything else.
    public var isForbidden: Bool { self == .tenantSuspended }

    /// A stable code for logs and the audit log; never any part of the token.
    public var code: String {
        switch self {
        case .invalidToken(let c): c.rawValue
        case .unknownKey: "unknown_key"
        case .revokedKey: "key_revoked"
        case .rotatedKey: "key_rotated"
        case .unknownTenant: "unknown_tenant"
        case .tenantSuspended: "tenant_suspended"
        case .tenantRestoring: "tenant_restoring"
        }
    }
}

public final class Authenticator: Sendable {
    private let verifier: CachingVerifier
    private let keys: KeyRegistry
    private let tenants: TenantDirectory

    public init(verifier: CachingVerifier, keys: KeyRegistry, tenants: TenantDirectory) {
        self.verifier = verifier
        self.keys = keys
        self.tenants = tenants
    }

    public func authenticate(_ token: String, now: Int64) -> Result<Principal, AuthFailure> {
        let verified: VerifiedToken
        do { verified = try verifier.verify(token, now: now) } catch { return .failure(.invalidToken(error.code)) }
        let claims = verified.claims
        var keyID: String?
        if verified.source == .issued {
            // Revocation and rotation are checked on every request, cached token or not.
            switch keys.verdict(jti: claims.jwtID, now: now) {
            case .valid: break
            case .unknown: return .failure(.unknownKey)
            case .revoked: return .failure(.revokedKey)
            case .replaced: return .failure(.rotatedKey)
            }
            keyID = claims.jwtID
            if claims.scopes.contains(AdminCommands.adminScope) {
                guard keys.tenant(of: claims.jwtID) == nil, claims.subject.hasPrefix("admin:") else { return .failure(.unknownKey) }
                return .success(.admin(name: String(claims.subject.dropFirst(6)), keyID: claims.jwtID))
            }
            // The key must belong to the tenant the token names.
            guard keys.tenant(of: claims.jwtID) == verified.tenantID else { return .failure(.unknownKey) }
        }
        guard let tenant = tenants.tenant(verified.tenantID) else { return .failure(.unknownTenant) }
        guard tenant.status == .active else { return .failure(.tenantSuspended) }
        guard !tenants.isRestoring(tenant.id) else { return .failure(.tenantRestoring) }
        let scopes = claims.scopes.isEmpty ? Set(AdminCommands.tenantScopes) : Set(claims.scopes).intersection(AdminCommands.tenantScopes)
        return .success(.tenant(id: tenant.id, scopes: scopes, keyID: keyID))
    }
}
