// Admission: the order of the checks (quota, concurrency, rate), what a refusal
// charges (nothing), on_backend_error, and the header syntax of the IETF draft.
import Config
import Log
import Synchronization
import Testing
@testable import RateLimit

/// The verdict of one admission; the memory backend answers before `admit` returns.
func verdict(_ admission: Admission, _ tenant: String = "acme") -> AdmissionVerdict {
    let box = Mutex<AdmissionVerdict?>(nil)
    admission.admit(tenant) { v in box.withLock { $0 = v } }
    return box.withLock { $0! }
}

extension AdmissionVerdict {
    var grant: Grant? { if case .admitted(let g) = self { g } else { nil } }
    var refusal: Refusal? { if case .refused(let r, _) = self { r } else { nil } }
}

func makeAdmission(_ limits: TenantLimits, _ clock: ManualClock, backend: RateBackend? = nil,
                   settings: AdmissionSettings = AdmissionSettings(), log: Logger = .discard) -> Admission {
    Admission(table: LimitTable(defaults: limits), backend: backend ?? MemoryBackend(clock: { clock.now }), settings: settings,
              log: log, wallClock: { clock.seconds }, monotonic: { clock.now })
}

/// A Redis backend with nothing listening: real, and never able to decide.
func unreachableRedis() throws -> RedisBackend {
    try RedisBackend(settings: .init(target: RedisEndpoint(transport: .unix(path: "/nonexistent/redis.sock")), timeout: .milliseconds(5)),
                     log: .discard)
}

@Suite struct AdmissionOrder {
    @Test func theConcurrencyCapRefusesWithoutChargingTheRate() {
        let clock = ManualClock()
        let a = makeAdmission(TenantLimits(policies: [policy(100, per: 60, burst: 10)], concurrency: 2), clock)
        let first = verdict(a).grant, second = verdict(a).grant
        #expect(first != nil && second != nil)
        #expect(second?.status.states?.first?.remaining == 8)
        let third = verdict(a)
        #expect(third.refusal?.reason == .concurrencyLimited)
        #expect(third.refusal?.retryAfterSeconds == 1)
        #expect(a.usage("acme").inFlight == 2)
        first?.release()
        first?.release()  // once only
        #expect(a.usage("acme").inFlight == 1)
        // The refused request cost no token: 7 remain after this one, not 6.
        #expect(verdict(a).grant?.status.states?.first?.remaining == 7)
        // Other tenants have their own cap.
        #expect(verdict(a, "beta").grant != nil)
    }

    @Test func aRateRefusalGivesItsPlaceBack() {
        let clock = ManualClock()
        let a = makeAdmission(TenantLimits(policies: [policy(1, per: 60, burst: 1)], concurrency: 5), clock)
        let grant = verdict(a).grant
        let refused = verdict(a)
        #expect(refused.refusal == Refusal(reason: .rateLimited, retryAfterSeconds: 60,
                                           message: "the tenant's rate limit is used up; retry after 60s"))
        #expect(a.usage("acme").inFlight == 1)
        grant?.release()
        #expect(a.usage("acme").inFlight == 0)
        #expect(a.snapshot.admitted == 1 && a.snapshot.rateLimited == 1)
    }

    @Test func theComputeQuotaResetsAtUTCMidnight() {
        let clock = ManualClock()
        let a = makeAdmission(TenantLimits(policies: [], computeMinutesPerDay: 1), clock)
        clock.setWall(1_796_342_400 + 86_400 - 100)  // 23:58:20
        a.recordCompute("acme", nanoseconds: 59_000_000_000)
        #expect(verdict(a).grant != nil)
        a.recordCompute("acme", nanoseconds: 1_000_000_000)
        let refused = verdict(a).refusal
        #expect(refused?.reason == .quotaExceeded)
        #expect(refused?.retryAfterSeconds == 100)
        #expect(a.usage("acme").computeNanoseconds == 60_000_000_000)
        clock.setWall(1_796_342_400 + 86_400)
        #expect(verdict(a).grant != nil)
        #expect(a.usage("acme").computeNanoseconds == 0)
        // A quota of zero refuses everything.
        let none = makeAdmission(TenantLimits(policies: [], computeMinutesPerDay: 0), clock)
        #expect(verdict(none).refusal?.reason == .quotaExceeded)
    }

    @Test func shadowRefusalsAreCountedAndLoggedButAdmitted() {
        let clock = ManualClock()
        let lines = LogStore()
        let a = makeAdmission(TenantLimits(policies: [policy("default", 1, per: 60, burst: 1, .shadow)]), clock,
                              log: .collecting(into: lines))
        let verdicts = (0..<5).map { _ in verdict(a) }
        #expect(verdicts.allSatisfy { $0.grant != nil })
        #expect(a.snapshot.shadowRefusals == 4)
        // Logged at most once a second per tenant, and shadow policies are not advertised.
        #expect(lines.all.filter { $0.contains("ratelimit_shadow_refusal") }.count == 1)
        #expect(verdicts[0].grant?.status.policies == [])
        clock.advance(seconds: 1)
        _ = verdict(a)
        #expect(lines.all.filter { $0.contains("ratelimit_shadow_refusal") }.count == 2)
    }

    @Test func withDenyAnUnavailableBackendRefusesWith503Reason() throws {
        let clock = ManualClock()
        let a = makeAdmission(TenantLimits(policies: [policy(10, per: 60, burst: 10)], concurrency: 3), clock,
                              backend: try unreachableRedis())
        let v = verdict(a)
        #expect(v.refusal?.reason == .backendUnavailable)
        #expect(v.refusal?.message == "the rate limiter cannot decide now; retry later")
        #expect(a.usage("acme").inFlight == 0)
        #expect(a.snapshot.backendUnavailable == 1)
    }

    @Test func withAllowTheFallbackAdmitsThisHostsShare() throws {
        let clock = ManualClock()
        let a = makeAdmission(TenantLimits(policies: [policy(10, per: 3600, burst: 10)]), clock,
                              backend: try unreachableRedis(), settings: AdmissionSettings(onBackendError: .allow, hosts: 2))
        let verdicts = (0..<8).map { _ in verdict(a) }
        // rate / hosts and burst / hosts: 5 of 10.
        #expect(verdicts.count { $0.grant != nil } == 5)
        #expect(verdicts.last?.refusal?.reason == .rateLimited)
        #expect(verdicts.first?.grant?.status.policies.first?.count == 5)
        #expect(a.snapshot.fallbacks == 8)
    }
}

@Suite struct RateLimitFieldSyntax {
    /// `"name";key=integer;key=integer` items of a structured-field list (RFC 9651):
    /// the names and parameters, or nil when the text is not of that form.
    static func items(_ field: String) -> [(name: String, params: [String: Int])]? {
        var out: [(String, [String: Int])] = []
        for item in field.split(separator: ",", omittingEmptySubsequences: false) {
            let text = item.hasPrefix(" ") ? item.dropFirst() : item
            let parts = text.split(separator: ";", omittingEmptySubsequences: false)
            guard let first = parts.first, first.count >= 3, first.hasPrefix("\""), first.hasSuffix("\"") else { return nil }
            let name = String(first.dropFirst().dropLast())
            guard RatePolicy.isValid(name: name) else { return nil }
            var params: [String: Int] = [:]
            for p in parts.dropFirst() {
                let kv = p.split(separator: "=", omittingEmptySubsequences: false)
                guard kv.count == 2, kv[0].allSatisfy({ $0.isLowercase }), !kv[1].isEmpty, kv[1].allSatisfy(\.isNumber),
                      let v = Int(kv[1]) else { return nil }
                params[String(kv[0])] = v
            }
            out.append((name, params))
        }
        return out
    }

    @Test func allowedAndRefusedFieldsFollowTheDraft() {
        let clock = ManualClock()
        let a = makeAdmission(TenantLimits(policies: [policy(1000, per: 3600, burst: 2), policy("burst", 5, per: 1, burst: 5)]), clock)
        let ok = RateLimitHeaders.fields(verdict(a).grant!.status)
        #expect(ok.map(\.0) == ["RateLimit-Policy", "RateLimit"])
        #expect(ok[0].1 == #""default";q=1000;w=3600, "burst";q=5;w=1"#)
        #expect(ok[1].1 == #""default";r=1;t=4, "burst";r=4;t=1"#)
        _ = verdict(a)
        guard case .refused(let refusal, let status?) = verdict(a) else { Issue.record("not refused"); return }
        let refused = RateLimitHeaders.fields(status)
        #expect(refused[1].1 == #""default";r=0;t=8, "burst";r=3;t=1"#)
        #expect(refusal.retryAfterSeconds == 4)
        for (_, value) in ok + refused {
            let parsed = Self.items(value)
            #expect(parsed?.map(\.name) == ["default", "burst"], "\(value)")
        }
        #expect(Self.items(ok[0].1)?.allSatisfy { Set($0.params.keys) == ["q", "w"] } == true)
        #expect(Self.items(ok[1].1)?.allSatisfy { Set($0.params.keys) == ["r", "t"] } == true)
        #expect(RateLimitHeaders.fields(RateStatus(policies: [], states: nil)).isEmpty)
        #expect(RateLimitHeaders.fields(RateStatus(policies: [policy(1, per: 1, burst: 1)], states: nil)).map(\.0) == ["RateLimit-Policy"])
    }
}
