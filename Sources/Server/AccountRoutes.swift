import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Registry
import RegistryAPI
import Storage

/// Accounts in the REST API v1: the caller's own account and invitations, users (admins),
/// tokens, package owners, and the audit log (admins).
struct AccountRoutes: Sendable {
    let registry: RegistryService
    let authenticator: Authenticator

    func add(to router: Router<RegistryRequestContext>) {
        let api = router.group("api/v1")
        api.get("me", use: me)
        api.get("me/invitations", use: invitations)
        api.put("me/invitations/:name") { request, context in try await answer(request, context, accept: true) }
        api.delete("me/invitations/:name") { request, context in try await answer(request, context, accept: false) }
        api.get("users", use: users)
        api.post("users", use: createUser)
        api.patch("users/:user", use: updateUser)
        api.get("tokens", use: tokens)
        api.post("tokens", use: createToken)
        api.delete("tokens/:id", use: revokeToken)
        api.get("packages/:name/owners", use: owners)
        api.put("packages/:name/owners/:user", use: inviteOwner)
        api.delete("packages/:name/owners/:user", use: removeOwner)
        api.get("audit", use: audit)
    }

    func principal(_ request: Request, _ context: RegistryRequestContext) async throws -> Principal? {
        try await authenticator.principal(request, context)
    }

    /// Decodes a JSON body of at most 64 KiB, or says what is wrong with it.
    func body<T: Decodable>(_ type: T.Type, _ request: Request, example: String) async throws -> T {
        try await JSONBody.decode(type, from: request, example: example, requireJSONType: false)
    }

    // MARK: Own account

    @Sendable func me(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let (user, token) = try await registry.account(of: try await principal(request, context))
        return try JSON.response(AccountBody(user: Self.body(user), token: token.map { Self.body($0) }))
    }

    @Sendable func invitations(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        try JSON.response(try await registry.invitations(by: try await principal(request, context)).map(Self.body))
    }

    func answer(_ request: Request, _ context: RegistryRequestContext, accept: Bool) async throws -> Response {
        try await registry.answerInvitation(try context.parameters.require("name"), accept: accept, by: try await principal(request, context))
        return Response(status: .noContent)
    }

    // MARK: Users

    @Sendable func users(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        try JSON.response(try await registry.users(by: try await principal(request, context)).map(Self.body))
    }

    @Sendable func createUser(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let principal = try await principal(request, context)
        try await registry.authorize(.manageUsers, principal, target: nil)
        let body = try await body(UserRequest.self, request, example: #"{"name": "alice", "role": "publisher"}"#)
        guard let name = body.name else { throw Problem(.badRequest, "invalid-body", "the new user needs a name") }
        let user = try await registry.createUser(name: name, role: try Self.role(body.role ?? "user"), by: principal)
        return try JSON.response(Self.body(user), status: .created)
    }

    @Sendable func updateUser(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let principal = try await principal(request, context)
        try await registry.authorize(.manageUsers, principal, target: nil)
        let body = try await body(UserRequest.self, request, example: #"{"role": "reviewer", "disabled": false}"#)
        let user = try await registry.updateUser(try context.parameters.require("user"), role: try body.role.map(Self.role),
                                                 disabled: body.disabled, by: principal)
        return try JSON.response(Self.body(user))
    }

    static func role(_ text: String) throws -> Principal.Role {
        guard let role = Principal.Role(rawValue: text) else {
            throw Problem(.badRequest, "invalid-role", "\"\(text)\" is not a role (admin, reviewer, publisher, user)")
        }
        return role
    }

    // MARK: Tokens

    @Sendable func tokens(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let user = request.uri.queryParameters.get("user")
        return try JSON.response(try await registry.tokens(of: user, by: try await principal(request, context)).map { Self.body($0) })
    }

    @Sendable func createToken(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let principal = try await principal(request, context)
        guard principal != nil else { throw RegistryError.unauthenticated }
        let body = try await body(TokenRequest.self, request, example: #"{"name": "ci", "scopes": ["publish-update"], "packages": ["l3af-*"]}"#)
        if let days = body.expires_in_days, !(1...1830).contains(days) {
            throw RegistryError.invalidToken("expires_in_days must be between 1 and 1830")
        }
        let issued = try await registry.createToken(for: body.user, name: body.name, scopes: body.scopes, packages: body.packages ?? [],
                                                    expiresIn: body.expires_in_days.map { TimeInterval($0) * 86_400 }, by: principal)
        return try JSON.response(Self.body(issued.record, secret: issued.secret), status: .created,
                                 headers: [.location: "/api/v1/tokens/\(issued.record.id)", .cacheControl: "no-store"])
    }

    @Sendable func revokeToken(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let record = try await registry.revokeToken(try context.parameters.require("id"), by: try await principal(request, context))
        return try JSON.response(Self.body(record))
    }

    // MARK: Owners

    @Sendable func owners(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let name = try context.parameters.require("name")
        let (owners, invited) = try await registry.owners(of: name)
        let organisation = try await registry.organisations.organisation(ofPackage: try RegistryService.canonical(name))
        return try JSON.response(OwnersBody(owners: owners, invited: invited.map(Self.body), organisation: organisation))
    }

    @Sendable func inviteOwner(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let invitation = try await registry.inviteOwner(try context.parameters.require("name"), user: try context.parameters.require("user"),
                                                        by: try await principal(request, context))
        return try JSON.response(Self.body(invitation), status: .accepted)
    }

    @Sendable func removeOwner(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        try await registry.removeOwner(try context.parameters.require("name"), user: try context.parameters.require("user"),
                                       by: try await principal(request, context))
        return Response(status: .noContent)
    }

    // MARK: Audit log

    @Sendable func audit(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let principal = try await principal(request, context)
        let page = max(1, request.uri.queryParameters.get("page", as: Int.self) ?? 1)
        guard page <= 100_000 else { throw Problem(.badRequest, "invalid-page", "page must be between 1 and 100000") }
        let perPage = min(200, max(1, request.uri.queryParameters.get("per_page", as: Int.self) ?? 50))
        let result = try await registry.auditLog(actor: request.uri.queryParameters.get("actor"), action: request.uri.queryParameters.get("action"),
                                                 page: page, perPage: perPage, by: principal)
        return try JSON.response(PageBody(items: result.items.map(Self.body), total: result.total, page: page, per_page: perPage))
    }

    // MARK: Bodies

    static func body(_ user: UserRecord) -> UserBody {
        UserBody(name: user.name, role: user.role, created_at: user.createdAt, disabled: user.disabled)
    }

    static func body(_ token: TokenRecord, secret: String? = nil) -> TokenBody {
        TokenBody(id: token.id, user: token.user, name: token.name, scopes: token.scopes, packages: token.packages, created_at: token.createdAt,
                  expires_at: token.expiresAt, last_used_at: token.lastUsedAt, revoked_at: token.revokedAt, token: secret)
    }

    static func body(_ invitation: OwnerInvitation) -> InvitationBody {
        InvitationBody(package: invitation.package, user: invitation.user, invited_by: invitation.invitedBy, created_at: invitation.createdAt,
                       transfer: invitation.transfer)
    }

    static func body(_ record: AuditRecord) -> AuditBody {
        AuditBody(id: record.id, at: record.at, actor: record.actor, token_id: record.tokenID, address: record.address, action: record.action,
                  target: record.target, outcome: record.outcome, detail: record.detail)
    }
}
