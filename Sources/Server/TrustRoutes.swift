import Foundation
import Hummingbird
import Registry
import RegistryAPI

/// The signing authority in the REST API v1: what it is, its revocation list, grants of
/// signing rights, and the certificates it issues for contributors' keys.
struct TrustRoutes: Sendable {
    let registry: RegistryService
    let authenticator: Authenticator

    func add(to router: Router<RegistryRequestContext>) {
        let api = router.group("api/v1")
        api.get("trust") { _, _ in try JSON.response(try registry.trustInfo()) }
        api.get("trust/revocations") { _, _ in
            JSON.raw(try await registry.revocationList(), cacheControl: "public, max-age=300")
        }
        api.get("signing-grants") { request, context in
            let principal = try await authenticator.principal(request, context)
            let user = request.uri.queryParameters.get("user")
            let all = request.uri.queryParameters.get("all") == "true"
            return try JSON.response(try await registry.signingGrants(user: all ? nil : (user ?? principal?.name), by: principal))
        }
        api.post("signing-grants") { request, context in
            let principal = try await authenticator.principal(request, context)
            let body = try await JSONBody.decode(SigningGrantRequest.self, from: request, example: #"{"user": "alice", "packages": ["acme-*"]}"#)
            return try JSON.response(try await registry.grantSigning(user: body.user, packages: body.packages, by: principal), status: .created)
        }
        api.delete("signing-grants/:id") { request, context in
            let principal = try await authenticator.principal(request, context)
            guard let id = Int(try context.parameters.require("id")) else { throw RegistryError.signingGrantNotFound(0) }
            try await registry.revokeGrant(id: id, by: principal)
            return Response(status: .noContent)
        }
        api.get("signing-keys") { request, context in
            let principal = try await authenticator.principal(request, context)
            return try JSON.response(try await registry.signingCertificates(
                user: request.uri.queryParameters.get("user"), all: request.uri.queryParameters.get("all") == "true", by: principal))
        }
        api.post("signing-keys") { request, context in
            let principal = try await authenticator.principal(request, context)
            let body = try await JSONBody.decode(SigningKeyRequest.self, from: request,
                                                 example: #"{"public_key": "-----BEGIN PUBLIC KEY-----...", "proof": "<base64 DER signature>"}"#)
            return try JSON.response(try await registry.certifyKey(body, by: principal), status: .created)
        }
        api.post("signing-keys/:key/revoke") { request, context in
            let principal = try await authenticator.principal(request, context)
            let body = try await JSONBody.decode(KeyRevocationRequest.self, from: request, example: #"{"reason": "the laptop was stolen"}"#)
            return try JSON.response(try await registry.revokeKey(try context.parameters.require("key"), reason: body.reason, by: principal))
        }
    }
}
