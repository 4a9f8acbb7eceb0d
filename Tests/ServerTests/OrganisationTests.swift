import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
@testable import Registry
import RegistryAPI
import Server
import Storage
import TestSupport
import Testing

/// Organisations own a namespace and the packages in it together; packages move into them and
/// pass to other owners by accepted transfers.
@Suite struct OrganisationTests {
    @Test func namespacesMembersAndTransfers() async throws {
        // Ownership is the point here, not review: everyone's uploads are published once checked.
        let registry = try await TestRegistry.make {
            $0.publishesPerHour = 0
            $0.autoPublish = ["alice", "bob", "carol"]
        }
        let service = registry.server.registry
        let admin = Principal(name: "admin", role: .admin)
        var tokens: [String: String] = [:]
        for name in ["alice", "bob", "carol"] {
            _ = try await service.createUser(name: name, role: .publisher, by: admin)
            tokens[name] = try await service.createToken(for: name, name: "t", scopes: Principal.Role.publisher.scopes.map(\.rawValue), packages: [],
                                                         expiresIn: nil, by: admin).secret
        }
        let archives = [("xdp-port-filter", "1.0.0"), ("xdp-port-filter", "1.1.0"), ("xdp-port-filter", "1.2.0"), ("exec-tracker", "1.0.0"),
                        ("exec-tracker", "1.1.0")]
        var built: [String: ByteBuffer] = [:]
        for (example, version) in archives { built["\(example)@\(version)"] = try registry.archive(example, version: version) }
        let users = tokens, packages = built
        try await registry.run { client in
            func call(_ user: String, _ method: HTTPRequest.Method, _ uri: String, _ json: String? = nil) async throws -> TestResponse {
                let token = user == "admin" ? TestRegistry.token : users[user] ?? ""
                return try await client.send(method, uri, json: json, headers: [.authorization: "Bearer \(token)"])
            }
            func publish(_ user: String, _ package: String) async throws -> TestResponse {
                try await client.publish(try #require(packages[package]), token: users[user])
            }
            func owners(_ package: String) async throws -> OwnersBody {
                try await client.get("/api/v1/packages/\(package)/owners").json(OwnersBody.self)
            }

            #expect(try await call("alice", .post, "/api/v1/orgs", #"{"name": "xdp", "description": "XDP programs", "admin": "alice"}"#).status
                    == .forbidden, "only admins create organisations: a name claims a namespace")
            let created = try await call("admin", .post, "/api/v1/orgs", #"{"name": "xdp", "description": "XDP programs", "admin": "alice"}"#)
            #expect(created.status == .created)
            #expect(try await call("admin", .post, "/api/v1/orgs", #"{"name": "xdp", "description": "", "admin": "bob"}"#).status == .conflict)

            // The namespace: only members publish new packages named xdp-...; they belong to the organisation.
            let outsider = try await publish("bob", "xdp-port-filter@1.0.0")
            #expect(outsider.status == .forbidden && String(buffer: outsider.body).contains("namespace of the organisation xdp"))
            #expect(try await publish("alice", "xdp-port-filter@1.0.0").status == .created)
            let held = try await owners("xdp-port-filter")
            #expect(held.owners == ["alice"] && held.organisation == "xdp")

            // Members own the organisation's packages; admins manage members.
            #expect(try await publish("carol", "xdp-port-filter@1.1.0").status == .forbidden)
            #expect(try await call("alice", .put, "/api/v1/orgs/xdp/members/carol", #"{"role": "member"}"#).status == .ok)
            #expect(try await publish("carol", "xdp-port-filter@1.1.0").status == .created)
            #expect(try await call("carol", .put, "/api/v1/packages/xdp-port-filter/versions/1.0.0/yank", #"{"reason": "old"}"#).status == .ok)
            #expect(try await call("carol", .put, "/api/v1/orgs/xdp/members/bob", #"{"role": "member"}"#).status == .forbidden)
            let lastAdmin = try await call("alice", .delete, "/api/v1/orgs/xdp/members/alice")
            #expect(lastAdmin.status == .conflict && lastAdmin.problemCode == "organisation-conflict")
            #expect(try await call("carol", .delete, "/api/v1/orgs/xdp/members/carol").status == .noContent, "members may leave")
            #expect(try await publish("carol", "xdp-port-filter@1.2.0").status == .forbidden)
            let shown = try await client.get("/api/v1/orgs/xdp").json(OrganisationBody.self)
            #expect(shown.members?.map(\.user) == ["alice"] && shown.packages == ["xdp-port-filter"])

            // A transfer: bob offers exec-tracker to carol; accepting makes her its only owner.
            #expect(try await publish("bob", "exec-tracker@1.0.0").status == .created)
            #expect(try await call("carol", .post, "/api/v1/packages/exec-tracker/transfer", #"{"user": "carol"}"#).status == .forbidden)
            #expect(try await call("bob", .post, "/api/v1/packages/exec-tracker/transfer", #"{"user": "carol"}"#).status == .accepted)
            #expect(try await owners("exec-tracker").owners == ["bob"], "nothing changes before she accepts")
            let offered = try await call("carol", .get, "/api/v1/me/invitations").json([InvitationBody].self)
            #expect(offered.count == 1 && offered[0].transfer == true)
            #expect(try await call("carol", .put, "/api/v1/me/invitations/exec-tracker").status == .noContent)
            #expect(try await owners("exec-tracker").owners == ["carol"])
            #expect(try await publish("bob", "exec-tracker@1.1.0").status == .forbidden)

            // Moving a package into an organisation takes an admin of it.
            #expect(try await call("carol", .put, "/api/v1/packages/exec-tracker/org", #"{"org": "xdp"}"#).status == .forbidden)
            #expect(try await call("alice", .put, "/api/v1/orgs/xdp/members/carol", #"{"role": "admin"}"#).status == .ok)
            #expect(try await call("carol", .put, "/api/v1/packages/exec-tracker/org", #"{"org": "xdp"}"#).status == .noContent)
            #expect(try await call("alice", .put, "/api/v1/packages/exec-tracker/versions/1.0.0/yank", #"{"reason": "x"}"#).status == .ok)
            #expect(try await call("alice", .delete, "/api/v1/packages/exec-tracker/org").status == .noContent)
            #expect(try await call("alice", .put, "/api/v1/packages/exec-tracker/versions/1.0.0/deprecation", #"{"message": "x"}"#).status
                    == .forbidden, "out of the organisation, its members no longer own it")

            let audit = try await service.accounts.audit(actor: nil, action: nil, offset: 0, limit: 100).items.map(\.action)
            for action in ["org.create", "org.member", "org.member-remove", "owner.transfer-offer", "owner.accept", "org.package-add",
                           "org.package-remove"] {
                #expect(audit.contains(action), "\(action)")
            }
        }
    }
}
