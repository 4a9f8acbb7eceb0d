import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import RegistryAPI

/// Signing calls: the repository's signing authority, grants, certificates for keys, and the
/// signatures and attestations of versions.
extension RegistryClient {
    public func trustInfo() async throws -> Data { try await get("/api/v1/trust") }

    public func revocationList(timeout: TimeAmount = .seconds(120)) async throws -> Data {
        try await get("/api/v1/trust/revocations", timeout: timeout)
    }

    public func grantSigning(user: String, packages: [String]) async throws -> Data {
        try await sendJSON("/api/v1/signing-grants", method: .POST, body: SigningGrantRequest(user: user, packages: packages), expecting: 201)
    }

    public func signingGrants(user: String?, all: Bool) async throws -> Data {
        try await get("/api/v1/signing-grants" + (all ? "?all=true" : user.map { "?user=\(Self.escape($0))" } ?? ""))
    }

    public func removeSigningGrant(_ id: Int) async throws {
        _ = try await send(request("/api/v1/signing-grants/\(id)", method: .DELETE), expecting: 204)
    }

    public func certifyKey(_ body: SigningKeyRequest) async throws -> Data {
        try await sendJSON("/api/v1/signing-keys", method: .POST, body: body, expecting: 201)
    }

    public func signingKeys(user: String?, all: Bool) async throws -> Data {
        try await get("/api/v1/signing-keys" + (all ? "?all=true" : user.map { "?user=\(Self.escape($0))" } ?? ""))
    }

    public func revokeKey(_ keyID: String, reason: String?) async throws -> Data {
        try await sendJSON("/api/v1/signing-keys/\(Self.escape(keyID))/revoke", method: .POST, body: KeyRevocationRequest(reason: reason))
    }

    /// The version's signature, or nil when it was published without one.
    public func signature(_ name: String, _ version: String) async throws -> Data? {
        try await optional("/api/v1/packages/\(Self.escape(name))/versions/\(Self.escape(version))/signature")
    }

    /// The repository's attestation of the version, or nil when it has none.
    public func attestation(_ name: String, _ version: String) async throws -> Data? {
        try await optional("/api/v1/packages/\(Self.escape(name))/versions/\(Self.escape(version))/attestation")
    }

    /// A document, or nil when the server says the version has none.
    func optional(_ path: String) async throws -> Data? {
        do { return try await get(path) } catch let problem as RegistryProblem where problem.status == 404
            && ["signature-not-found", "attestation-not-found"].contains(problem.code) {
            return nil
        }
    }
}
