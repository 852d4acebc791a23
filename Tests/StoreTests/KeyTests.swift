// KeyTests.swift: recording, listing, revoking and rotating API keys.

import Testing
@testable import Store

@Suite struct Keys {
    @Test func everyFieldRoundTrips() throws {
        let dir = TemporaryDirectory()
        let store = try makeStore(dir)
        try create(store, "acme")
        let full = KeyRecord(
            jti: "k-full", tenantID: "acme", kind: .tenant, scopes: ["tasks:run", "usage:read"], issuedAt: 10, expiresAt: 20,
            revokedAt: 15, replacedBy: "k-next", graceUntil: 18)
        let bare = KeyRecord(jti: "k-bare", tenantID: "acme", kind: .tenant, scopes: [], issuedAt: -5)
        let admin = KeyRecord(jti: "a-1", tenantID: nil, kind: .admin, scopes: ["admin"], issuedAt: Int64.max)
        for key in [full, bare, admin] { try store.insertKey(key) }
        #expect(try store.key("k-full") == full)
        #expect(try store.key("k-bare") == bare)
        #expect(try store.key("a-1") == admin)
        #expect(try store.key("nope") == nil)
    }

    @Test func listsAreOrderedByIssueTimeThenJTI() throws {
        let dir = TemporaryDirectory()
        let store = try makeStore(dir)
        try create(store, "acme")  // acme-key1 issued at 100
        try store.insertKey(tenantKey("z", "acme", issuedAt: 50))
        try store.insertKey(tenantKey("b", "acme", issuedAt: 200))
        try store.insertKey(tenantKey("a", "acme", issuedAt: 200))
        try store.insertKey(adminKey("root-2", issuedAt: 7))
        try store.insertKey(adminKey("root-1", issuedAt: 9))
        #expect(try store.keys(tenant: "acme").map(\.jti) == ["z", "acme-key1", "a", "b"])
        #expect(try store.keys(tenant: nil).map(\.jti) == ["root-2", "root-1"])
        #expect(try store.keys(tenant: "nobody") == [])
        #expect(try store.allKeys().map(\.jti) == ["root-2", "root-1", "z", "acme-key1", "a", "b"])
    }

    @Test func refusedKeys() throws {
        let dir = TemporaryDirectory()
        let store = try makeStore(dir)
        try create(store, "acme")
        #expect(storeError { try store.insertKey(tenantKey("acme-key1", "acme")) }
            == StoreError(code: .alreadyExists, message: #"key "acme-key1" already exists"#))
        #expect(storeError { try store.insertKey(adminKey("acme-key1")) }?.code == .alreadyExists)
        #expect(storeError { try store.insertKey(tenantKey("k", "ghost")) } == StoreError(code: .notFound, message: #"tenant "ghost" not found"#))
        #expect(storeError { try store.insertKey(KeyRecord(jti: "k", tenantID: "acme", kind: .admin, scopes: [], issuedAt: 1)) }?.code == .invalid)
        #expect(storeError { try store.insertKey(KeyRecord(jti: "k", tenantID: nil, kind: .tenant, scopes: [], issuedAt: 1)) }?.code == .invalid)
        for scope in ["", "two words", "tab\there", "line\nbreak", "nbsp\u{A0}x"] {
            #expect(storeError { try store.insertKey(tenantKey("k", "acme", scopes: ["ok", scope])) }?.code == .invalid)
        }
        #expect(try store.key("k") == nil)
    }

    @Test func revokeIsIdempotentAndKeepsTheFirstTime() throws {
        let dir = TemporaryDirectory()
        let store = try makeStore(dir)
        try create(store, "acme")
        try store.revokeKey("acme-key1", now: 500)
        #expect(try store.key("acme-key1")?.revokedAt == 500)
        try store.revokeKey("acme-key1", now: 900)
        #expect(try store.key("acme-key1")?.revokedAt == 500)
        #expect(storeError { try store.revokeKey("nope", now: 1) } == StoreError(code: .notFound, message: #"key "nope" not found"#))
    }

    @Test func rotate() throws {
        let dir = TemporaryDirectory()
        let store = try makeStore(dir)
        try create(store, "acme")
        let next = tenantKey("acme-key2", "acme", issuedAt: 600)
        try store.rotateKey(old: "acme-key1", new: next, graceUntil: 900)
        #expect(try store.key("acme-key2") == next)
        let old = try #require(try store.key("acme-key1"))
        #expect(old.replacedBy == "acme-key2" && old.graceUntil == 900 && old.revokedAt == nil)

        // Rotating the same key twice would leave two live successors.
        let again = storeError { try store.rotateKey(old: "acme-key1", new: tenantKey("acme-key3", "acme"), graceUntil: 1) }
        #expect(again?.code == .conflict)
        #expect(try store.key("acme-key3") == nil)

        try store.revokeKey("acme-key2", now: 700)
        #expect(storeError { try store.rotateKey(old: "acme-key2", new: tenantKey("acme-key3", "acme"), graceUntil: 1) }?.code == .conflict)
        #expect(storeError { try store.rotateKey(old: "ghost", new: tenantKey("acme-key3", "acme"), graceUntil: 1) }?.code == .notFound)
    }

    @Test func rotateIsAtomicAndKeepsKindAndTenant() throws {
        let dir = TemporaryDirectory()
        let store = try makeStore(dir)
        try create(store, "acme")
        try create(store, "other")
        try store.insertKey(adminKey("root"))
        // A successor with a taken jti: nothing changes.
        #expect(storeError { try store.rotateKey(old: "acme-key1", new: tenantKey("root", "acme"), graceUntil: 1) }?.code == .alreadyExists)
        #expect(try store.key("acme-key1")?.replacedBy == nil)
        // A tenant key cannot be rotated into an admin key, nor into another tenant's.
        #expect(storeError { try store.rotateKey(old: "acme-key1", new: tenantKey("new", "other"), graceUntil: 1) }?.code == .invalid)
        #expect(storeError { try store.rotateKey(old: "acme-key1", new: adminKey("new"), graceUntil: 1) }?.code == .invalid)
        #expect(storeError { try store.rotateKey(old: "root", new: tenantKey("new", "acme"), graceUntil: 1) }?.code == .invalid)
        #expect(try store.key("new") == nil)
        try store.rotateKey(old: "root", new: adminKey("root-2", issuedAt: 200), graceUntil: 300)
        #expect(try store.keys(tenant: nil).map(\.jti) == ["root", "root-2"])
    }
}
