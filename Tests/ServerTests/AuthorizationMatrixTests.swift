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

/// Every route of the API against every kind of caller. The rows come from the server's own
/// route table: a route added without an entry here fails the test, so no endpoint ships
/// without a decided policy.
@Suite struct AuthorizationMatrixTests {
    /// Who calls.
    enum Caller: String, CaseIterable {
        case anonymous, user, owner, nonOwner = "non-owner publisher", reviewer, admin
        case publishNew = "token: publish-new", publishUpdate = "token: publish-update", yank = "token: yank",
             owners = "token: owners", review = "token: review", sign = "token: sign", adminScope = "token: admin"
        case expired = "expired token", revoked = "revoked token"
    }

    /// What the policy must do: let the request through (any answer but 401 and 403), refuse it
    /// for want of credentials (401) or rights (403), or pretend what is not yours is not there (404).
    enum Outcome: Equatable { case allowed, unauthenticated, forbidden, notFound }

    /// Policies, as callers see them.
    static func everyone(_ caller: Caller) -> Outcome { .allowed }

    static func signedIn(_ caller: Caller) -> Outcome {
        [.anonymous, .expired, .revoked].contains(caller) ? .unauthenticated : .allowed
    }

    static func admins(_ caller: Caller) -> Outcome {
        switch caller {
        case .anonymous, .expired, .revoked: .unauthenticated
        case .admin, .adminScope: .allowed
        default: .forbidden
        }
    }

    /// Changing a package: its owner or an admin, with the scope for it.
    static func packageChange(_ scope: Caller) -> @Sendable (Caller) -> Outcome {
        { caller in
            switch caller {
            case .anonymous, .expired, .revoked: .unauthenticated
            case .owner, .admin: .allowed
            case scope: .allowed
            default: .forbidden
            }
        }
    }

    /// Accepting an invitation: any user with the owners scope (404 here: there is none).
    static func invitationAccept(_ caller: Caller) -> Outcome {
        switch caller {
        case .anonymous, .expired, .revoked: .unauthenticated
        case .owner, .nonOwner, .reviewer, .admin, .owners: .allowed
        default: .forbidden
        }
    }

    /// A submission is seen by its publisher (`owner`, with any of its tokens), reviewers and
    /// admins; to anyone else it does not exist.
    static func submissionReaders(_ caller: Caller) -> Outcome {
        switch caller {
        case .anonymous, .expired, .revoked: .unauthenticated
        case .user, .nonOwner: .notFound
        default: .allowed
        }
    }

    /// Deciding on a submission takes the review scope, and never one's own.
    static func reviewers(_ caller: Caller) -> Outcome {
        switch caller {
        case .anonymous, .expired, .revoked: .unauthenticated
        case .user, .nonOwner: .notFound
        case .reviewer, .admin, .review: .allowed
        default: .forbidden
        }
    }

    /// Withdrawing: the publisher with a publishing right, or an admin.
    static func withdrawers(_ caller: Caller) -> Outcome {
        switch caller {
        case .anonymous, .expired, .revoked: .unauthenticated
        case .user, .nonOwner: .notFound
        case .owner, .publishNew, .publishUpdate, .admin, .adminScope: .allowed
        default: .forbidden
        }
    }

    /// A provider's callback with no sign-in under way: refused whoever calls.
    static func noSignInUnderWay(_ caller: Caller) -> Outcome { .unauthenticated }

    /// The current session: a bearer token is not one.
    static func cookieOnly(_ caller: Caller) -> Outcome { .unauthenticated }

    /// Revoking another user's token: only admins see it exists.
    static func revokeOthers(_ caller: Caller) -> Outcome {
        switch caller {
        case .anonymous, .expired, .revoked: .unauthenticated
        case .admin, .adminScope: .allowed
        default: .notFound
        }
    }

    /// Each route: the policy and how to make its request. Paths name the package
    /// `xdp-port-filter` (owned by `owner`), its version 1.0.0 and the user `bob`.
    static let policies: [String: @Sendable (Caller) -> Outcome] = [
        "GET /healthz": everyone, "GET /readyz": everyone, "GET /metrics": everyone, "GET /openapi.json": everyone, "GET /api/v1/openapi.json": everyone,
        "GET /api/v1/packages": everyone, "GET /api/v1/packages/{name}": everyone, "GET /api/v1/packages/{name}/versions": everyone,
        "GET /api/v1/packages/{name}/versions/{version}": everyone, "GET /api/v1/packages/{name}/versions/{version}/l3afd-config": everyone,
        "GET /api/v1/packages/{name}/versions/{version}/download": everyone,
        "HEAD /api/v1/packages/{name}/versions/{version}/download": everyone,
        "GET /api/v1/blobs/{digest}": everyone, "HEAD /api/v1/blobs/{digest}": everyone,
        "GET /{name}/{version}/{platform}/{artifact}": everyone, "HEAD /{name}/{version}/{platform}/{artifact}": everyone,
        "GET /api/v1/packages/{name}/owners": everyone,
        "POST /api/v1/packages": packageChange(.publishUpdate),
        "PUT /api/v1/packages/{name}/versions/{version}/yank": packageChange(.yank),
        "DELETE /api/v1/packages/{name}/versions/{version}/yank": packageChange(.yank),
        "PUT /api/v1/packages/{name}/versions/{version}/deprecation": packageChange(.yank),
        "DELETE /api/v1/packages/{name}/versions/{version}/deprecation": packageChange(.yank),
        "PUT /api/v1/packages/{name}/owners/{user}": packageChange(.owners),
        "DELETE /api/v1/packages/{name}/owners/{user}": packageChange(.owners),
        "GET /api/v1/me": signedIn, "GET /api/v1/me/invitations": signedIn,
        "PUT /api/v1/me/invitations/{name}": invitationAccept, "DELETE /api/v1/me/invitations/{name}": signedIn,
        "GET /api/v1/tokens": signedIn, "POST /api/v1/tokens": signedIn, "DELETE /api/v1/tokens/{id}": revokeOthers,
        "GET /api/v1/users": admins, "POST /api/v1/users": admins, "PATCH /api/v1/users/{user}": admins,
        "GET /api/v1/audit": admins,
        // Signing in: open to all (credentials are the body); the current session only by its cookie.
        "POST /api/v1/session": everyone, "POST /api/v1/session/token": everyone, "POST /api/v1/registrations": everyone,
        "GET /api/v1/session": cookieOnly, "DELETE /api/v1/session": cookieOnly,
        "GET /api/v1/me/sessions": signedIn, "DELETE /api/v1/me/sessions/{id}": signedIn, "PUT /api/v1/me/password": signedIn,
        "GET /api/v1/me/totp": signedIn, "POST /api/v1/me/totp": signedIn, "POST /api/v1/me/totp/confirm": signedIn,
        "POST /api/v1/me/totp/remove": signedIn,
        "GET /api/v1/signup-invitations": admins, "POST /api/v1/signup-invitations": admins,
        "POST /api/v1/users/{user}/password-reset": admins,
        // OpenID Connect: the provider decides who signs in; a callback without a sign-in under way is refused.
        "GET /api/v1/oidc/providers": everyone, "GET /api/v1/oidc/{provider}/start": everyone,
        "GET /api/v1/oidc/{provider}/callback": noSignInUnderWay, "GET /api/v1/me/identities": signedIn,
        "DELETE /api/v1/me/identities/{provider}": invitationAccept,
        "POST /api/v1/cli-logins": everyone, "POST /api/v1/cli-logins/{id}/token": everyone,
        // Organisations: `xdp` has `owner` as its admin.
        "GET /api/v1/orgs": everyone, "GET /api/v1/orgs/{org}": everyone, "POST /api/v1/orgs": admins,
        "PUT /api/v1/orgs/{org}/members/{user}": packageChange(.owners), "DELETE /api/v1/orgs/{org}/members/{user}": packageChange(.owners),
        "PUT /api/v1/packages/{name}/org": packageChange(.owners), "DELETE /api/v1/packages/{name}/org": packageChange(.owners),
        "POST /api/v1/packages/{name}/transfer": packageChange(.owners),
        // Submissions: the one the owner's upload made.
        "GET /api/v1/submissions": signedIn, "GET /api/v1/submissions/{id}": submissionReaders,
        "GET /api/v1/submissions/{id}/archive": submissionReaders, "GET /api/v1/submissions/{id}/diff": submissionReaders,
        "POST /api/v1/submissions/{id}/comments": submissionReaders, "POST /api/v1/submissions/{id}/approve": reviewers,
        "POST /api/v1/submissions/{id}/reject": reviewers, "POST /api/v1/submissions/{id}/request-changes": reviewers,
        "POST /api/v1/submissions/{id}/withdraw": withdrawers,
        "GET /api/v1/auto-publishers": admins, "PUT /api/v1/auto-publishers/{user}": admins, "DELETE /api/v1/auto-publishers/{user}": admins,
        "GET /api/v1/webhooks": admins,
        // Signing: the authority is public; grants in `xdp-*` are the organisation's admins' to
        // give; keys are certified for holders of the sign right; others' keys revoked by admins.
        "GET /api/v1/trust": everyone, "GET /api/v1/trust/revocations": everyone,
        "GET /api/v1/packages/{name}/versions/{version}/signature": everyone,
        "GET /api/v1/packages/{name}/versions/{version}/attestation": everyone,
        "GET /api/v1/signing-grants": signedIn, "POST /api/v1/signing-grants": grantors,
        "DELETE /api/v1/signing-grants/{id}": grantors,
        "GET /api/v1/signing-keys": signedIn, "POST /api/v1/signing-keys": signers,
        "POST /api/v1/signing-keys/{key}/revoke": admins,
        // The OCI API: pulls are anonymous; a push is a publish of the package; uploads and
        // deletes need a user (deletes are off by default: 405 once signed in).
        "GET /v2": signedIn, "GET /v2/token": anyValidCredentials, "GET /api/v1/oci/public-key": everyone,
        "GET /v2/{name}/manifests/{reference}": anyValidCredentials, "HEAD /v2/{name}/manifests/{reference}": anyValidCredentials,
        "PUT /v2/{name}/manifests/{reference}": packageChange(.publishUpdate), "DELETE /v2/{name}/manifests/{reference}": signedIn,
        "GET /v2/{name}/blobs/{digest}": anyValidCredentials, "HEAD /v2/{name}/blobs/{digest}": anyValidCredentials,
        "DELETE /v2/{name}/blobs/{digest}": signedIn, "POST /v2/{name}/blobs/uploads": packageChange(.publishUpdate),
        "GET /v2/{name}/blobs/uploads/{id}": signedIn, "PATCH /v2/{name}/blobs/uploads/{id}": signedIn,
        "PUT /v2/{name}/blobs/uploads/{id}": signedIn, "DELETE /v2/{name}/blobs/uploads/{id}": signedIn,
        "GET /v2/{name}/tags/list": anyValidCredentials, "GET /v2/{name}/referrers/{digest}": anyValidCredentials,
        // Build workers hold the build right.
        "POST /api/v1/builds/claim": builders, "POST /api/v1/builds/{job}/result": builders,
        "POST /api/v1/checks/claim": builders, "POST /api/v1/checks/{job}/result": builders,
    ]

    /// Taking and reporting builds: tokens with the build scope, which only admins hold.
    static func builders(_ caller: Caller) -> Outcome {
        switch caller {
        case .anonymous, .expired, .revoked: .unauthenticated
        case .admin: .allowed
        default: .forbidden
        }
    }

    /// Anonymous or with valid credentials: only a bad token is refused.
    static func anyValidCredentials(_ caller: Caller) -> Outcome {
        [.expired, .revoked].contains(caller) ? .unauthenticated : .allowed
    }

    /// Granting signing in `xdp-*`: the organisation's admin with the owners scope, and admins
    /// (the admin scope is enough: grants are users' rights).
    static func grantors(_ caller: Caller) -> Outcome {
        switch caller {
        case .anonymous, .expired, .revoked: .unauthenticated
        case .owner, .owners, .admin, .adminScope: .allowed
        default: .forbidden
        }
    }

    /// Having one's key certified: users whose role and token carry the sign right.
    static func signers(_ caller: Caller) -> Outcome {
        switch caller {
        case .anonymous, .expired, .revoked: .unauthenticated
        case .owner, .nonOwner, .reviewer, .admin, .sign: .allowed
        default: .forbidden
        }
    }

    @Test func everyRouteHasAPolicyAndKeepsIt() async throws {
        // Limits off: the expired and revoked callers fail many times over (the lockout and the
        // limits have their own tests).
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let trust = try SigningAPITests.trustDirectory(in: scratch).url
        let registry = try await TestRegistry.make {
            $0.authFailuresBeforeLockout = 0
            $0.publishesPerHour = 0
            $0.autoPublish = ["owner"]
            $0.trustDirectory = trust.path
        }
        let archive = try registry.archive("xdp-port-filter")
        let routes = registry.server.routes
        #expect(Set(routes) == Set(Self.policies.keys), "routes without a policy here, or policies for routes that are gone")

        let accounts = registry.server.registry.accounts
        let admin = Principal(name: "admin", role: .admin, tokenID: nil)
        let service = registry.server.registry
        // The people: users of each role; `owner` publishes the package.
        for (name, role) in [("plain", Principal.Role.user), ("owner", .publisher), ("other", .publisher), ("rev", .reviewer), ("bob", .user)] {
            _ = try await service.createUser(name: name, role: role, by: admin)
        }
        @Sendable func token(_ user: String, _ scopes: [Principal.Scope]) async throws -> String {
            try await service.createToken(for: user, name: "matrix", scopes: scopes.map(\.rawValue), packages: [], expiresIn: nil, by: admin).secret
        }
        var tokens: [Caller: String] = [:]
        tokens[.user] = try await token("plain", [])
        tokens[.owner] = try await token("owner", Array(Principal.Role.publisher.scopes))
        tokens[.nonOwner] = try await token("other", Array(Principal.Role.publisher.scopes))
        tokens[.reviewer] = try await token("rev", Array(Principal.Role.reviewer.scopes))
        tokens[.admin] = TestRegistry.token
        // Tokens of one scope each, held by the package's owner (review by a reviewer, admin by
        // the admin): the scope alone decides.
        for (caller, user, scope) in [(Caller.publishNew, "owner", Principal.Scope.publishNew), (.publishUpdate, "owner", .publishUpdate),
                                      (.yank, "owner", .yank), (.owners, "owner", .owners), (.review, "rev", .review),
                                      (.sign, "owner", .sign), (.adminScope, "admin", .admin)] {
            tokens[caller] = try await token(user, [scope])
        }
        let expired = AccessToken.generate(), revoked = try await token("owner", [.publishUpdate])
        try await accounts.insertToken(TokenRecord(id: "tok_expired", user: "owner", name: "old", scopes: ["publish-update"],
                                                   createdAt: Date(timeIntervalSinceNow: -7200), expiresAt: Date(timeIntervalSinceNow: -3600)),
                                       hash: AccessToken.hash(expired))
        tokens[.expired] = expired
        let revokedID = try #require(try await accounts.token(hash: AccessToken.hash(revoked))?.id)
        _ = try await service.revokeToken(revokedID, by: admin)
        tokens[.revoked] = revoked

        _ = try await service.createOrganisation(name: "xdp", description: "", admin: "owner", by: admin)
        let callerTokens = tokens
        try await registry.run { client in
            // The package, published by its owner.
            let first = try await client.publish(archive, token: callerTokens[.owner])
            try #require(first.status == .created, "\(String(buffer: first.body))")
            let submission = try first.json(SubmissionBody.self).submission
            let digest = String(submission.sha256.dropFirst("sha256:".count))

            // The OpenAPI document describes exactly the routes the server has.
            let document = try JSONSerialization.jsonObject(with: Data(buffer: try await client.get("/openapi.json").body)) as? [String: Any]
            let paths = try #require(document?["paths"] as? [String: [String: Any]])
            let documented = Set(paths.flatMap { path, operations in
                operations.keys.filter { ["get", "head", "post", "put", "patch", "delete"].contains($0) }.map { "\($0.uppercased()) \(path)" }
            })
            #expect(documented == Set(routes), "undocumented: \(Set(routes).subtracting(documented)); gone: \(documented.subtracting(routes))")

            for route in routes.sorted() {
                guard let policy = Self.policies[route] else { continue }
                for caller in Caller.allCases {
                    let (method, path, body) = try await Self.request(route, caller: caller, digest: digest, submission: submission.id, archive: archive,
                                                                      victim: { try await token("bob", []) }, accounts: accounts,
                                                                      trust: service.trust)
                    var headers: HTTPFields = [:]
                    if let token = callerTokens[caller] { headers[.authorization] = "Bearer \(token)" }
                    if route == "POST /api/v1/packages" { headers[.contentType] = "application/gzip" } else if body != nil {
                        headers[.contentType] = "application/json"
                    }
                    let response = try await client.execute(uri: path, method: method, headers: headers, body: body)
                    let status = response.status.code
                    #expect(status != 429, "\(route) as \(caller.rawValue): rate limited")
                    let outcome: Outcome = switch status {
                    case 401: .unauthenticated
                    case 403: .forbidden
                    case 404 where policy(caller) == .notFound: .notFound
                    default: .allowed
                    }
                    #expect(outcome == policy(caller), "\(route) as \(caller.rawValue): \(status) \(String(buffer: response.body).prefix(200))")
                    #expect(status < 500, "\(route) as \(caller.rawValue): \(status)")
                }
            }
        }
    }

    struct SubmissionBody: Decodable {
        struct Summary: Decodable { var id: String; var sha256: String }
        var submission: Summary
    }

    /// The concrete request for a route, made fresh for each caller where the route consumes
    /// something (a token to revoke).
    static func request(_ route: String, caller: Caller, digest: String, submission: String, archive: ByteBuffer,
                        victim: @Sendable () async throws -> String, accounts: any AccountStore,
                        trust: any TrustStore) async throws -> (HTTPRequest.Method, String, ByteBuffer?) {
        let parts = route.split(separator: " ", maxSplits: 1)
        let method = HTTPRequest.Method(String(parts[0]))!
        var path = String(parts[1])
        let index = Caller.allCases.firstIndex(of: caller) ?? 0
        if path.hasPrefix("/api/v1/signing-grants/") {
            // A grant of bob's in the organisation's namespace, one per caller.
            let grant = try await trust.addGrant(SigningGrant(user: "bob", pattern: "xdp-m\(index)", grantedBy: "admin", createdAt: Date()))
            path = path.replacingOccurrences(of: "{id}", with: String(grant.id))
        } else if path.contains("{key}") {
            // A certificate of bob's, one per caller.
            let key = "matrix-key-\(index)"
            try await trust.insertCertificate(SigningCertificateRecord(serial: "0\(index)", keyID: key, user: "bob", publicKey: "", chain: "",
                                                                       packages: ["xdp-*"], notBefore: Date(), notAfter: Date(timeIntervalSinceNow: 86400),
                                                                       createdAt: Date()))
            path = path.replacingOccurrences(of: "{key}", with: key)
        } else if path.hasPrefix("/v2/") {
            path = path.replacingOccurrences(of: "{id}", with: "no-such-upload")
        } else if path.hasPrefix("/api/v1/submissions/") {
            path = path.replacingOccurrences(of: "{id}", with: submission)
        } else if path.contains("{id}") {
            let secret = try await victim()
            let id = try await accounts.token(hash: AccessToken.hash(secret))?.id ?? "tok_none"
            path = path.replacingOccurrences(of: "{id}", with: id)
        }
        let values = ["{name}": "xdp-port-filter", "{version}": "1.0.0", "{platform}": "jammy", "{artifact}": "xdp_port_filter.tar.gz",
                      "{user}": "bob", "{digest}": "sha256:\(digest)", "{org}": "xdp", "{provider}": "mock", "{reference}": "1.0.0", "{job}": "1"]
        for (key, value) in values { path = path.replacingOccurrences(of: key, with: value) }
        let body: ByteBuffer? = switch route {
        case "POST /api/v1/packages": archive
        case "PUT /api/v1/packages/{name}/versions/{version}/yank": ByteBuffer(string: #"{"reason": "matrix"}"#)
        case "PUT /api/v1/packages/{name}/versions/{version}/deprecation": ByteBuffer(string: #"{"message": "matrix"}"#)
        case "POST /api/v1/users": ByteBuffer(string: #"{"name": "u-\#(Caller.allCases.firstIndex(of: caller) ?? 0)", "role": "user"}"#)
        case "PATCH /api/v1/users/{user}": ByteBuffer(string: #"{"role": "user"}"#)
        case "POST /api/v1/tokens": ByteBuffer(string: #"{"name": "matrix", "scopes": []}"#)
        case "POST /api/v1/orgs": ByteBuffer(string: #"{"name": "org-\#(Caller.allCases.firstIndex(of: caller) ?? 0)", "description": "", "admin": "owner"}"#)
        case "PUT /api/v1/orgs/{org}/members/{user}": ByteBuffer(string: #"{"role": "member"}"#)
        case "PUT /api/v1/packages/{name}/org": ByteBuffer(string: #"{"org": "xdp"}"#)
        case "POST /api/v1/packages/{name}/transfer": ByteBuffer(string: #"{"user": "bob"}"#)
        case "POST /api/v1/submissions/{id}/comments": ByteBuffer(string: #"{"message": "matrix"}"#)
        case "POST /api/v1/signing-grants": ByteBuffer(string: #"{"user": "bob", "packages": ["xdp-*"]}"#)
        case "POST /api/v1/signing-keys": ByteBuffer(string: #"{"public_key": "not a key", "proof": ""}"#)
        case "POST /api/v1/signing-keys/{key}/revoke": ByteBuffer(string: #"{"reason": "matrix"}"#)
        default: nil
        }
        return (method, path, body)
    }
}
