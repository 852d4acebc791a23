// The `limits` control commands: a tenant's rate policies, concurrency cap and quotas,
// stored in SQLite and put in force at once (no restart), every change audited.
import JSON
import RateLimit
import Store

extension AdminCommands {
    /// `limits set TENANT [--policy NAME] [--rate N/UNIT] [--burst N] [--shadow|--enforce]
    /// [--remove] [--concurrency N] [--compute-minutes-per-day N] [--storage-gb G]`.
    /// The rate arrives from bulkheadctl as `{"count": N, "period_seconds": P}`.
    func setLimits(_ a: JSONObject) throws(CommandError) -> (Answer, String?) {
        let tenant = try string(a, "TENANT")
        _ = try existing(tenant)
        var overrides: LimitOverrides
        do { overrides = try store.limits(tenant) ?? LimitOverrides() } catch { throw storeError(error, "limits of \(tenant)") }
        var changes: [String] = []

        let name = a["policy"]?.stringValue ?? RatePolicy.defaultName
        guard RatePolicy.isValid(name: name) else {
            throw CommandError(.badRequest, "invalid policy name \"\(Self.printable(name))\": use 1 to 32 of a-z, 0-9, _ and -")
        }
        let rate = try rate(a["rate"])
        let burst = try count(a, "burst", 1...UInt64(Int64.max))
        let shadow = a["shadow"]?.boolValue == true, enforce = a["enforce"]?.boolValue == true
        if shadow && enforce { throw CommandError(.badRequest, "--shadow and --enforce contradict each other") }
        if a["remove"]?.boolValue == true {
            guard rate == nil, burst == nil, !shadow, !enforce else {
                throw CommandError(.badRequest, "--remove takes no --rate, --burst, --shadow or --enforce")
            }
            guard let i = overrides.policies.firstIndex(where: { $0.name == name }) else {
                throw CommandError(.notFound, name == RatePolicy.defaultName
                                   ? "the default policy of \(tenant) has no override to remove"
                                   : "tenant \(tenant) has no policy \(name)")
            }
            overrides.policies.remove(at: i)
            changes.append("policy \(name) removed")
        } else if rate != nil || burst != nil || shadow || enforce {
            var p = overrides.policies.first { $0.name == name } ?? PolicyOverride(name: name)
            if let rate {
                p.rateCount = rate.count
                p.ratePeriodSeconds = rate.period
            }
            p.burst = burst ?? p.burst
            if shadow { p.mode = .shadow }
            if enforce { p.mode = .enforce }
            if name != RatePolicy.defaultName, p.rateCount == nil || p.burst == nil {
                throw CommandError(.badRequest, "a new policy needs --rate and --burst")
            }
            overrides.policies.removeAll { $0.name == name }
            overrides.policies.append(p)
            overrides.policies.sort { $0.name < $1.name }
            var text = "policy \(name)"
            if let rate { text += " rate=\(rate.count)/\(rate.period)s" }
            if let burst { text += " burst=\(burst)" }
            if shadow { text += " shadow" }
            if enforce { text += " enforce" }
            changes.append(text)
        }
        if let n = try count(a, "concurrency", 0...1_000_000) {
            overrides.concurrency = Int(n)
            changes.append("concurrency=\(n)")
        }
        if let n = try count(a, "compute-minutes-per-day", 0...UInt64(Int64.max)) {
            overrides.computeMinutesPerDay = n
            changes.append("compute_minutes_per_day=\(n)")
        }
        if let v = a["storage-gb"] {
            guard let gb = v.doubleValue, gb.isFinite, gb > 0, gb <= 1_000_000 else {
                throw CommandError(.badRequest, "--storage-gb must be a number of GiB greater than 0, e.g. 50 or 0.5")
            }
            overrides.storageGB = gb
            changes.append("storage_gb=\(gb)")
        }
        guard !changes.isEmpty else {
            throw CommandError(.badRequest, "nothing to change: give --rate, --burst, --shadow, --enforce, --remove, --concurrency, --compute-minutes-per-day or --storage-gb")
        }
        do { try store.setLimits(tenant, overrides) } catch { throw storeError(error, "limits of \(tenant)") }
        admission.limitTable.set(tenant, Self.rateLimitOverrides(overrides))
        log.info("limits_changed", [("tenant", .string(tenant)), ("changes", .string(changes.joined(separator: "; ")))])
        return (Answer(value: try showLimits(tenant), target: tenant), changes.joined(separator: "; "))
    }

    func resetLimits(_ tenant: String) throws(CommandError) -> Answer {
        _ = try existing(tenant)
        do { try store.clearLimits(tenant) } catch { throw storeError(error, "limits of \(tenant)") }
        admission.limitTable.set(tenant, nil)
        log.info("limits_changed", [("tenant", .string(tenant)), ("changes", .string("reset to the configuration"))])
        return Answer(value: try showLimits(tenant), target: tenant)
    }

    /// The limits in force for the tenant, each marked as the configuration's or its own.
    func showLimits(_ tenant: String) throws(CommandError) -> JSONValue {
        _ = try existing(tenant)
        let table = admission.limitTable
        let limits = table.limits(for: tenant)
        let own = table.overrides(for: tenant) ?? TenantLimits.Overrides()
        let usage = admission.usage(tenant)
        func source(_ overridden: Bool) -> JSONValue { .string(overridden ? "tenant" : "config") }
        let policies: [JSONValue] = limits.policies.map { p in
            .object(JSONObject([
                ("name", .string(p.name)), ("rate", .string(p.rateText)), ("burst", .number(JSONNumber(Int64(clamping: p.burst)))),
                ("mode", .string(p.mode.rawValue)), ("source", source(own.policies.contains { $0.name == p.name })),
            ]))
        }
        return .object(JSONObject([
            ("tenant", .string(tenant)),
            ("policies", .array(policies)),
            ("concurrency", .number(JSONNumber(limits.concurrency))), ("concurrency_source", source(own.concurrency != nil)),
            ("compute_minutes_per_day", .number(JSONNumber(Int64(clamping: limits.computeMinutesPerDay)))),
            ("compute_source", source(own.computeMinutesPerDay != nil)),
            ("storage_gb", JSONNumber(limits.storageGB).map(JSONValue.number) ?? .null), ("storage_source", source(own.storageGB != nil)),
            ("compute_seconds_today", JSONNumber(Double(usage.computeNanoseconds / 1_000_000) / 1000).map(JSONValue.number) ?? .null),
            ("in_flight", .number(JSONNumber(usage.inFlight))),
        ]))
    }

    /// The stored form to the form `Admission` reads.
    public static func rateLimitOverrides(_ o: LimitOverrides) -> TenantLimits.Overrides {
        TenantLimits.Overrides(
            policies: o.policies.map {
                .init(name: $0.name, count: $0.rateCount, periodSeconds: $0.ratePeriodSeconds, burst: $0.burst,
                      mode: $0.mode.map { $0 == .shadow ? .shadow : .enforce })
            },
            concurrency: o.concurrency, computeMinutesPerDay: o.computeMinutesPerDay, storageGB: o.storageGB)
    }

    private func rate(_ v: JSONValue?) throws(CommandError) -> (count: UInt64, period: UInt64)? {
        guard let v else { return nil }
        guard let count = v["count"]?.intValue, let period = v["period_seconds"]?.intValue, count > 0, period > 0 else {
            throw CommandError(.badRequest, "--rate must be N/second, N/minute, N/hour or N/day with N at least 1")
        }
        return (UInt64(count), UInt64(period))
    }

    private func count(_ a: JSONObject, _ key: String, _ range: ClosedRange<UInt64>) throws(CommandError) -> UInt64? {
        guard let v = a[key] else { return nil }
        guard let n = v.intValue, n >= 0, range.contains(UInt64(n)) else {
            throw CommandError(.badRequest, "--\(key) must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return UInt64(n)
    }
}
