// TenantTests.swift: creating, reading, suspending and deleting tenants, and uid allocation.

import Testing
@testable import Store

@Suite struct Tenants {
    @Test func createReadAndList() throws {
        let dir = TemporaryDirectory()
        let store = try makeStore(dir)
        let b = try create(store, "beta", name: "Beta Ltd", now: 1_700_000_000)
        #expect(b == TenantRecord(id: "beta", name: "Beta Ltd", status: .active, uid: 200_000, gid: 200_000, createdAt: 1_700_000_000))
        try create(store, "alpha")
        try create(store, "gamma")
        #expect(try store.tenant("beta") == b)
        #expect(try store.tenant("missing") == nil)
        #expect(try store.tenants().map(\.id) == ["alpha", "beta", "gamma"])
        #expect(try store.tenants().map(\.uid) == [200_001, 200_000, 200_002])
        #expect(try store.tenants().allSatisfy { $0.gid == $0.uid })
        #expect(try store.keys(tenant: "beta") == [tenantKey("beta-key1", "beta")])
    }

    @Test func duplicateIDIsRefusedAndUsesNoUID() throws {
        let dir = TemporaryDirectory()
        let store = try makeStore(dir)
        try create(store, "acme", name: "Acme")
        let error = storeError {
            try store.createTenant(
                id: "acme", name: "Other", uidBase: 200_000, uidCount: 10, now: 5, firstKey: tenantKey("other-key", "acme"))
        }
        #expect(error == StoreError(code: .alreadyExists, message: #"tenant "acme" already exists"#))
        #expect(try store.tenant("acme")?.name == "Acme")
        #expect(try store.key("other-key") == nil)
        #expect(try create(store, "next").uid == 200_001)
    }

    @Test func uidsAreTheLowestFreeAndReusedOnlyAfterDelete() throws {
        let dir = TemporaryDirectory()
        let store = try makeStore(dir)
        for id in ["t0", "t1", "t2", "t3"] { try create(store, id, base: 1000, count: 10) }
        #expect(try store.tenants().map(\.uid) == [1000, 1001, 1002, 1003])
        _ = try store.deleteTenant("t1", now: 2000)
        _ = try store.deleteTenant("t0", now: 2000)
        #expect(try create(store, "t4", base: 1000, count: 10).uid == 1000)
        #expect(try create(store, "t5", base: 1000, count: 10).uid == 1001)
        #expect(try create(store, "t6", base: 1000, count: 10).uid == 1004)
        // A tenant outside today's range (configuration changed) neither blocks nor moves it.
        #expect(try create(store, "far", base: 5000, count: 1).uid == 5000)
        #expect(try create(store, "t7", base: 1000, count: 10).uid == 1005)
        // A range that starts inside the used block continues after it.
        #expect(try create(store, "t8", base: 1002, count: 10).uid == 1006)
    }

    @Test func exhaustedRangeIsAConflictUntilATenantIsDeleted() throws {
        let dir = TemporaryDirectory()
        let store = try makeStore(dir)
        try create(store, "a", base: 300, count: 2)
        try create(store, "b", base: 300, count: 2)
        let error = storeError { try create(store, "c", base: 300, count: 2) }
        #expect(error?.code == .conflict)
        #expect(error?.message == "uid range exhausted: uids 300-301 are all in use")
        #expect(try store.tenant("c") == nil)
        #expect(try store.key("c-key1") == nil)
        _ = try store.deleteTenant("a", now: 10)
        #expect(try create(store, "c", base: 300, count: 2).uid == 300)

        #expect(storeError { try create(store, "d", base: 400, count: 0) }?.code == .conflict)
    }

    @Test func uidRangeAtTheTopOfUInt32() throws {
        let dir = TemporaryDirectory()
        let store = try makeStore(dir)
        #expect(try create(store, "top", base: UInt32.max, count: 1).uid == UInt32.max)
        #expect(try store.tenant("top")?.uid == UInt32.max)
        #expect(storeError { try create(store, "over", base: UInt32.max, count: 2) }?.code == .conflict)
    }

    @Test func aFailingFirstKeyLeavesNoTenant() throws {
        let dir = TemporaryDirectory()
        let store = try makeStore(dir)
        try create(store, "first")
        // The first key's jti is taken: the whole creation is rolled back.
        let duplicate = storeError {
            try store.createTenant(
                id: "second", name: "S", uidBase: 200_000, uidCount: 10, now: 1, firstKey: tenantKey("first-key1", "second"))
        }
        #expect(duplicate?.code == .alreadyExists)
        #expect(try store.tenant("second") == nil)
        #expect(try store.tenants().map(\.id) == ["first"])
        #expect(try store.key("first-key1")?.tenantID == "first")
        // A key of another tenant, an admin key, or a bad scope are refused before any write.
        for key in [
            tenantKey("k", "someone-else"), adminKey("k"), tenantKey("k", "second", scopes: ["two words"]),
        ] {
            let error = storeError {
                try store.createTenant(id: "second", name: "S", uidBase: 200_000, uidCount: 10, now: 1, firstKey: key)
            }
            #expect(error?.code == .invalid)
            #expect(try store.tenant("second") == nil)
        }
        #expect(try create(store, "second").uid == 200_001)
    }

    @Test func suspendAndResume() throws {
        let dir = TemporaryDirectory()
        let store = try makeStore(dir)
        try create(store, "acme")
        try store.setStatus("acme", .suspended)
        #expect(try store.tenant("acme")?.status == .suspended)
        try store.setStatus("acme", .suspended)
        try store.setStatus("acme", .active)
        #expect(try store.tenant("acme")?.status == .active)
        #expect(storeError { try store.setStatus("nobody", .suspended) } == StoreError(code: .notFound, message: #"tenant "nobody" not found"#))
    }

    @Test func deleteCascadesAndReturnsTheRemovedJTIs() throws {
        let dir = TemporaryDirectory()
        let store = try makeStore(dir)
        try create(store, "acme")
        try create(store, "other")
        try store.insertKey(tenantKey("acme-b", "acme", issuedAt: 300))
        try store.insertKey(tenantKey("acme-a", "acme", issuedAt: 300))
        try store.insertKey(adminKey("root"))
        try store.setLimits("acme", LimitOverrides(policies: [PolicyOverride(name: "default", burst: 5)]))
        try store.setLimits("other", LimitOverrides(policies: [PolicyOverride(name: "default", burst: 6)]))

        #expect(try store.deleteTenant("acme", now: 400) == ["acme-key1", "acme-a", "acme-b"])
        #expect(try store.tenant("acme") == nil)
        #expect(try store.keys(tenant: "acme") == [])
        #expect(try store.key("acme-a") == nil)
        #expect(try store.limits("acme") == nil)
        #expect(try store.allKeys().map(\.jti) == ["other-key1", "root"])
        #expect(try store.allLimits() == ["other": LimitOverrides(policies: [PolicyOverride(name: "default", burst: 6)])])
        #expect(try store.deleteTenant("other", now: 401) == ["other-key1"])
        #expect(storeError { try store.deleteTenant("acme", now: 402) }?.code == .notFound)
        #expect(try store.integrityCheck() == "ok")
    }
}
