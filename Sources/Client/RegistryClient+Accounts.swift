import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOFoundationCompat
import RegistryAPI

/// Account calls: the caller's account, users, tokens, owners and the audit log.
extension RegistryClient {
    /// Sends a JSON body with `method` to `path`, expecting `status`.
    func sendJSON(_ path: String, method: HTTPMethod, body: some Encodable, expecting status: Int = 200) async throws -> Data {
        try await send(request(path, method: method, body: .bytes(ByteBuffer(bytes: try JSONEncoder().encode(body))),
                               headers: [("Content-Type", "application/json")]), expecting: status)
    }

    static func escape(_ segment: String) -> String {
        segment.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))) ?? segment
    }

    public func me() async throws -> Data { try await get("/api/v1/me") }

    public func createUser(_ name: String, role: String) async throws -> Data {
        try await sendJSON("/api/v1/users", method: .POST, body: UserRequest(name: name, role: role), expecting: 201)
    }

    public func users() async throws -> Data { try await get("/api/v1/users") }

    public func updateUser(_ name: String, role: String?, disabled: Bool?) async throws -> Data {
        try await sendJSON("/api/v1/users/\(Self.escape(name))", method: .PATCH, body: UserRequest(role: role, disabled: disabled))
    }

    public func createToken(_ request: TokenRequest) async throws -> Data {
        try await sendJSON("/api/v1/tokens", method: .POST, body: request, expecting: 201)
    }

    public func tokens(user: String?) async throws -> Data {
        try await get("/api/v1/tokens" + (user.map { "?user=\(Self.escape($0))" } ?? ""))
    }

    public func revokeToken(_ id: String) async throws -> Data {
        try await send(request("/api/v1/tokens/\(Self.escape(id))", method: .DELETE))
    }

    public func owners(_ package: String) async throws -> Data {
        try await get("/api/v1/packages/\(Self.escape(package))/owners")
    }

    public func inviteOwner(_ package: String, user: String) async throws -> Data {
        try await send(request("/api/v1/packages/\(Self.escape(package))/owners/\(Self.escape(user))", method: .PUT), expecting: 202)
    }

    public func removeOwner(_ package: String, user: String) async throws {
        _ = try await send(request("/api/v1/packages/\(Self.escape(package))/owners/\(Self.escape(user))", method: .DELETE), expecting: 204)
    }

    public func invitations() async throws -> Data { try await get("/api/v1/me/invitations") }

    public func answerInvitation(_ package: String, accept: Bool) async throws {
        _ = try await send(request("/api/v1/me/invitations/\(Self.escape(package))", method: accept ? .PUT : .DELETE), expecting: 204)
    }

    public func audit(actor: String?, action: String?, page: Int) async throws -> Data {
        var query = ["page=\(page)"]
        if let actor { query.append("actor=\(Self.escape(actor))") }
        if let action { query.append("action=\(Self.escape(action))") }
        return try await get("/api/v1/audit?" + query.joined(separator: "&"))
    }
}
