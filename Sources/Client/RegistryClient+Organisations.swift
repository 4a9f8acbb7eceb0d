import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import RegistryAPI

/// Organisation calls: organisations, members, packages they hold, transfers.
extension RegistryClient {
    public func organisations() async throws -> Data { try await get("/api/v1/orgs") }

    public func organisation(_ name: String) async throws -> Data { try await get("/api/v1/orgs/\(Self.escape(name))") }

    public func createOrganisation(_ name: String, description: String, admin: String) async throws -> Data {
        try await sendJSON("/api/v1/orgs", method: .POST, body: OrganisationBody(name: name, description: description, admin: admin), expecting: 201)
    }

    public func setMember(_ org: String, user: String, role: String) async throws -> Data {
        try await sendJSON("/api/v1/orgs/\(Self.escape(org))/members/\(Self.escape(user))", method: .PUT,
                           body: OrganisationChangeRequest(role: role))
    }

    public func removeMember(_ org: String, user: String) async throws {
        _ = try await send(request("/api/v1/orgs/\(Self.escape(org))/members/\(Self.escape(user))", method: .DELETE), expecting: 204)
    }

    public func setOrganisation(ofPackage package: String, to org: String?) async throws {
        if let org {
            _ = try await sendJSON("/api/v1/packages/\(Self.escape(package))/org", method: .PUT, body: OrganisationChangeRequest(org: org),
                                   expecting: 204)
        } else {
            _ = try await send(request("/api/v1/packages/\(Self.escape(package))/org", method: .DELETE), expecting: 204)
        }
    }

    public func transfer(_ package: String, to user: String) async throws -> Data {
        try await sendJSON("/api/v1/packages/\(Self.escape(package))/transfer", method: .POST, body: OrganisationChangeRequest(user: user),
                           expecting: 202)
    }
}
