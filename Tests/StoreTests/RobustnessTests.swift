// RobustnessTests.swift: hostile strings as data, many threads at once, and writes that
// are committed (visible to another connection) when the call returns.

import Glibc
import Testing
@testable import Store

@Suite struct Robustness {
    static let hostile = [
        "'; DROP TABLE tenants; --", "\"); DELETE FROM keys; --", "x' OR '1'='1", "%_\\", "nul\0inside", "",
        "línea\nnueva\r\n", "🚢 bulkhead", "?1 ?2 :name @x $y",
    ]

    @Test func injectionLookingStringsAreData() throws {
        let dir = TemporaryDirectory()
        let store = try makeStore(dir)
        for (i, text) in Robustness.hostile.enumerated() {
            let id = "id-\(i)-" + text
            let tenant = try store.createTenant(
                id: id, name: text, uidBase: 1000, uidCount: 100, now: 1, firstKey: tenantKey("jti-" + text, id))
            #expect(try store.tenant(id) == tenant)
            #expect(try store.tenant(id)?.name == text)
            #expect(try store.key("jti-" + text)?.tenantID == id)
            let auditID = try store.appendAudit(
                AuditRecord(time: 1, actor: text, action: text, target: text, result: text, detail: text))
            #expect(try store.audit(target: text, limit: 1)
                == [AuditRecord(id: auditID, time: 1, actor: text, action: text, target: text, result: text, detail: text)])
        }
        #expect(try store.tenants().count == Robustness.hostile.count)
        #expect(try store.allKeys().count == Robustness.hostile.count)
        #expect(try store.tenant("x' OR '1'='1") == nil)
        #expect(try store.integrityCheck() == "ok")
    }

    /// Statements are prepared once per SQL text: the cache does not grow with the data,
    /// which it would if a value were ever spliced into the SQL.
    @Test func statementsAreReused() throws {
        let dir = TemporaryDirectory()
        let store = try makeStore(dir)
        func round(_ i: Int) throws {
            let id = "t\(i)"
            try create(store, id)
            try store.insertKey(tenantKey("\(id)-k2", id))
            try store.revokeKey("\(id)-k2", now: 1)
            try store.rotateKey(old: "\(id)-key1", new: tenantKey("\(id)-k3", id), graceUntil: 2)
            try store.setStatus(id, .suspended)
            try store.setLimits(id, LimitOverrides(policies: [PolicyOverride(name: "default", burst: UInt64(i + 1))]))
            _ = try store.limits(id)
            _ = try store.tenant(id)
            _ = try store.keys(tenant: id)
            try store.appendAudit(AuditRecord(time: Int64(i), actor: "a", action: "b", target: id, result: "ok"))
            _ = try store.audit(target: id, limit: 3)
            _ = try store.deleteTenant(id, now: 3)
        }
        try round(0)
        let count = store.cachedStatementCount
        for i in 1..<50 { try round(i) }
        #expect(store.cachedStatementCount == count)
    }

    /// 8 threads × 25 tenants on one store: every uid once, every audit line kept.
    @Test func eightThreadsOnOneStore() throws {
        let dir = TemporaryDirectory()
        let store = try makeStore(dir)
        try hammer([store], dir)
    }

    /// The same with two independent connections on one file: SQLite's locks and the busy
    /// timeout, not our mutex, keep them apart.
    @Test func eightThreadsOnTwoConnections() throws {
        let dir = TemporaryDirectory()
        let stores = [try makeStore(dir), try makeStore(dir)]
        try hammer(stores, dir)
    }

    private func hammer(_ stores: [Store], _ dir: TemporaryDirectory) throws {
        let threads = 8, perThread = 25, base: UInt32 = 50_000
        let failures = Failures()
        onThreads(threads) { t in
            let store = stores[t % stores.count]
            for i in 0..<perThread {
                do {
                    let id = "t\(t)-\(i)"
                    try create(store, id, base: base, count: 1_000)
                    try store.appendAudit(AuditRecord(time: Int64(i), actor: "thread \(t)", action: "tenant.create", target: id, result: "ok"))
                    if i % 5 == 0 { _ = try store.deleteTenant(id, now: 2) }
                    _ = try store.tenants()
                } catch {
                    failures.add("thread \(t) step \(i): \(error)")
                }
            }
        }
        #expect(failures.all == [])
        let store = stores[0]
        let tenants = try store.tenants()
        #expect(tenants.count == threads * perThread * 4 / 5)
        #expect(Set(tenants.map(\.uid)).count == tenants.count)
        #expect(tenants.allSatisfy { $0.uid >= base && $0.uid < base + 1_000 })
        #expect(try store.allKeys().count == tenants.count)
        let audit = try store.audit(target: nil, limit: 10_000)
        #expect(audit.count == threads * perThread)
        #expect(Set(audit.map(\.id)).count == audit.count)
        #expect(try store.integrityCheck() == "ok")
    }

    /// Each call is committed when it returns: a second, independent connection on the same
    /// file sees it while the first is still open. (kill -9 is tested end to end with bulkheadd.)
    @Test func writesAreVisibleToAnotherConnectionAtOnce() throws {
        let dir = TemporaryDirectory()
        let writer = try makeStore(dir)
        let reader = try makeStore(dir)
        let tenant = try create(writer, "acme")
        #expect(try reader.tenant("acme") == tenant)
        try writer.setStatus("acme", .suspended)
        #expect(try reader.tenant("acme")?.status == .suspended)
        try writer.rotateKey(old: "acme-key1", new: tenantKey("acme-key2", "acme"), graceUntil: 88)
        #expect(try reader.key("acme-key1")?.replacedBy == "acme-key2")
        try writer.revokeKey("acme-key1", now: 77)
        #expect(try reader.key("acme-key1")?.revokedAt == 77)
        try writer.setLimits("acme", LimitOverrides(concurrency: 2))
        #expect(try reader.limits("acme") == LimitOverrides(concurrency: 2))
        let id = try writer.appendAudit(AuditRecord(time: 3, actor: "root", action: "x", result: "ok"))
        #expect(try reader.audit(target: nil, limit: 1).map(\.id) == [id])
        #expect(try reader.deleteTenant("acme", now: 9) == ["acme-key1", "acme-key2"])
        #expect(try writer.tenant("acme") == nil)
    }
}
