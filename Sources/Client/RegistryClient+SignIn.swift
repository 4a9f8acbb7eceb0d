import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import RegistryAPI

/// Sign-in calls: a token for the command line, registration, passwords, the second factor.
extension RegistryClient {
    /// Signs in with a password (and code) and returns a new API token for this client.
    public func signInForToken(_ request: SignInRequest) async throws -> Data {
        try await sendJSON("/api/v1/session/token", method: .POST, body: request, expecting: 201)
    }

    public func register(_ request: RegistrationRequest) async throws -> Data {
        try await sendJSON("/api/v1/registrations", method: .POST, body: request, expecting: 201)
    }

    public func changePassword(current: String, new: String) async throws {
        _ = try await sendJSON("/api/v1/me/password", method: .PUT, body: PasswordChangeRequest(current: current, new: new), expecting: 204)
    }

    public func resetPassword(of user: String, removeSecondFactor: Bool) async throws -> Data {
        try await sendJSON("/api/v1/users/\(Self.escape(user))/password-reset", method: .POST,
                           body: PasswordResetRequest(remove_second_factor: removeSecondFactor))
    }

    public func secondFactor() async throws -> Data { try await get("/api/v1/me/totp") }

    public func beginSecondFactor(password: String) async throws -> Data {
        try await sendJSON("/api/v1/me/totp", method: .POST, body: SecondFactorRequest(password: password), expecting: 201)
    }

    public func confirmSecondFactor(code: String) async throws -> Data {
        try await sendJSON("/api/v1/me/totp/confirm", method: .POST, body: SecondFactorRequest(code: code))
    }

    public func removeSecondFactor(password: String, code: String) async throws {
        _ = try await sendJSON("/api/v1/me/totp/remove", method: .POST, body: SecondFactorRequest(password: password, code: code), expecting: 204)
    }

    public func createSignupInvitation(role: String, expiresInDays: Int) async throws -> Data {
        try await sendJSON("/api/v1/signup-invitations", method: .POST, body: SignupInvitationRequest(role: role, expires_in_days: expiresInDays),
                           expecting: 201)
    }

    public func signupInvitations() async throws -> Data { try await get("/api/v1/signup-invitations") }

    /// Starts a sign-in the user finishes in a browser at a provider.
    public func beginBrowserSignIn(_ request: CommandLineSignInRequest) async throws -> Data {
        try await sendJSON("/api/v1/cli-logins", method: .POST, body: request, expecting: 201)
    }

    /// The token of a browser sign-in, for the code the browser brought to the loopback port.
    public func collectBrowserSignIn(id: String, secret: String, code: String) async throws -> Data {
        try await sendJSON("/api/v1/cli-logins/\(Self.escape(id))/token", method: .POST, body: CommandLineCollectRequest(secret: secret, code: code),
                           expecting: 201)
    }
}
