// LimitsAndAuditTests.swift: per-tenant limit overrides and the audit log.

import Testing
@testable import Store

@Suite struct Limits {
    @Test func roundTripReplaceAndList() throws {
        let dir = TemporaryDirectory()
        let store = try makeStore(dir)
        try create(store, "acme")
        try create(store, "other")
        #expect(try store.limits("acme") == nil)
        #expect(try store.allLimits() == [:])

        let full = LimitOverrides(
            concurrency: 3, computeMinutesPerDay: UInt64(Int64.max), storageGB: 0.5, maxWorkers: 8,
            policies: [PolicyOverride(name: "burst", rateCount: 10, ratePeriodSeconds: 1, burst: 20),
                       PolicyOverride(name: "default", rateCount: 50, ratePeriodSeconds: 60, burst: 10, mode: .shadow)])
        try store.setLimits("acme", full)
        #expect(try store.limits("acme") == full)
        // Setting replaces: fields left nil go back to the configuration, policies not
        // given are removed.
        try store.setLimits("acme", LimitOverrides(storageGB: 2))
        #expect(try store.limits("acme") == LimitOverrides(storageGB: 2))
        try store.setLimits("other", LimitOverrides())
        #expect(try store.limits("other") == LimitOverrides())
        #expect(try store.allLimits() == ["acme": LimitOverrides(storageGB: 2), "other": LimitOverrides()])
        #expect(try store.limits("ghost") == nil)
        try store.clearLimits("acme")
        #expect(try store.limits("acme") == nil)
        // Deleting the tenant deletes its limits and policies.
        try store.setLimits("other", full)
        _ = try store.deleteTenant("other", now: 1)
        #expect(try store.allLimits() == [:])
    }

    @Test(arguments: [
        LimitOverrides(computeMinutesPerDay: UInt64(Int64.max) + 1),
        LimitOverrides(concurrency: -1),
        LimitOverrides(maxWorkers: Int.min),
        LimitOverrides(storageGB: -0.1),
        LimitOverrides(storageGB: .nan),
        LimitOverrides(storageGB: .infinity),
        LimitOverrides(policies: [PolicyOverride(name: "default", burst: UInt64.max)]),
        LimitOverrides(policies: [PolicyOverride(name: "default", rateCount: 0)]),
        LimitOverrides(policies: [PolicyOverride(name: "hourly", rateCount: 5)]),
        LimitOverrides(policies: [PolicyOverride(name: "", rateCount: 5, ratePeriodSeconds: 1, burst: 1)]),
        LimitOverrides(policies: [PolicyOverride(name: "default", burst: 1), PolicyOverride(name: "default", burst: 2)]),
    ])
    func unstorableValuesAreRefused(limits: LimitOverrides) throws {
        let dir = TemporaryDirectory()
        let store = try makeStore(dir)
        try create(store, "acme")
        #expect(storeError { try store.setLimits("acme", limits) }?.code == .invalid)
        #expect(try store.limits("acme") == nil)
    }

    @Test func unknownTenant() throws {
        let dir = TemporaryDirectory()
        let store = try makeStore(dir)
        #expect(storeError { try store.setLimits("ghost", LimitOverrides(concurrency: 1)) } == StoreError(code: .notFound, message: #"tenant "ghost" not found"#))
        #expect(storeError { try store.clearLimits("ghost") }?.code == .notFound)
        #expect(try store.allLimits() == [:])
    }
}

@Suite struct Audit {
    @Test func appendAndReadNewestFirst() throws {
        let dir = TemporaryDirectory()
        let store = try makeStore(dir)
        let first = AuditRecord(time: 10, actor: "uid=0 pid=1", action: "tenant.create", target: "acme", result: "ok", detail: "name=Acme")
        let bare = AuditRecord(time: 5, actor: "uid=0 pid=2", action: "reload", result: "ok")
        let id1 = try store.appendAudit(first)
        let id2 = try store.appendAudit(bare)  // earlier time, later append: still newer
        let id3 = try store.appendAudit(AuditRecord(id: 999, time: 11, actor: "a", action: "key.revoke", target: "other", result: "notFound"))
        #expect(id1 < id2 && id2 < id3)
        let all = try store.audit(target: nil, limit: 10)
        #expect(all.map(\.id) == [id3, id2, id1])
        var expected = first
        expected.id = id1
        #expect(all[2] == expected)
        #expect(all[1] == AuditRecord(id: id2, time: 5, actor: "uid=0 pid=2", action: "reload", target: nil, result: "ok", detail: nil))
        #expect(all[0].id == id3)  // the record's own id is ignored
    }

    @Test func limitAndTargetFilter() throws {
        let dir = TemporaryDirectory()
        let store = try makeStore(dir)
        var ids: [String: [Int64]] = [:]
        for i in 0..<30 {
            let target = ["acme", "other", "acme-2"][i % 3]
            ids[target, default: []].append(try store.appendAudit(AuditRecord(time: Int64(i), actor: "t", action: "a\(i)", target: target, result: "ok")))
        }
        try store.appendAudit(AuditRecord(time: 99, actor: "t", action: "status", result: "ok"))
        #expect(try store.audit(target: nil, limit: 3).map(\.action) == ["status", "a29", "a28"])
        #expect(try store.audit(target: nil, limit: 100).count == 31)
        #expect(try store.audit(target: "acme", limit: 4).map(\.id) == ids["acme"]!.reversed().prefix(4).map { $0 })
        #expect(try store.audit(target: "acme", limit: 100).allSatisfy { $0.target == "acme" })
        #expect(try store.audit(target: "acme", limit: 100).count == 10)
        #expect(try store.audit(target: "ac%", limit: 100) == [])
        #expect(try store.audit(target: "nobody", limit: 5) == [])
        #expect(try store.audit(target: nil, limit: 0) == [])
        #expect(storeError { try store.audit(target: nil, limit: -1) }?.code == .invalid)
    }
}

@Suite struct Usage {
    @Test func batchesAddUpOnceAndReadInOrder() throws {
        let dir = TemporaryDirectory()
        let store = try makeStore(dir)
        let a = UsageRow(tenantID: "beta", day: "2026-12-04", requests: 2, errors: 1, rateLimited: 1, bytesIn: 10, bytesOut: 20,
                         cpuMicros: 300)
        let b = UsageRow(tenantID: "acme", day: "2026-12-05", requests: 1, storageBytes: 4096)
        #expect(try store.applyUsage(batch: 7, [a, b], now: 1000))
        // The same batch again (a retried flush) changes nothing.
        #expect(try !store.applyUsage(batch: 7, [a, b], now: 1001))
        #expect(try store.applyUsage(batch: 8, [a, UsageRow(tenantID: "acme", day: "2026-12-05", requests: 1)], now: 1002))
        let rows = try store.usage(tenant: nil, from: "2026-12-01", to: "2026-12-31")
        #expect(rows.map(\.tenantID) == ["acme", "beta"])
        #expect(rows[0] == UsageRow(tenantID: "acme", day: "2026-12-05", requests: 2, storageBytes: 4096))  // storage kept
        #expect(rows[1] == UsageRow(tenantID: "beta", day: "2026-12-04", requests: 4, errors: 2, rateLimited: 2, bytesIn: 20,
                                    bytesOut: 40, cpuMicros: 600, storageBytes: 0))
        #expect(try store.usage(tenant: "beta", from: "2026-12-05", to: "2026-12-05") == [])
        try store.deleteUsage("beta")
        #expect(try store.usage(tenant: nil, from: "2026-12-01", to: "2026-12-31").map(\.tenantID) == ["acme"])
        // Batch ids older than a week are forgotten.
        #expect(try store.applyUsage(batch: 9, [], now: 1000 + 8 * 86_400))
        #expect(try store.applyUsage(batch: 7, [], now: 1000 + 8 * 86_400))
    }

    /// A day's first row without a measurement of the volume carries the tenant's last
    /// known figure (the volume did not empty at midnight); a measurement replaces it.
    @Test func storageCarriesIntoANewDay() throws {
        let dir = TemporaryDirectory()
        let store = try makeStore(dir)
        try store.applyUsage(batch: 1, [UsageRow(tenantID: "acme", day: "2026-12-04", storageBytes: 8192),
                                        UsageRow(tenantID: "beta", day: "2026-12-04", storageBytes: 4096)], now: 1000)
        try store.applyUsage(batch: 2, [UsageRow(tenantID: "acme", day: "2026-12-06", requests: 1),
                                        UsageRow(tenantID: "gone", day: "2026-12-06", requests: 1)], now: 1001)
        #expect(try store.usage(tenant: "acme", from: "2026-12-06", to: "2026-12-06").first?.storageBytes == 8192)
        #expect(try store.usage(tenant: "gone", from: "2026-12-06", to: "2026-12-06").first?.storageBytes == 0)  // none known
        // A later delta without a measurement keeps the day's figure; one with a measurement wins.
        try store.applyUsage(batch: 3, [UsageRow(tenantID: "acme", day: "2026-12-06", requests: 1)], now: 1002)
        #expect(try store.usage(tenant: "acme", from: "2026-12-06", to: "2026-12-06").first?.storageBytes == 8192)
        try store.applyUsage(batch: 4, [UsageRow(tenantID: "acme", day: "2026-12-06", storageBytes: 0)], now: 1003)
        #expect(try store.usage(tenant: "acme", from: "2026-12-06", to: "2026-12-06").first?.storageBytes == 0)
        // Only earlier days carry: a row for an earlier day takes nothing from a later one.
        try store.applyUsage(batch: 5, [UsageRow(tenantID: "acme", day: "2026-12-01", requests: 1)], now: 1004)
        #expect(try store.usage(tenant: "acme", from: "2026-12-01", to: "2026-12-01").first?.storageBytes == 0)
    }
}
