import Foundation
import NIOConcurrencyHelpers
import PackageFormat
import Storage

/// The last recorded use of each token, so that a token used many times a minute is written once.
final class TokenUses: Sendable {
    private let recorded = NIOLockedValueBox<[String: Date]>([:])

    /// Whether this use should be written.
    func shouldRecord(_ id: String, at now: Date) -> Bool {
        recorded.withLockedValue { recorded in
            if let last = recorded[id], now.timeIntervalSince(last) < 60 { return false }
            if recorded.count > 10_000 { recorded.removeAll() }
            recorded[id] = now
            return true
        }
    }
}

/// A token as its owner sees it on creation: the only time the secret is shown.
public struct IssuedToken: Sendable {
    public var record: TokenRecord
    public var secret: String
}

extension RegistryService {
    // MARK: Authentication

    /// The principal a bearer token stands for. Unknown, revoked and expired tokens, and tokens
    /// of disabled users, are refused alike (and logged with the reason).
    public func principal(forToken token: some StringProtocol, address: String? = nil) async throws -> Principal {
        try await principal(forTokenHash: AccessToken.hash(token), address: address)
    }

    /// The principal of the token with this hash (what short-lived OCI tokens carry), checked
    /// like the token itself: unknown, revoked, expired or of a disabled user, it is refused.
    public func principal(forTokenHash hash: String, address: String? = nil) async throws -> Principal {
        let now = Date()
        let origin = Lockout.addressKey(address ?? "-")
        func refuse(_ reason: String, _ record: TokenRecord?) async -> RegistryError {
            // A locked-out address is answered without more work or more audit records.
            if let seconds = limits.authFailures?.lockedOut(origin) {
                return RegistryError.rateLimited(retryAfter: seconds, reason: "too many failed authentications from this address")
            }
            let lockout = limits.authFailures?.failed(origin)
            await audit(AuditRecord(at: now, actor: record?.user, tokenID: record?.id, address: address, action: "auth",
                                    target: nil, outcome: "denied", detail: reason + (lockout.map { "; address locked out for \($0) s" } ?? "")))
            return RegistryError.unauthenticated
        }
        guard let record = try await accounts.token(hash: hash) else { throw await refuse("unknown token", nil) }
        if record.revokedAt != nil { throw await refuse("revoked token", record) }
        if let expires = record.expiresAt, expires <= now { throw await refuse("expired token", record) }
        guard let user = try await accounts.user(name: record.user), !user.disabled else { throw await refuse("disabled user", record) }
        // The allowance is the user's, whichever of its tokens it uses.
        if let seconds = limits.tokenRequests?.take(user.name) {
            throw RegistryError.rateLimited(retryAfter: seconds, reason: "\(user.name) has made too many requests")
        }
        if tokenUses.shouldRecord(record.id, at: now) { try? await accounts.touchToken(id: record.id, at: now) }
        if record.name == "bootstrap", record.user == "admin", adminTokenFile.remove() {
            logger.notice("the first admin's token was used: its file is removed")
        }
        let role = Principal.Role(rawValue: user.role) ?? .user
        return Principal(name: user.name, role: role, tokenID: record.id,
                         scopes: Set(record.scopes.compactMap(Principal.Scope.init(rawValue:))), packages: record.packages, address: address,
                         tokenExpiresAt: record.expiresAt)
    }

    /// Counts a publish attempt against the principal's allowance, before its upload is read.
    public func checkPublishRate(_ principal: Principal?) async throws {
        guard let principal, let seconds = limits.publishes?.take(principal.name) else { return }
        await audit("publish", principal, target: nil, denied: "rate limited")
        throw RegistryError.rateLimited(retryAfter: seconds, reason: "\(principal.name) has published too often")
    }

    /// Applies the policy, recording a refusal in the audit log before passing it on.
    public func authorize(_ action: Action, _ principal: Principal?, owners: [String]? = nil, target: String?) async throws {
        do {
            try policy.authorize(action, for: principal, owners: owners)
        } catch {
            if principal != nil { await audit(Self.auditName(action), principal, target: target, denied: error.detail) }
            throw error
        }
    }

    static func auditName(_ action: Action) -> String {
        switch action {
        case .read, .readSelf: "read"
        case .upload, .publish: "publish"
        case .yank: "yank"
        case .deprecate: "deprecate"
        case .manageOwners: "owner.change"
        case .answerInvitation: "owner.accept"
        case .manageTokens: "token.change"
        case .manageUsers: "user.change"
        case .readAudit: "audit.read"
        case .manageOrganisation: "org.change"
        case .giveUpAccess: "access.give-up"
        case .certifyKey: "signing-key.certify"
        case .revokeKey: "signing-key.revoke"
        case .grantSigning: "signing-grant.change"
        case .build: "build"
        case .review: "submission.review"
        case .readSubmission: "submission.read"
        case .withdraw: "submission.withdraw"
        }
    }

    // MARK: Audit log

    /// Appends to the audit log. A record that cannot be written is logged as an error; the
    /// action it describes has happened already.
    func audit(_ record: AuditRecord) async {
        do { try await accounts.appendAudit(record) } catch {
            logger.error("could not write the audit log", metadata: ["action": "\(record.action)", "error": "\(error)"])
        }
    }

    func audit(_ action: String, _ principal: Principal?, target: String?, detail: String? = nil, denied: String? = nil) async {
        await audit(AuditRecord(at: Date(), actor: principal?.name, tokenID: principal?.tokenID, address: principal?.address,
                                action: action, target: target, outcome: denied == nil ? "success" : "denied", detail: denied ?? detail))
    }

    public func auditLog(actor: String?, action: String?, page: Int, perPage: Int, by principal: Principal?) async throws -> Page<AuditRecord> {
        try await authorize(.readAudit, principal, target: nil)
        let (offset, overflow) = max(0, page - 1).multipliedReportingOverflow(by: perPage)
        guard !overflow else { return Page(items: [], total: 0) }
        return try await accounts.audit(actor: actor, action: action, offset: offset, limit: perPage)
    }

    // MARK: Users

    /// User names: 1 to 39 lower-case letters, digits, `-` and `_`, starting with a letter or digit.
    public static func validateUserName(_ name: String) throws(RegistryError) {
        let bytes = Array(name.utf8)
        func allowed(_ c: UInt8) -> Bool { (0x61...0x7a).contains(c) || (0x30...0x39).contains(c) || c == 0x2d || c == 0x5f }
        guard (1...39).contains(bytes.count), bytes.allSatisfy(allowed), bytes[0] != 0x2d, bytes[0] != 0x5f else {
            throw .invalidUserName(name)
        }
    }

    public func createUser(name: String, role: Principal.Role, by principal: Principal?) async throws -> UserRecord {
        try await authorize(.manageUsers, principal, target: name)
        try Self.validateUserName(name)
        let user = UserRecord(name: name, role: role.rawValue, createdAt: Date())
        do { try await accounts.insertUser(user) } catch AccountStoreError.userExists { throw RegistryError.userExists(name) }
        await audit("user.create", principal, target: name, detail: "role \(role.rawValue)")
        return user
    }

    public func users(by principal: Principal?) async throws -> [UserRecord] {
        try await authorize(.manageUsers, principal, target: nil)
        return try await accounts.users()
    }

    public func updateUser(_ name: String, role: Principal.Role?, disabled: Bool?, by principal: Principal?) async throws -> UserRecord {
        try await authorize(.manageUsers, principal, target: name)
        if name == principal?.name, disabled == true || (role != nil && role != .admin) {
            await audit("user.change", principal, target: name, denied: "an admin cannot disable or demote itself")
            throw RegistryError.forbidden("an admin cannot disable or demote itself; another admin must")
        }
        let user: UserRecord
        do { user = try await accounts.updateUser(name: name, role: role?.rawValue, disabled: disabled) } catch AccountStoreError.userNotFound {
            throw RegistryError.userNotFound(name)
        } catch AccountStoreError.lastAdmin {
            await audit("user.change", principal, target: name, denied: "this would leave no enabled admin")
            throw RegistryError.forbidden("this would leave no enabled admin")
        }
        var changes: [String] = []
        if let role { changes.append("role \(role.rawValue)") }
        if let disabled { changes.append(disabled ? "disabled" : "enabled") }
        await audit("user.change", principal, target: name, detail: changes.joined(separator: ", "))
        return user
    }

    public func account(of principal: Principal?) async throws -> (user: UserRecord, token: TokenRecord?) {
        try await authorize(.readSelf, principal, target: nil)
        guard let principal, let user = try await accounts.user(name: principal.name) else { throw RegistryError.unauthenticated }
        let token = if let id = principal.tokenID { try await accounts.token(id: id) } else { TokenRecord?.none }
        return (user, token)
    }

    // MARK: Tokens

    /// Issues a token for `user` (the principal itself unless an admin issues it for another).
    /// Its scopes never exceed the user's role, nor, when users issue their own tokens, the
    /// scopes and package patterns of the token they use: a token cannot mint a stronger one.
    public func createToken(for user: String?, name: String, scopes: [String], packages: [String], expiresIn: TimeInterval?,
                            by principal: Principal?) async throws -> IssuedToken {
        let owner = user ?? principal?.name ?? ""
        try await authorize(.manageTokens(user: owner), principal, target: owner)
        guard let principal else { throw RegistryError.unauthenticated }
        do {
            return try await issueToken(for: owner, name: name, scopes: scopes, packages: packages, expiresIn: expiresIn, by: principal)
        } catch let error as RegistryError {
            if case let .forbidden(reason) = error { await audit("token.create", principal, target: owner, denied: reason) }
            throw error
        }
    }

    /// Token names: 1 to 100 printable characters.
    public static func validateTokenName(_ name: String) throws(RegistryError) {
        guard (1...100).contains(name.count), name.unicodeScalars.allSatisfy({ ![.control, .format, .lineSeparator, .paragraphSeparator, .unassigned].contains($0.properties.generalCategory) }) else {
            throw .invalidToken("the token needs a name of 1 to 100 printable characters")
        }
    }

    /// Most active tokens one user may hold.
    static let tokensPerUser = 100

    private func issueToken(for owner: String, name: String, scopes: [String], packages: [String], expiresIn: TimeInterval?,
                            by principal: Principal) async throws -> IssuedToken {
        try Self.validateTokenName(name)
        var requested = Set<Principal.Scope>()
        for scope in scopes {
            guard let value = Principal.Scope(rawValue: scope) else {
                throw RegistryError.invalidToken("unknown scope \(scope); scopes are " + Principal.Scope.allCases.map(\.rawValue).joined(separator: ", "))
            }
            requested.insert(value)
        }
        // A token without scopes identifies its user (its account, tokens and invitations) and changes nothing.
        guard packages.count <= 20 else { throw RegistryError.invalidToken("a token takes at most 20 package patterns") }
        for pattern in packages {
            let bytes = pattern.utf8
            guard !bytes.isEmpty, bytes.count <= 64, bytes.allSatisfy({ $0 == UInt8(ascii: "*") || $0 == 0x2d || $0 == 0x5f ||
                (0x30...0x39).contains($0) || (0x41...0x5a).contains($0) || (0x61...0x7a).contains($0) }) else {
                throw RegistryError.invalidToken("\"\(pattern)\" is not a package name pattern (letters, digits, -, _ and *)")
            }
        }
        if let expiresIn, !(60...(5 * 366 * 86_400)).contains(expiresIn) {
            throw RegistryError.invalidToken("a token expires between one minute and five years from now")
        }
        guard let target = try await accounts.user(name: owner), !target.disabled else { throw RegistryError.userNotFound(owner) }
        let role = Principal.Role(rawValue: target.role) ?? .user
        if let beyond = requested.subtracting(role.scopes).first {
            throw RegistryError.forbidden("the \(role.rawValue) role cannot hold the \(beyond.rawValue) scope")
        }
        // No token makes a stronger one: its own scopes (for its own user), its package
        // patterns and its expiry bound every token it issues.
        if owner == principal.name, let beyond = requested.subtracting(principal.scopes).first {
            throw RegistryError.forbidden("the token in use lacks the \(beyond.rawValue) scope, so it cannot grant it")
        }
        if !principal.packages.isEmpty, packages.isEmpty || !packages.allSatisfy(principal.packages.contains) {
            throw RegistryError.forbidden("the token in use is limited to packages \(principal.packages.joined(separator: ", ")); so is any token it makes")
        }
        let now = Date()
        var expires = expiresIn.map { now.addingTimeInterval($0) }
        if let ceiling = principal.tokenExpiresAt {
            if let wanted = expires, wanted > ceiling {
                throw RegistryError.forbidden("the token in use expires \(ceiling); a token it makes cannot outlive it")
            }
            expires = expires ?? ceiling
        }
        let active = try await accounts.tokens(user: owner).filter { $0.revokedAt == nil && ($0.expiresAt.map { $0 > now } ?? true) }
        guard active.count < Self.tokensPerUser else {
            throw RegistryError.forbidden("\(owner) has \(Self.tokensPerUser) active tokens; revoke some first")
        }
        let secret = AccessToken.generate()
        let record = TokenRecord(id: AccessToken.newID(), user: owner, name: name,
                                 scopes: Principal.Scope.allCases.filter(requested.contains).map(\.rawValue), packages: packages,
                                 createdAt: now, expiresAt: expires)
        try await accounts.insertToken(record, hash: AccessToken.hash(secret))
        await audit("token.create", principal, target: record.id,
                    detail: "for \(owner): \(record.scopes.joined(separator: ","))" + (packages.isEmpty ? "" : " on \(packages.joined(separator: ","))"))
        return IssuedToken(record: record, secret: secret)
    }

    public func tokens(of user: String?, by principal: Principal?) async throws -> [TokenRecord] {
        let owner = user ?? principal?.name ?? ""
        try await authorize(.manageTokens(user: owner), principal, target: owner)
        return try await accounts.tokens(user: owner)
    }

    public func revokeToken(_ id: String, by principal: Principal?) async throws -> TokenRecord {
        guard let principal else { throw RegistryError.unauthenticated }
        // Someone else's token is "not found" unless the principal may manage that user's tokens.
        guard let record = try await accounts.token(id: id),
              (try? policy.authorize(.manageTokens(user: record.user), for: principal)) != nil else {
            await audit("token.revoke", principal, target: id, denied: "no such token of this user")
            throw RegistryError.tokenNotFound(id)
        }
        guard try await accounts.revokeToken(id: id, at: Date()) else { throw RegistryError.tokenNotFound(id) }
        await audit("token.revoke", principal, target: id, detail: "of \(record.user)")
        return try await accounts.token(id: id) ?? record
    }

    // MARK: Owners

    public func owners(of name: String) async throws -> (owners: [String], invited: [OwnerInvitation]) {
        let canonical = try Self.canonical(name)
        guard try await metadata.package(canonical: canonical) != nil else { throw RegistryError.packageNotFound(name) }
        return (try await accounts.owners(package: canonical), try await accounts.invitations(package: canonical))
    }

    /// Invites a user to own a package; they become an owner when they accept.
    public func inviteOwner(_ name: String, user: String, by principal: Principal?) async throws -> OwnerInvitation {
        let canonical = try Self.canonical(name)
        guard try await metadata.package(canonical: canonical) != nil else { throw RegistryError.packageNotFound(name) }
        try await authorize(.manageOwners(package: name), principal, owners: try await organisations.ownerManagers(package: canonical), target: canonical)
        if try await accounts.user(name: user)?.disabled == true { throw RegistryError.userNotFound(user) }
        let invitation = OwnerInvitation(package: canonical, user: user, invitedBy: principal?.name ?? "", createdAt: Date())
        do { try await accounts.invite(invitation) } catch AccountStoreError.userNotFound {
            throw RegistryError.userNotFound(user)
        } catch AccountStoreError.alreadyOwner {
            throw RegistryError.ownerConflict("\(user) already owns \(name)")
        }
        await audit("owner.invite", principal, target: canonical, detail: user)
        return invitation
    }

    public func invitations(by principal: Principal?) async throws -> [OwnerInvitation] {
        try await authorize(.readSelf, principal, target: nil)
        return try await accounts.invitations(user: principal?.name ?? "")
    }

    public func answerInvitation(_ name: String, accept: Bool, by principal: Principal?) async throws {
        let canonical = try Self.canonical(name)
        if accept { try await authorize(.answerInvitation(package: canonical), principal, target: canonical) }
        try await authorize(.readSelf, principal, target: canonical)
        guard let principal, try await accounts.answerInvitation(package: canonical, user: principal.name, accept: accept) else {
            throw RegistryError.invitationNotFound(name)
        }
        await audit(accept ? "owner.accept" : "owner.decline", principal, target: canonical)
    }

    /// Removes an owner (owners may remove themselves or others; the last owner stays).
    public func removeOwner(_ name: String, user: String, by principal: Principal?) async throws {
        let canonical = try Self.canonical(name)
        guard try await metadata.package(canonical: canonical) != nil else { throw RegistryError.packageNotFound(name) }
        try await authorize(.manageOwners(package: name), principal, owners: try await organisations.ownerManagers(package: canonical), target: canonical)
        do {
            try await accounts.removeOwner(package: canonical, user: user)
        } catch AccountStoreError.notOwner {
            // A pending invitation is withdrawn the same way.
            guard try await accounts.answerInvitation(package: canonical, user: user, accept: false) else {
                throw RegistryError.ownerConflict("\(user) does not own \(name)")
            }
            await audit("owner.withdraw", principal, target: canonical, detail: user)
            return
        } catch AccountStoreError.lastOwner {
            throw RegistryError.ownerConflict("\(user) is the last owner of \(name); add another owner first")
        }
        await audit("owner.remove", principal, target: canonical, detail: user)
    }
}
