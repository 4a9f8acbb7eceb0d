import Foundation
import PackageFormat
import Storage

/// How people sign in: who may register, how passwords are hashed, which roles need a second
/// factor, how long sessions last, and when an account is locked out.
public struct SignInSettings: Sendable {
    public enum Registration: String, Sendable, CaseIterable {
        /// Only admins create users.
        case closed
        /// Anyone with an admin's invitation code registers, with the role the invitation gives.
        case invitation
        /// Anyone registers, as a user; invitations still give their role.
        case open
    }

    public var registration: Registration = .invitation
    public var passwords = PasswordHasher()
    /// Roles whose members must enrol a second factor before they act beyond their own account.
    public var twoFactorRoles: Set<Principal.Role> = [.admin, .reviewer]
    /// A session ends this long after sign-in, or after this long unused.
    public var sessionLifetime: TimeInterval = 7 * 86_400
    public var sessionIdle: TimeInterval = 12 * 3600
    /// Failed sign-ins per account from one address before that address may no longer sign in
    /// to it with a password alone (with backoff); nil turns it off.
    public var accountLockout: Lockout? = Lockout(threshold: 10, window: .seconds(900))
    /// Failed sign-ins per account from all addresses together before nobody may sign in to it
    /// with a password alone (a guess spread over many addresses); nil turns it off.
    public var accountWideLockout: Lockout? = Lockout(threshold: 50, window: .seconds(900))
    /// The name authenticator apps show.
    public var issuer = "epr"
    /// Registrations per address (ten an hour, all at once at most).
    public var registrations: RateLimiter? = RateLimiter(burst: 10, perSecond: 10.0 / 3600)

    public init() {}
}

/// A successful sign-in: the user and how it proved itself.
public struct SignedIn: Sendable {
    public var user: UserRecord
    public var method: String
}

/// A new session: its record, and the cookie value, shown only now.
public struct IssuedSession: Sendable {
    public var record: SessionRecord
    public var secret: String
    /// Why the session may only look after its own account, if it may.
    public var restriction: String?
}

extension RegistryService {
    // MARK: Password sign-in

    /// Checks a user name, password and (when enrolled) second factor. Failures count against
    /// the address, the account from that address, and the account from everywhere. A locked
    /// address, or a locked account without a second factor in the request, is refused even the
    /// right password, before any hashing. A locked account is never locked against its owner's
    /// second factor: someone else's failures cannot keep a person who proves both factors out
    /// (and while locked, every failure looks alike, so guesses learn nothing of the password).
    /// Unknown users cost as much time as wrong passwords.
    public func signIn(name: String, password: String, otp: String?, recoveryCode: String?, address: String?) async throws -> SignedIn {
        let origin = Lockout.addressKey(address ?? "-"), account = name.lowercased(), pair = account + " " + origin
        try limits.checkAddress(origin)
        let secondFactor = !(otp ?? "").isEmpty || !(recoveryCode ?? "").isEmpty
        let locked = signIn.accountLockout?.lockedOut(pair) ?? signIn.accountWideLockout?.lockedOut(account)
        if let seconds = locked, !secondFactor {
            throw RegistryError.rateLimited(retryAfter: seconds, reason: "too many failed sign-ins for this account: sign in with a second factor, or wait")
        }
        let user = try await accounts.user(name: account)
        let stored = user == nil ? nil : try await credentials.credentials(user: account)
        let passwordMatches = try await signIn.passwords.verify(password, against: stored?.passwordHash)
        func fail(_ reason: String) async -> RegistryError {
            let addressLock = limits.authFailures?.failed(origin)
            // Unknown names are locked out alike, so a lockout tells nothing about who exists.
            let accountLock = signIn.accountLockout?.failed(pair)
            signIn.accountWideLockout?.failed(account)
            var detail = reason
            if let accountLock { detail += "; account locked for \(accountLock) s" }
            if let addressLock { detail += "; address locked for \(addressLock) s" }
            await audit(AuditRecord(at: Date(), actor: user?.name, tokenID: nil, address: address, action: "signin", target: nil,
                                    outcome: "denied", detail: detail))
            return RegistryError.signInFailed(reason)
        }
        guard let user, let stored, passwordMatches else { throw await fail(user == nil ? "unknown user" : "wrong password") }
        guard !user.disabled else { throw await fail("disabled user") }
        if locked != nil, !stored.totpEnabled { throw await fail("account locked and no second factor enrolled") }
        var method = "password"
        if stored.totpEnabled {
            if let otp, !otp.isEmpty {
                guard let secret = stored.totpSecret.flatMap(TOTP.init(base32:)), let step = secret.match(otp, at: Date()) else {
                    throw await fail("wrong one-time code")
                }
                guard try await credentials.useTOTPStep(user: user.name, step: step) else { throw await fail("one-time code used already") }
                method = "password+totp"
            } else if let recoveryCode, !recoveryCode.isEmpty {
                // While the account is locked, only the authenticator's code gets through: a
                // recovery code's check writes to the store, which a guess could time.
                guard locked == nil else { throw await fail("recovery code while the account is locked") }
                guard try await credentials.useRecoveryCode(user: user.name, hash: Self.recoveryHash(recoveryCode), at: Date()) else {
                    throw await fail("unknown or spent recovery code")
                }
                method = "password+recovery-code"
            } else {
                throw RegistryError.secondFactorRequired
            }
        }
        if let hash = stored.passwordHash, signIn.passwords.needsRehash(hash) {
            try? await credentials.setPassword(user: user.name, hash: try await signIn.passwords.hash(password), at: Date(), endSessions: false)
        }
        await audit(AuditRecord(at: Date(), actor: user.name, tokenID: nil, address: address, action: "signin", target: nil, detail: method))
        return SignedIn(user: user, method: method)
    }

    /// Opens a session for a user who signed in.
    public func startSession(for signedIn: SignedIn, address: String?) async throws -> IssuedSession {
        let now = Date()
        let secret = Self.randomString(43, prefix: "eprs_")
        let record = SessionRecord(id: Self.randomString(20, prefix: "ses_", lowercase: true), user: signedIn.user.name,
                                   csrf: Self.randomString(43, prefix: ""), createdAt: now, expiresAt: now.addingTimeInterval(signIn.sessionLifetime),
                                   lastSeenAt: now, address: address, method: signedIn.method)
        try await credentials.insertSession(record, hash: AccessToken.hash(secret))
        await audit(AuditRecord(at: now, actor: record.user, tokenID: record.id, address: address, action: "session.start", target: record.id,
                                detail: signedIn.method))
        let restriction = try await signedInPrincipal(signedIn.user, method: signedIn.method, sessionID: record.id, address: address).restriction
        return IssuedSession(record: record, secret: secret, restriction: restriction)
    }

    /// Issues an API token to a user who signed in (for the command line): the role's scopes,
    /// expiring in `expiresIn` (30 days when nil).
    public func issueSignInToken(for signedIn: SignedIn, name: String, expiresIn: TimeInterval?, address: String?) async throws -> IssuedToken {
        let principal = try await signedInPrincipal(signedIn.user, method: signedIn.method, sessionID: nil, address: address)
        return try await createToken(for: signedIn.user.name, name: name, scopes: principal.scopes.map(\.rawValue), packages: [],
                                     expiresIn: expiresIn ?? 30 * 86_400, by: principal)
    }

    /// The principal a session cookie stands for, with the session (whose CSRF token unsafe
    /// requests must echo). Unknown, expired and idle sessions and disabled users are refused.
    public func principal(forSession secret: some StringProtocol, address: String?) async throws -> (Principal, SessionRecord) {
        let now = Date(), origin = Lockout.addressKey(address ?? "-")
        guard let session = try await credentials.session(hash: AccessToken.hash(secret)) else {
            // As with tokens, a locked-out address is refused only what it cannot prove.
            try limits.checkAddress(origin)
            limits.authFailures?.failed(origin)
            throw RegistryError.unauthenticated
        }
        guard session.expiresAt > now, now.timeIntervalSince(session.lastSeenAt) < signIn.sessionIdle,
              let user = try await accounts.user(name: session.user), !user.disabled else {
            _ = try? await credentials.deleteSession(id: session.id)
            throw RegistryError.unauthenticated
        }
        if let seconds = limits.tokenRequests?.take(user.name) {
            throw RegistryError.rateLimited(retryAfter: seconds, reason: "\(user.name) has made too many requests")
        }
        if tokenUses.shouldRecord(session.id, at: now) { try? await credentials.touchSession(id: session.id, at: now) }
        var principal = try await signedInPrincipal(user, method: session.method, sessionID: session.id, address: address)
        principal.viaSession = true
        return (principal, session)
    }

    /// A signed-in user's principal: every right of the role, unless the role needs a second
    /// factor that this sign-in did not show: a password sign-in of a user without an enrolled
    /// factor, or an OpenID Connect sign-in whose provider does not say it asked for one.
    func signedInPrincipal(_ user: UserRecord, method: String, sessionID: String?, address: String?) async throws -> Principal {
        let role = Principal.Role(rawValue: user.role) ?? .user
        var principal = Principal(name: user.name, role: role, tokenID: sessionID, address: address)
        guard signIn.twoFactorRoles.contains(role) else { return principal }
        if method.hasPrefix("oidc:") {
            if !method.hasSuffix("+mfa") {
                principal.scopes = []
                principal.restriction = "the \(role.rawValue) role needs a second factor, and the provider did not report one; sign in with a password and code"
            }
        } else if try await credentials.credentials(user: user.name)?.totpEnabled != true {
            principal.scopes = []
            principal.restriction = "the \(role.rawValue) role needs a second factor: enrol one (epr totp enable); until then only your own account is open to you"
        }
        return principal
    }

    public func endSession(_ id: String, by principal: Principal?) async throws {
        try await authorize(.readSelf, principal, target: id)
        guard let principal, try await credentials.sessions(user: principal.name).contains(where: { $0.id == id }),
              try await credentials.deleteSession(id: id) else { throw RegistryError.sessionNotFound(id) }
        await audit("session.end", principal, target: id)
    }

    public func sessions(by principal: Principal?) async throws -> [SessionRecord] {
        try await authorize(.readSelf, principal, target: nil)
        return try await credentials.sessions(user: principal?.name ?? "")
    }

    // MARK: Registration and passwords

    /// Registers a user with a password: with an invitation code (its role), or, when
    /// registration is open, without one (as a user).
    public func register(name: String, password: String, invitation: String?, address: String?) async throws -> UserRecord {
        let origin = Lockout.addressKey(address ?? "-")
        try limits.checkAddress(origin)
        if let seconds = signIn.registrations?.take(origin) {
            throw RegistryError.rateLimited(retryAfter: seconds, reason: "too many registrations from this address")
        }
        let code = invitation.flatMap { $0.isEmpty ? nil : $0 }
        switch signIn.registration {
        case .closed: throw RegistryError.registrationClosed
        case .invitation where code == nil: throw RegistryError.registrationClosed
        default: break
        }
        try Self.validateUserName(name)
        try PasswordHasher.check(password, user: name)
        var role = Principal.Role.user
        if let code {
            // The role comes from the invitation; an unusable code counts as a failed authentication.
            guard let invite = try await credentials.signupInvitations().first(where: { $0.id == Self.invitationID(code) }),
                  invite.usedAt == nil, invite.expiresAt > Date() else {
                limits.authFailures?.failed(origin)
                throw RegistryError.signupInvitationInvalid
            }
            role = Principal.Role(rawValue: invite.role) ?? .user
        }
        let now = Date()
        let user = UserRecord(name: name, role: role.rawValue, createdAt: now)
        do {
            try await credentials.register(user, passwordHash: try await signIn.passwords.hash(password),
                                           invitationHash: code.map(AccessToken.hash), identity: nil, at: now)
        } catch AccountStoreError.userExists {
            throw RegistryError.userExists(name)
        } catch CredentialStoreError.invitationUnusable {
            limits.authFailures?.failed(origin)
            throw RegistryError.signupInvitationInvalid
        }
        await audit(AuditRecord(at: now, actor: name, tokenID: nil, address: address, action: "user.register", target: name,
                                detail: "role \(role.rawValue)" + (code == nil ? "" : " by invitation \(Self.invitationID(code!))")))
        return user
    }

    /// An invitation to register with a role; its code is shown only now.
    public func createSignupInvitation(role: Principal.Role, expiresIn: TimeInterval, by principal: Principal?) async throws -> (SignupInvitation, String) {
        try await authorize(.manageUsers, principal, target: nil)
        guard (3600...(90 * 86_400)).contains(expiresIn) else { throw RegistryError.invalidRequest("an invitation expires between 1 hour and 90 days from now") }
        let code = Self.randomString(43, prefix: "epri_")
        let now = Date()
        let invitation = SignupInvitation(id: Self.invitationID(code), role: role.rawValue, createdBy: principal?.name ?? "", createdAt: now,
                                          expiresAt: now.addingTimeInterval(expiresIn))
        try await credentials.insertSignupInvitation(invitation, hash: AccessToken.hash(code))
        await audit("invitation.create", principal, target: invitation.id, detail: "role \(role.rawValue)")
        return (invitation, code)
    }

    public func signupInvitations(by principal: Principal?) async throws -> [SignupInvitation] {
        try await authorize(.manageUsers, principal, target: nil)
        return try await credentials.signupInvitations()
    }

    /// An invitation's public id: derived from its code, so the code never needs storing.
    static func invitationID(_ code: String) -> String { "inv_" + AccessToken.hash(code).prefix(16) }

    /// Changes the principal's own password; every session ends (sign in again).
    public func changePassword(current: String, new: String, by principal: Principal?) async throws {
        try await authorize(.readSelf, principal, target: nil)
        guard let principal else { throw RegistryError.unauthenticated }
        try await requirePassword(current, of: principal)
        try PasswordHasher.check(new, user: principal.name)
        try await credentials.setPassword(user: principal.name, hash: try await signIn.passwords.hash(new), at: Date(), endSessions: true)
        await audit("password.change", principal, target: principal.name)
    }

    /// An admin's reset of a user's password (and, when asked, second factor): a new random
    /// password, shown once, and every session of the user ends.
    public func resetPassword(of user: String, removeSecondFactor: Bool, by principal: Principal?) async throws -> String {
        try await authorize(.manageUsers, principal, target: user)
        guard try await accounts.user(name: user) != nil else { throw RegistryError.userNotFound(user) }
        let password = Self.randomString(24, prefix: "")
        try await credentials.setPassword(user: user, hash: try await signIn.passwords.hash(password), at: Date(), endSessions: true)
        var unlinked = 0
        if removeSecondFactor {
            // Recovering an account removes every other way in.
            try await credentials.setTOTP(user: user, secret: nil, enabled: false, recoveryCodeHashes: [], step: 0)
            unlinked = try await credentials.unlink(user: user, provider: nil)
        }
        await audit("password.reset", principal, target: user,
                    detail: removeSecondFactor ? "second factor and \(unlinked) linked account(s) removed" : nil)
        return password
    }

    /// Re-checks the principal's password before a change to its credentials; failures count
    /// like failed sign-ins.
    func requirePassword(_ password: String, of principal: Principal) async throws {
        let pair = principal.name + " " + (principal.address ?? "-")
        if let seconds = signIn.accountLockout?.lockedOut(pair) {
            throw RegistryError.rateLimited(retryAfter: seconds, reason: "too many failed sign-ins for this account")
        }
        let stored = try await credentials.credentials(user: principal.name)
        guard try await signIn.passwords.verify(password, against: stored?.passwordHash) else {
            signIn.accountLockout?.failed(pair)
            signIn.accountWideLockout?.failed(principal.name)
            await audit("password.check", principal, target: principal.name, denied: "wrong password")
            throw RegistryError.signInFailed("wrong password")
        }
    }

    // MARK: Second factor

    /// Starts TOTP enrolment: a new secret, not in force until confirmed with a code.
    public func beginTOTP(password: String, by principal: Principal?) async throws -> (secret: String, uri: String) {
        try await authorize(.readSelf, principal, target: nil)
        guard let principal else { throw RegistryError.unauthenticated }
        try await requirePassword(password, of: principal)
        let totp = TOTP.generate()
        guard try await credentials.beginTOTP(user: principal.name, secret: totp.base32) else {
            throw RegistryError.invalidRequest("a second factor is enrolled already; remove it first")
        }
        return (totp.base32, totp.provisioningURI(account: principal.name, issuer: signIn.issuer))
    }

    /// Confirms enrolment with a current code; returns ten recovery codes, shown only now.
    public func confirmTOTP(code: String, by principal: Principal?) async throws -> [String] {
        try await authorize(.readSelf, principal, target: nil)
        guard let principal else { throw RegistryError.unauthenticated }
        guard let stored = try await credentials.credentials(user: principal.name), let secret = stored.totpSecret.flatMap(TOTP.init(base32:)),
              !stored.totpEnabled else {
            throw RegistryError.invalidRequest("start enrolment first")
        }
        guard let step = secret.match(code, at: Date()) else {
            await audit("totp.enable", principal, target: principal.name, denied: "wrong code")
            throw RegistryError.signInFailed("wrong one-time code")
        }
        let codes = (0..<10).map { _ in Self.recoveryCode() }
        try await credentials.setTOTP(user: principal.name, secret: secret.base32, enabled: true, recoveryCodeHashes: codes.map(Self.recoveryHash),
                                      step: step)
        await audit("totp.enable", principal, target: principal.name)
        return codes
    }

    /// Removes the second factor, given the password and a current code (or a recovery code).
    public func removeTOTP(password: String, code: String, by principal: Principal?) async throws {
        try await authorize(.readSelf, principal, target: nil)
        guard let principal else { throw RegistryError.unauthenticated }
        try await requirePassword(password, of: principal)
        guard let stored = try await credentials.credentials(user: principal.name), stored.totpEnabled,
              let secret = stored.totpSecret.flatMap(TOTP.init(base32:)) else {
            throw RegistryError.invalidRequest("no second factor is enrolled")
        }
        let valid: Bool
        if let step = secret.match(code, at: Date()) {
            valid = try await credentials.useTOTPStep(user: principal.name, step: step)
        } else {
            valid = try await credentials.useRecoveryCode(user: principal.name, hash: Self.recoveryHash(code), at: Date())
        }
        guard valid else {
            await audit("totp.remove", principal, target: principal.name, denied: "wrong code")
            throw RegistryError.signInFailed("wrong one-time code")
        }
        try await credentials.setTOTP(user: principal.name, secret: nil, enabled: false, recoveryCodeHashes: [], step: 0)
        await audit("totp.remove", principal, target: principal.name)
    }

    public func secondFactorStatus(by principal: Principal?) async throws -> (enabled: Bool, recoveryCodesLeft: Int) {
        try await authorize(.readSelf, principal, target: nil)
        let name = principal?.name ?? ""
        let enabled = try await credentials.credentials(user: name)?.totpEnabled == true
        return (enabled, enabled ? try await credentials.recoveryCodesLeft(user: name) : 0)
    }

    // MARK: Secrets

    static func recoveryCode() -> String {
        let raw = randomString(12, prefix: "", lowercase: true)
        return raw.prefix(4) + "-" + raw.dropFirst(4).prefix(4) + "-" + raw.suffix(4)
    }

    static func recoveryHash(_ code: String) -> String {
        AccessToken.hash(code.lowercased().filter { $0.isLetter || $0.isNumber })
    }

    public static func randomString(_ count: Int, prefix: String, lowercase: Bool = false) -> String {
        var generator = SystemRandomNumberGenerator()
        let alphabet = Array(lowercase ? "abcdefghijkmnpqrstuvwxyz23456789" : "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        return prefix + String((0..<count).map { _ in alphabet[Int(generator.next(upperBound: UInt64(alphabet.count)))] })
    }
}
