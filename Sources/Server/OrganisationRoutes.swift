import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Registry
import RegistryAPI
import Storage

/// Organisations in the REST API v1: listing and creating them, their members, the packages
/// they hold, and transfers of packages to other owners.
struct OrganisationRoutes: Sendable {
    let registry: RegistryService
    let authenticator: Authenticator

    func add(to router: Router<RegistryRequestContext>) {
        let api = router.group("api/v1")
        api.get("orgs", use: list)
        api.post("orgs", use: create)
        api.get("orgs/:org", use: show)
        api.put("orgs/:org/members/:user", use: setMember)
        api.delete("orgs/:org/members/:user", use: removeMember)
        api.put("packages/:name/org", use: setPackageOrganisation)
        api.delete("packages/:name/org", use: removePackageOrganisation)
        api.post("packages/:name/transfer", use: transfer)
    }

    func principal(_ request: Request, _ context: RegistryRequestContext) async throws -> Principal? {
        try await authenticator.principal(request, context)
    }

    func body<T: Decodable>(_ type: T.Type, _ request: Request, example: String) async throws -> T {
        try await JSONBody.decode(type, from: request, example: example)
    }

    static func body(_ view: RegistryService.OrganisationView) -> OrganisationBody {
        OrganisationBody(name: view.organisation.name, description: view.organisation.description, created_by: view.organisation.createdBy,
                         created_at: view.organisation.createdAt, members: view.members.map { MemberBody(user: $0.user, role: $0.role, added_at: $0.addedAt) },
                         packages: view.packages)
    }

    @Sendable func list(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        try JSON.response(try await registry.organisationList().map {
            OrganisationBody(name: $0.name, description: $0.description, created_by: $0.createdBy, created_at: $0.createdAt)
        })
    }

    @Sendable func create(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let principal = try await principal(request, context)
        try await registry.authorize(.manageUsers, principal, target: nil)
        let body = try await body(OrganisationBody.self, request, example: #"{"name": "l3af", "description": "...", "admin": "alice"}"#)
        guard let admin = body.admin else { throw RegistryError.invalidRequest("a new organisation needs its first admin") }
        let view = try await registry.createOrganisation(name: body.name, description: body.description, admin: admin, by: principal)
        return try JSON.response(Self.body(view), status: .created, headers: [.location: "/api/v1/orgs/\(view.organisation.name)"])
    }

    @Sendable func show(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        try JSON.response(Self.body(try await registry.organisation(try context.parameters.require("org"))))
    }

    @Sendable func setMember(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let principal = try await principal(request, context)
        let org = try context.parameters.require("org")
        try await registry.authorize(.manageOrganisation(org: org), principal, owners: try await registry.organisationAdmins(org), target: org)
        let body = try await body(OrganisationChangeRequest.self, request, example: #"{"role": "member"}"#)
        let member = try await registry.setMember(org, user: try context.parameters.require("user"), role: body.role ?? "member", by: principal)
        return try JSON.response(MemberBody(user: member.user, role: member.role, added_at: member.addedAt))
    }

    @Sendable func removeMember(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        try await registry.removeMember(try context.parameters.require("org"), user: try context.parameters.require("user"),
                                        by: try await principal(request, context))
        return Response(status: .noContent)
    }

    @Sendable func setPackageOrganisation(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let principal = try await principal(request, context)
        let name = try context.parameters.require("name")
        guard principal != nil else { throw RegistryError.unauthenticated }
        let body = try await body(OrganisationChangeRequest.self, request, example: #"{"org": "l3af"}"#)
        guard let org = body.org else { throw RegistryError.invalidRequest("name the organisation: {\"org\": \"...\"}") }
        try await registry.setOrganisation(ofPackage: name, to: org, by: principal)
        return Response(status: .noContent)
    }

    @Sendable func removePackageOrganisation(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        try await registry.setOrganisation(ofPackage: try context.parameters.require("name"), to: nil, by: try await principal(request, context))
        return Response(status: .noContent)
    }

    @Sendable func transfer(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let principal = try await principal(request, context)
        guard principal != nil else { throw RegistryError.unauthenticated }
        let body = try await body(OrganisationChangeRequest.self, request, example: #"{"user": "bob"}"#)
        guard let user = body.user else { throw RegistryError.invalidRequest("name the new owner: {\"user\": \"...\"}") }
        let invitation = try await registry.transfer(try context.parameters.require("name"), to: user, by: principal)
        return try JSON.response(AccountRoutes.body(invitation), status: .accepted)
    }
}
