import Foundation
import Logging
import PackageFormat
@testable import Storage
import TestSupport
import Testing

/// The contract every account store keeps. Each test runs over every implementation.
@Suite struct AccountStoreContractTests {
    typealias Kind = MetadataStoreContractTests.Kind

    static func makeStore(_ kind: Kind) async throws -> (any MetadataStore & AccountStore, @Sendable () async -> Void) {
        switch kind {
        case .sqlite:
            let directory = try Fixtures.temporaryDirectory()
            let store = try await SQLiteMetadataStore.open(path: directory.appendingPathComponent("epr.sqlite").path, logger: Logger(label: "test"))
            try await store.migrate()
            return (store, {
                try? await store.close()
                try? FileManager.default.removeItem(at: directory)
            })
        }
    }

    static let t0 = Date(timeIntervalSince1970: 1_700_000_000)

    static func record(_ version: String, publisher: String, package: String = "xdp-filter") -> VersionRecord {
        var record = MetadataStoreContractTests.record(version, package: package)
        record.publisher = publisher
        return record
    }

    @Test(arguments: Kind.allCases)
    func users(kind: Kind) async throws {
        let (store, cleanup) = try await Self.makeStore(kind)
        defer { Task { await cleanup() } }
        #expect(try await !store.hasUsers())
        try await store.insertUser(UserRecord(name: "alice", role: "publisher", createdAt: Self.t0))
        await #expect(throws: AccountStoreError.userExists("alice")) {
            try await store.insertUser(UserRecord(name: "alice", role: "admin", createdAt: Self.t0))
        }
        try await store.insertUser(UserRecord(name: "bob", role: "user", createdAt: Self.t0))
        #expect(try await store.hasUsers())
        #expect(try await store.users().map(\.name) == ["alice", "bob"])
        #expect(try await store.user(name: "alice")?.role == "publisher", "a refused insert changes nothing")
        let updated = try await store.updateUser(name: "bob", role: "reviewer", disabled: true)
        #expect(updated.role == "reviewer" && updated.disabled)
        #expect(try await store.updateUser(name: "bob", role: nil, disabled: false) == UserRecord(name: "bob", role: "reviewer",
                                                                                                 createdAt: Self.t0, disabled: false))
        await #expect(throws: AccountStoreError.userNotFound("carol")) { _ = try await store.updateUser(name: "carol", role: "user", disabled: nil) }
    }

    @Test(arguments: Kind.allCases)
    func neverWithoutAnAdmin(kind: Kind) async throws {
        let (store, cleanup) = try await Self.makeStore(kind)
        defer { Task { await cleanup() } }
        let token = TokenRecord(id: "tok_boot", user: "root", name: "bootstrap", scopes: ["admin"], createdAt: Self.t0)
        #expect(try await store.bootstrap(UserRecord(name: "root", role: "admin", createdAt: Self.t0), token: token, hash: "hb"))
        #expect(try await !store.bootstrap(UserRecord(name: "other", role: "admin", createdAt: Self.t0), token: token, hash: "hc"),
                "only a store without users is bootstrapped")
        #expect(try await store.token(hash: "hb")?.user == "root")
        #expect(try await store.user(name: "other") == nil)
        try await store.insertUser(UserRecord(name: "second", role: "admin", createdAt: Self.t0))
        _ = try await store.updateUser(name: "second", role: nil, disabled: true)
        await #expect(throws: AccountStoreError.lastAdmin) { _ = try await store.updateUser(name: "root", role: "publisher", disabled: nil) }
        await #expect(throws: AccountStoreError.lastAdmin) { _ = try await store.updateUser(name: "root", role: nil, disabled: true) }
        #expect(try await store.user(name: "root") == UserRecord(name: "root", role: "admin", createdAt: Self.t0), "a refused change changes nothing")
        _ = try await store.updateUser(name: "second", role: nil, disabled: false)
        #expect(try await store.updateUser(name: "root", role: "publisher", disabled: nil).role == "publisher")
    }

    @Test(arguments: Kind.allCases)
    func tokens(kind: Kind) async throws {
        let (store, cleanup) = try await Self.makeStore(kind)
        defer { Task { await cleanup() } }
        try await store.insertUser(UserRecord(name: "alice", role: "publisher", createdAt: Self.t0))
        let token = TokenRecord(id: "tok_1", user: "alice", name: "ci", scopes: ["publish-update", "yank"], packages: ["l3af-*"],
                                createdAt: Self.t0, expiresAt: Self.t0.addingTimeInterval(86_400))
        try await store.insertToken(token, hash: "h1")
        await #expect(throws: AccountStoreError.userNotFound("nobody")) {
            try await store.insertToken(TokenRecord(id: "tok_2", user: "nobody", name: "x", scopes: [], createdAt: Self.t0), hash: "h2")
        }
        #expect(try await store.token(hash: "h1") == token)
        #expect(try await store.token(id: "tok_1") == token)
        #expect(try await store.token(hash: "h2") == nil)
        #expect(try await store.tokens(user: "alice") == [token])

        try await store.touchToken(id: "tok_1", at: Self.t0.addingTimeInterval(10))
        try await store.touchToken(id: "tok_1", at: Self.t0.addingTimeInterval(20)) // within a minute: not written
        #expect(try await store.token(id: "tok_1")?.lastUsedAt == Self.t0.addingTimeInterval(10))
        try await store.touchToken(id: "tok_1", at: Self.t0.addingTimeInterval(100))
        #expect(try await store.token(id: "tok_1")?.lastUsedAt == Self.t0.addingTimeInterval(100))

        #expect(try await store.revokeToken(id: "tok_1", at: Self.t0.addingTimeInterval(200)))
        #expect(try await !store.revokeToken(id: "tok_1", at: Self.t0.addingTimeInterval(300)), "revoking twice keeps the first time")
        #expect(try await store.token(hash: "h1")?.revokedAt == Self.t0.addingTimeInterval(200))
        #expect(try await !store.revokeToken(id: "tok_none", at: Self.t0))
    }

    @Test(arguments: Kind.allCases)
    func ownersPublishAndInvitations(kind: Kind) async throws {
        let (store, cleanup) = try await Self.makeStore(kind)
        defer { Task { await cleanup() } }
        for name in ["alice", "bob", "carol"] { try await store.insertUser(UserRecord(name: name, role: "publisher", createdAt: Self.t0)) }

        // The first publisher owns the new package; others may not publish to it.
        try await store.insertVersion(Self.record("1.0.0", publisher: "alice"), packageName: "xdp-filter", canonical: "xdp-filter",
                                      description: "", ownership: .owners) {}
        #expect(try await store.owners(package: "xdp-filter") == ["alice"])
        await #expect(throws: AccountStoreError.notOwner(user: "bob", package: "xdp-filter")) {
            try await store.insertVersion(Self.record("1.1.0", publisher: "bob"), packageName: "xdp-filter", canonical: "xdp-filter",
                                          description: "", ownership: .owners) { Issue.record("no blob for a refused version") }
        }
        #expect(try await store.version(canonical: "xdp-filter", version: "1.1.0") == nil)
        try await store.insertVersion(Self.record("1.1.0", publisher: "alice"), packageName: "xdp-filter", canonical: "xdp-filter",
                                      description: "", ownership: .owners) {}
        // An admin publish (.anyone) does not make the admin an owner of an existing package.
        try await store.insertVersion(Self.record("1.2.0", publisher: "carol"), packageName: "xdp-filter", canonical: "xdp-filter",
                                      description: "", ownership: .anyone) {}
        #expect(try await store.owners(package: "xdp-filter") == ["alice"])

        // Invitations: pending until accepted; declining or withdrawing removes them.
        try await store.invite(OwnerInvitation(package: "xdp-filter", user: "bob", invitedBy: "alice", createdAt: Self.t0))
        try await store.invite(OwnerInvitation(package: "xdp-filter", user: "carol", invitedBy: "alice", createdAt: Self.t0))
        await #expect(throws: AccountStoreError.userNotFound("dave")) {
            try await store.invite(OwnerInvitation(package: "xdp-filter", user: "dave", invitedBy: "alice", createdAt: Self.t0))
        }
        await #expect(throws: AccountStoreError.alreadyOwner(user: "alice", package: "xdp-filter")) {
            try await store.invite(OwnerInvitation(package: "xdp-filter", user: "alice", invitedBy: "alice", createdAt: Self.t0))
        }
        #expect(try await store.invitations(user: "bob").map(\.package) == ["xdp-filter"])
        #expect(try await store.invitations(package: "xdp-filter").map(\.user).sorted() == ["bob", "carol"])
        #expect(try await store.owners(package: "xdp-filter") == ["alice"], "an invitation is not ownership")
        #expect(try await store.answerInvitation(package: "xdp-filter", user: "bob", accept: true))
        #expect(try await !store.answerInvitation(package: "xdp-filter", user: "bob", accept: true), "an invitation is answered once")
        #expect(try await store.answerInvitation(package: "xdp-filter", user: "carol", accept: false))
        #expect(try await Set(store.owners(package: "xdp-filter")) == ["alice", "bob"])
        #expect(try await store.invitations(package: "xdp-filter").isEmpty)
        try await store.insertVersion(Self.record("2.0.0", publisher: "bob"), packageName: "xdp-filter", canonical: "xdp-filter",
                                      description: "", ownership: .owners) {}

        // Removing owners: never the last one.
        try await store.removeOwner(package: "xdp-filter", user: "alice")
        await #expect(throws: AccountStoreError.lastOwner("xdp-filter")) { try await store.removeOwner(package: "xdp-filter", user: "bob") }
        await #expect(throws: AccountStoreError.notOwner(user: "carol", package: "xdp-filter")) {
            try await store.removeOwner(package: "xdp-filter", user: "carol")
        }
        #expect(try await store.owners(package: "xdp-filter") == ["bob"])

        // Invitations stand only while whoever sent them owns the package.
        try await store.invite(OwnerInvitation(package: "xdp-filter", user: "alice", invitedBy: "bob", createdAt: Self.t0))
        #expect(try await store.answerInvitation(package: "xdp-filter", user: "alice", accept: true))
        try await store.invite(OwnerInvitation(package: "xdp-filter", user: "carol", invitedBy: "alice", createdAt: Self.t0))
        try await store.removeOwner(package: "xdp-filter", user: "alice")
        #expect(try await store.invitations(package: "xdp-filter").isEmpty, "a removed owner's invitations go with it")
        #expect(try await !store.answerInvitation(package: "xdp-filter", user: "carol", accept: true))
        #expect(try await store.owners(package: "xdp-filter") == ["bob"])
    }

    /// Two publishers racing to create the same package: exactly one owns it.
    @Test(arguments: Kind.allCases)
    func racingFirstPublishers(kind: Kind) async throws {
        let (store, cleanup) = try await Self.makeStore(kind)
        defer { Task { await cleanup() } }
        let users = (0..<10).map { "user\($0)" }
        for name in users { try await store.insertUser(UserRecord(name: name, role: "publisher", createdAt: Self.t0)) }
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for (index, name) in users.enumerated() {
                group.addTask {
                    (try? await store.insertVersion(Self.record("1.0.\(index)", publisher: name), packageName: "contested", canonical: "contested",
                                                   description: "", ownership: .owners) {}) != nil
                }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(outcomes.filter { $0 }.count == 1)
        let owners = try await store.owners(package: "contested")
        #expect(owners.count == 1)
        #expect(try await store.versions(canonical: "contested").map(\.publisher) == owners)
    }

    @Test(arguments: Kind.allCases)
    func auditLogIsAppendOnly(kind: Kind) async throws {
        let (store, cleanup) = try await Self.makeStore(kind)
        defer { Task { await cleanup() } }
        for index in 0..<5 {
            try await store.appendAudit(AuditRecord(at: Self.t0.addingTimeInterval(Double(index)), actor: index % 2 == 0 ? "alice" : "bob",
                                                    tokenID: "tok_\(index)", address: "127.0.0.1", action: index < 3 ? "publish" : "yank",
                                                    target: "p@1.0.\(index)"))
        }
        let all = try await store.audit(actor: nil, action: nil, offset: 0, limit: 10)
        #expect(all.total == 5)
        #expect(all.items.map(\.target) == (0..<5).reversed().map { "p@1.0.\($0)" }, "newest first")
        #expect(all.items.first?.tokenID == "tok_4" && all.items.first?.address == "127.0.0.1" && all.items.first?.outcome == "success")
        let alice = try await store.audit(actor: "alice", action: "publish", offset: 0, limit: 10)
        #expect(alice.total == 2 && alice.items.allSatisfy { $0.actor == "alice" && $0.action == "publish" })
        let second = try await store.audit(actor: nil, action: nil, offset: 2, limit: 2)
        #expect(second.items.map(\.target) == ["p@1.0.2", "p@1.0.1"])
        // Nothing rewrites history, not even through the database.
        if let sqlite = store as? SQLiteMetadataStore {
            await #expect(throws: (any Error).self) { try await sqlite.execute("UPDATE audit_log SET actor = 'mallory'") }
            await #expect(throws: (any Error).self) { try await sqlite.execute("DELETE FROM audit_log") }
            await #expect(throws: (any Error).self) {
                try await sqlite.execute("INSERT OR REPLACE INTO audit_log (id, at, action, outcome) VALUES (1, 0, 'forged', 'success')")
            }
            #expect(try await store.audit(actor: "mallory", action: nil, offset: 0, limit: 10).total == 0)
            #expect(try await store.audit(actor: nil, action: nil, offset: 0, limit: 10).total == 5)
        }
    }

    /// A data directory of the first schema keeps working: its admin token gets every scope,
    /// and whoever published a package owns it.
    @Test func firstSchemaMigrates() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try await SQLiteMetadataStore.open(path: directory.appendingPathComponent("epr.sqlite").path, logger: Logger(label: "test"))
        defer { Task { try? await store.close() } }
        try await store.migrate(through: 1)
        try await store.execute("INSERT INTO tokens (hash, owner, role, created_at) VALUES ('h-admin', 'admin', 'admin', 1)")
        try await store.execute("""
            INSERT INTO packages (canonical, name, description, created_at, updated_at) VALUES ('xdp-filter', 'xdp-filter', '', 1, 1)
            """)
        try await store.execute("""
            INSERT INTO versions (canonical, version, version_key, artifact, platforms, digest, size, manifest, report, publisher,
            published_at) VALUES ('xdp-filter', '1.0.0', '1.0.0', 'a.tar.gz', 'any', 'ab', 1, x'7b7d', x'7b7d', 'admin', 1)
            """)
        try await store.migrate()
        let token = try #require(try await store.token(hash: "h-admin"))
        #expect(token.user == "admin" && token.scopes.contains("admin") && token.scopes.contains("publish-new"))
        #expect(try await store.user(name: "admin")?.role == "admin")
        #expect(try await store.owners(package: "xdp-filter") == ["admin"])
    }
}
