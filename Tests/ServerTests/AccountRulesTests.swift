import Foundation
import HTTPTypes
import HummingbirdTesting
@testable import Registry
import Server
import Storage
import Testing

/// Rules of tokens and accounts that the route matrix does not reach.
@Suite struct AccountRulesTests {
    static var admin: Principal { Principal(name: "admin", role: .admin) }

    /// Runs `body` with a fresh registry, closing it afterwards.
    static func using(_ body: (TestRegistry) async throws -> Void) async throws {
        let registry = try await TestRegistry.make()
        do { try await body(registry) } catch {
            await registry.close()
            throw error
        }
        await registry.close()
    }

    @Test func tokensNeverOutliveOrWidenTheTokenThatMadeThem() async throws { try await Self.using { registry in
        let service = registry.server.registry
        _ = try await service.createUser(name: "alice", role: .publisher, by: Self.admin)
        let parent = try await service.createToken(for: "alice", name: "ci", scopes: ["publish-update", "owners"], packages: ["l3af-*"],
                                                   expiresIn: 3600, by: Self.admin)
        let alice = try await service.principal(forToken: parent.secret)
        func same(_ a: Date?, _ b: Date?) -> Bool { a != nil && b != nil && abs(a!.timeIntervalSince(b!)) < 0.001 }
        #expect(same(alice.tokenExpiresAt, parent.record.expiresAt))

        let child = try await service.createToken(for: nil, name: "child", scopes: ["publish-update"], packages: ["l3af-*"], expiresIn: nil, by: alice)
        #expect(same(child.record.expiresAt, parent.record.expiresAt), "a child without an expiry gets its parent's")
        await #expect(throws: RegistryError.self) {
            _ = try await service.createToken(for: nil, name: "longer", scopes: [], packages: ["l3af-*"], expiresIn: 86_400, by: alice)
        }
        await #expect(throws: RegistryError.self) {
            _ = try await service.createToken(for: nil, name: "wider", scopes: [], packages: [], expiresIn: nil, by: alice)
        }
        await #expect(throws: RegistryError.self) {
            _ = try await service.createToken(for: nil, name: "bad\u{1b}[2Jname", scopes: [], packages: ["l3af-*"], expiresIn: nil, by: alice)
        }
        // An admin's limited token limits what it issues to others too.
        let narrowAdmin = try await service.principal(forToken: try await service.createToken(
            for: "admin", name: "narrow", scopes: ["admin"], packages: ["l3af-*"], expiresIn: nil, by: Self.admin).secret)
        await #expect(throws: RegistryError.self) {
            _ = try await service.createToken(for: "alice", name: "escape", scopes: ["publish-update"], packages: [], expiresIn: nil, by: narrowAdmin)
        }
        let denied = try await service.accounts.audit(actor: "admin", action: "token.create", offset: 0, limit: 10).items
        #expect(denied.contains { $0.outcome == "denied" }, "refused escalations are audited")
    } }

    @Test func tokensOfTheFirstSchemaStillAuthenticate() async throws { try await Self.using { registry in
        let service = registry.server.registry
        // First-schema data directories accepted any admin token the operator chose.
        try await service.accounts.insertToken(TokenRecord(id: "tok_old", user: "admin", name: "initial", scopes: ["admin"], createdAt: Date()),
                                               hash: AccessToken.hash("chosen-by-the-operator"))
        #expect(try await service.principal(forToken: "chosen-by-the-operator").name == "admin")
    } }

    @Test func anAdminsNarrowTokenGetsNoMoreThanAnOwnersWould() async throws {
        let registry = try await TestRegistry.make { $0.autoPublish = ["alice"] }
        let archive = try registry.archive("exec-tracker")
        let service = registry.server.registry
        _ = try await service.createUser(name: "alice", role: .publisher, by: Self.admin)
        let alice = try await service.createToken(for: "alice", name: "t", scopes: ["publish-new", "publish-update"], packages: [],
                                                  expiresIn: nil, by: Self.admin).secret
        let yankOnly = try await service.createToken(for: "admin", name: "y", scopes: ["yank"], packages: [], expiresIn: nil, by: Self.admin).secret
        try await registry.run { client in
            #expect(try await client.publish(archive, token: alice).status == .created)
            let yank = try await client.execute(uri: "/api/v1/packages/exec-tracker/versions/1.0.0/yank", method: .put,
                                                headers: [.authorization: "Bearer \(yankOnly)"])
            #expect(yank.status == .forbidden, "without the admin scope, an admin is not an owner")
            let full = try await client.execute(uri: "/api/v1/packages/exec-tracker/versions/1.0.0/yank", method: .put,
                                                headers: [.authorization: "Bearer \(TestRegistry.token)"])
            #expect(full.status == .ok)
        }
    }
}
