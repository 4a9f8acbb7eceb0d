import Foundation
import Storage

/// Signing in with an account at an OpenID Connect provider, once its ID token is valid.
extension RegistryService {
    /// Who the identity is here: the user it is linked to; or, when registration is open, a
    /// new user named after it. Disabled users and unlinked identities are refused.
    public func signIn(provider: String, claims: IDTokenClaims, address: String?) async throws -> SignedIn {
        let method = "oidc:\(provider)" + (claims.multiFactor ? "+mfa" : "")
        func refuse(_ reason: String, actor: String? = nil) async -> RegistryError {
            await audit(AuditRecord(at: Date(), actor: actor, tokenID: nil, address: address, action: "signin", target: nil, outcome: "denied",
                                    detail: "\(method): \(reason)"))
            return RegistryError.externalSignInFailed(reason)
        }
        if let identity = try await credentials.identity(issuer: claims.issuer, subject: claims.subject) {
            guard let user = try await accounts.user(name: identity.user), !user.disabled else {
                throw await refuse("the linked user is disabled", actor: identity.user)
            }
            await audit(AuditRecord(at: Date(), actor: user.name, tokenID: nil, address: address, action: "signin", target: nil, detail: method))
            return SignedIn(user: user, method: method)
        }
        guard signIn.registration == .open else {
            throw await refuse("no user is linked to this \(provider) account; sign in another way and link it first")
        }
        let name = try await freeUserName(for: claims)
        let now = Date()
        let user = UserRecord(name: name, role: Principal.Role.user.rawValue, createdAt: now)
        let identity = ExternalIdentity(issuer: claims.issuer, subject: claims.subject, user: name, provider: provider,
                                        email: claims.emailVerified ? claims.email : nil, linkedAt: now)
        do {
            try await credentials.register(user, passwordHash: nil, invitationHash: nil, identity: identity, at: now)
        } catch AccountStoreError.userExists {
            throw await refuse("the user name \(name) was taken meanwhile; try again")
        } catch CredentialStoreError.identityLinked {
            throw await refuse("this \(provider) account was linked meanwhile; try again")
        }
        await audit(AuditRecord(at: now, actor: name, tokenID: nil, address: address, action: "user.register", target: name,
                                detail: "role user, from \(provider)"))
        await audit(AuditRecord(at: now, actor: name, tokenID: nil, address: address, action: "signin", target: nil, detail: method))
        return SignedIn(user: user, method: method)
    }

    /// Links a provider's account to the principal's user, so that it signs in as that user.
    public func link(provider: String, claims: IDTokenClaims, to principal: Principal?) async throws {
        try await authorize(.readSelf, principal, target: nil)
        guard let principal else { throw RegistryError.unauthenticated }
        let identity = ExternalIdentity(issuer: claims.issuer, subject: claims.subject, user: principal.name, provider: provider,
                                        email: claims.emailVerified ? claims.email : nil, linkedAt: Date())
        do { try await credentials.link(identity) } catch CredentialStoreError.identityLinked {
            await audit("identity.link", principal, target: provider, denied: "linked to a user already")
            throw RegistryError.externalSignInFailed("this \(provider) account is linked to a user already")
        }
        await audit("identity.link", principal, target: provider, detail: claims.subject)
    }

    /// Removes the principal's links to a provider's accounts.
    public func unlink(provider: String, by principal: Principal?) async throws {
        try await authorize(.giveUpAccess(what: "unlinking"), principal, target: provider)
        guard let principal else { throw RegistryError.unauthenticated }
        guard try await credentials.unlink(user: principal.name, provider: provider) > 0 else {
            throw RegistryError.invalidRequest("no \(provider) account is linked to \(principal.name)")
        }
        await audit("identity.unlink", principal, target: provider)
    }

    public func identities(by principal: Principal?) async throws -> [ExternalIdentity] {
        try await authorize(.readSelf, principal, target: nil)
        return try await credentials.identities(user: principal?.name ?? "")
    }

    /// A user name from the provider's preferred user name or e-mail address, made valid, with
    /// a number added when taken.
    func freeUserName(for claims: IDTokenClaims) async throws -> String {
        let source = claims.preferredUsername ?? claims.email?.split(separator: "@").first.map(String.init) ?? "user"
        var base = String(source.lowercased().unicodeScalars.map { scalar -> Character in
            let c = Character(scalar)
            return c.isASCII && (c.isLetter || c.isNumber || c == "-" || c == "_") ? c : "-"
        })
        while base.hasPrefix("-") || base.hasPrefix("_") { base.removeFirst() }
        base = String(base.prefix(32))
        if base.isEmpty { base = "user" }
        for suffix in [""] + (2...50).map(String.init) {
            let candidate = suffix.isEmpty ? base : "\(base)-\(suffix)"
            if try await accounts.user(name: candidate) == nil { return candidate }
        }
        return "\(base)-\(Self.randomString(6, prefix: "", lowercase: true))"
    }
}
