// Owns CachingVerifier: a bounded, thread-safe memo of verified tokens, keyed by their SHA-256, whose entries are re-checked against the clock on every hit.
import Synchronization

/// Skips the signature and JSON work for a token verified before. The key is SHA-256 of the
/// token text (the token itself is never stored); an entry keeps the verified claims, so exp,
/// nbf and iat are checked again against `now` on every hit and an entry that fails is dropped.
/// Only successes are cached. Revocation is NOT answered here: the caller checks the jti on
/// every request, so a revoked key stops working on its next request, cached or not.
public final class CachingVerifier: Sendable {
    private let verifier: TokenVerifier
    private let state: Mutex<CacheState>
    private let hitCount = Atomic<Int>(0)
    private let missCount = Atomic<Int>(0)

    public init(verifier: TokenVerifier, capacity: Int = 10_000) {
        precondition(capacity > 0, "CachingVerifier capacity must be positive")
        self.verifier = verifier
        state = Mutex(CacheState(capacity: capacity))
    }

    public var hits: Int { hitCount.load(ordering: .relaxed) }
    public var misses: Int { missCount.load(ordering: .relaxed) }

    public func verify(_ token: String, now: Int64) throws(AuthError) -> VerifiedToken {
        // The size cap comes before hashing too: an oversized token costs nothing.
        guard token.utf8.count <= verifier.policy.maxTokenBytes else {
            throw AuthError(.tooLarge, "token is longer than \(verifier.policy.maxTokenBytes) bytes")
        }
        let key = CacheKey(token)
        if let cached = state.withLock({ $0.lookup(key) }) {
            let c = cached.claims
            do throws(AuthError) {
                try verifier.checkTimes(expiresAt: c.expiresAt, notBefore: c.notBefore, issuedAt: c.issuedAt, now: now)
            } catch {
                state.withLock { $0.remove(key) }
                throw error
            }
            hitCount.add(1, ordering: .relaxed)
            return cached
        }
        missCount.add(1, ordering: .relaxed)
        let verified = try verifier.verify(token, now: now)
        state.withLock { $0.insert(key, verified) }
        return verified
    }
}

/// SHA-256 of the token text, as four words (cheap to hash and compare).
struct CacheKey: Hashable, Sendable {
    let a: UInt64, b: UInt64, c: UInt64, d: UInt64

    init(_ token: String) {
        var text = token
        let digest = text.withUTF8 { Crypto.sha256(UnsafeRawBufferPointer($0)) }
        func word(_ i: Int) -> UInt64 { digest[i..<i + 8].reduce(0) { $0 << 8 | UInt64($1) } }
        a = word(0)
        b = word(8)
        c = word(16)
        d = word(24)
    }
}

/// The entries plus a ring of keys in insertion order: when full, the oldest entry goes (FIFO).
/// Every operation is O(1), so the lock is held for a dictionary access and little else.
struct CacheState: ~Copyable {
    struct Entry {
        var token: VerifiedToken
        var slot: Int  // position of this key in `ring`
    }

    private var entries: [CacheKey: Entry]
    private var ring: [CacheKey?]
    private var next = 0

    init(capacity: Int) {
        entries = Dictionary(minimumCapacity: min(capacity, 1 << 16))
        ring = Array(repeating: nil, count: capacity)
    }

    func lookup(_ key: CacheKey) -> VerifiedToken? { entries[key]?.token }

    mutating func remove(_ key: CacheKey) {
        // The ring slot stays; when it comes round, `insert` sees the entry is gone.
        entries[key] = nil
    }

    mutating func insert(_ key: CacheKey, _ token: VerifiedToken) {
        if entries[key] != nil {
            entries[key]!.token = token  // verified twice concurrently: keep one slot
            return
        }
        if let old = ring[next], entries[old]?.slot == next { entries[old] = nil }
        ring[next] = key
        entries[key] = Entry(token: token, slot: next)
        next = (next + 1) % ring.count
    }
}
