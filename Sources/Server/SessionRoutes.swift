import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Registry
import RegistryAPI
import Storage

/// Signing in and what goes with it in the REST API v1: sessions (a cookie for the web
/// site), tokens for the command line, registration, passwords and the second factor.
struct SessionRoutes: Sendable {
    let registry: RegistryService
    let authenticator: Authenticator

    func add(to router: Router<RegistryRequestContext>) {
        let api = router.group("api/v1")
        api.post("session", use: signIn)
        api.get("session", use: current)
        api.delete("session", use: signOut)
        api.post("session/token", use: signInForToken)
        api.get("me/sessions", use: sessions)
        api.delete("me/sessions/:id", use: endSession)
        api.put("me/password", use: changePassword)
        api.get("me/totp", use: secondFactor)
        api.post("me/totp", use: beginSecondFactor)
        api.post("me/totp/confirm", use: confirmSecondFactor)
        api.post("me/totp/remove", use: removeSecondFactor)
        api.post("registrations", use: register)
        api.get("signup-invitations", use: signupInvitations)
        api.post("signup-invitations", use: createSignupInvitation)
        api.post("users/:user/password-reset", use: resetPassword)
    }

    /// Only `application/json` bodies: signing in cannot be forged from another site's form.
    func body<T: Decodable>(_ type: T.Type, _ request: Request, example: String) async throws -> T {
        try await JSONBody.decode(type, from: request, example: example)
    }

    func principal(_ request: Request, _ context: RegistryRequestContext) async throws -> Principal? {
        try await authenticator.principal(request, context)
    }

    static let signInExample = #"{"name": "alice", "password": "...", "otp": "123456"}"#

    func checkSignIn(_ request: Request, _ context: RegistryRequestContext) async throws -> SignedIn {
        let body = try await body(SignInRequest.self, request, example: Self.signInExample)
        return try await registry.signIn(name: body.name, password: body.password, otp: body.otp, recoveryCode: body.recovery_code,
                                         address: authenticator.address(request, context))
    }

    // MARK: Sessions

    @Sendable func signIn(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let signedIn = try await checkSignIn(request, context)
        let issued = try await registry.startSession(for: signedIn, address: authenticator.address(request, context))
        return try JSON.response(Self.body(issued.record, csrf: true, restriction: issued.restriction), status: .created,
                                 headers: [.setCookie: authenticator.cookies.setting(issued.secret), .cacheControl: "no-store"])
    }

    @Sendable func current(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        guard let (principal, session) = try await authenticator.session(request, context) else { throw RegistryError.unauthenticated }
        return try JSON.response(Self.body(session, csrf: true, restriction: principal.restriction), headers: [.cacheControl: "no-store"])
    }

    @Sendable func signOut(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        guard let (principal, session) = try await authenticator.session(request, context) else { throw RegistryError.unauthenticated }
        try await registry.endSession(session.id, by: principal)
        return Response(status: .noContent, headers: [.setCookie: authenticator.cookies.clearing])
    }

    @Sendable func signInForToken(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let body = try await body(SignInRequest.self, request, example: Self.signInExample)
        if let days = body.expires_in_days, !(1...1830).contains(days) {
            throw RegistryError.invalidToken("expires_in_days must be between 1 and 1830")
        }
        let address = authenticator.address(request, context)
        let signedIn = try await registry.signIn(name: body.name, password: body.password, otp: body.otp, recoveryCode: body.recovery_code,
                                                 address: address)
        let issued = try await registry.issueSignInToken(for: signedIn, name: body.token_name ?? "signed in", expiresIn: body.expires_in_days.map {
            TimeInterval($0) * 86_400
        }, address: address)
        return try JSON.response(AccountRoutes.body(issued.record, secret: issued.secret), status: .created,
                                 headers: [.location: "/api/v1/tokens/\(issued.record.id)", .cacheControl: "no-store"])
    }

    @Sendable func sessions(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        try JSON.response(try await registry.sessions(by: try await principal(request, context)).map { Self.body($0, csrf: false, restriction: nil) })
    }

    @Sendable func endSession(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        try await registry.endSession(try context.parameters.require("id"), by: try await principal(request, context))
        return Response(status: .noContent)
    }

    // MARK: Passwords and the second factor

    @Sendable func changePassword(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let principal = try await principal(request, context)
        try await registry.authorize(.readSelf, principal, target: nil)
        let body = try await body(PasswordChangeRequest.self, request, example: #"{"current": "...", "new": "..."}"#)
        try await registry.changePassword(current: body.current, new: body.new, by: principal)
        return Response(status: .noContent, headers: [.setCookie: authenticator.cookies.clearing])
    }

    @Sendable func secondFactor(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let status = try await registry.secondFactorStatus(by: try await principal(request, context))
        return try JSON.response(SecondFactorBody(enabled: status.enabled, recovery_codes_left: status.recoveryCodesLeft))
    }

    @Sendable func beginSecondFactor(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let principal = try await principal(request, context)
        try await registry.authorize(.readSelf, principal, target: nil)
        let body = try await body(SecondFactorRequest.self, request, example: #"{"password": "..."}"#)
        let (secret, uri) = try await registry.beginTOTP(password: body.password ?? "", by: principal)
        return try JSON.response(SecondFactorBody(enabled: false, secret: secret, uri: uri), status: .created, headers: [.cacheControl: "no-store"])
    }

    @Sendable func confirmSecondFactor(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let principal = try await principal(request, context)
        try await registry.authorize(.readSelf, principal, target: nil)
        let body = try await body(SecondFactorRequest.self, request, example: #"{"code": "123456"}"#)
        let codes = try await registry.confirmTOTP(code: body.code ?? "", by: principal)
        return try JSON.response(SecondFactorBody(enabled: true, recovery_codes: codes, recovery_codes_left: codes.count),
                                 headers: [.cacheControl: "no-store"])
    }

    @Sendable func removeSecondFactor(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let principal = try await principal(request, context)
        try await registry.authorize(.readSelf, principal, target: nil)
        let body = try await body(SecondFactorRequest.self, request, example: #"{"password": "...", "code": "123456"}"#)
        try await registry.removeTOTP(password: body.password ?? "", code: body.code ?? "", by: principal)
        return Response(status: .noContent)
    }

    // MARK: Registration

    @Sendable func register(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let body = try await body(RegistrationRequest.self, request, example: #"{"name": "alice", "password": "...", "invitation": "epri_..."}"#)
        let user = try await registry.register(name: body.name, password: body.password, invitation: body.invitation,
                                               address: authenticator.address(request, context))
        return try JSON.response(AccountRoutes.body(user), status: .created, headers: [.location: "/api/v1/users/\(user.name)"])
    }

    @Sendable func signupInvitations(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        try JSON.response(try await registry.signupInvitations(by: try await principal(request, context)).map { Self.body($0, code: nil) })
    }

    @Sendable func createSignupInvitation(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let principal = try await principal(request, context)
        try await registry.authorize(.manageUsers, principal, target: nil)
        let body = try await body(SignupInvitationRequest.self, request, example: #"{"role": "publisher", "expires_in_days": 7}"#)
        guard let days = body.expires_in_days ?? 7 as Int?, (1...90).contains(days) else {
            throw RegistryError.invalidRequest("expires_in_days must be between 1 and 90")
        }
        let (invitation, code) = try await registry.createSignupInvitation(role: try AccountRoutes.role(body.role ?? "user"),
                                                                           expiresIn: TimeInterval(days) * 86_400, by: principal)
        return try JSON.response(Self.body(invitation, code: code), status: .created, headers: [.cacheControl: "no-store"])
    }

    @Sendable func resetPassword(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let principal = try await principal(request, context)
        try await registry.authorize(.manageUsers, principal, target: nil)
        let user = try context.parameters.require("user")
        let body = try await body(PasswordResetRequest.self, request, example: #"{"remove_second_factor": false}"#)
        let password = try await registry.resetPassword(of: user, removeSecondFactor: body.remove_second_factor ?? false, by: principal)
        return try JSON.response(PasswordResetBody(user: user, password: password), headers: [.cacheControl: "no-store"])
    }

    // MARK: Bodies

    static func body(_ session: SessionRecord, csrf: Bool, restriction: String?) -> SessionBody {
        SessionBody(id: session.id, user: session.user, method: session.method, created_at: session.createdAt, expires_at: session.expiresAt,
                    last_seen_at: session.lastSeenAt, address: session.address, csrf_token: csrf ? session.csrf : nil, restriction: restriction)
    }

    static func body(_ invitation: SignupInvitation, code: String?) -> SignupInvitationBody {
        SignupInvitationBody(id: invitation.id, role: invitation.role, created_by: invitation.createdBy, created_at: invitation.createdAt,
                             expires_at: invitation.expiresAt, used_by: invitation.usedBy, used_at: invitation.usedAt, code: code)
    }
}
