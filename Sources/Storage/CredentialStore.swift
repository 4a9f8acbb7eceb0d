import Foundation

/// How a user signs in, apart from API tokens: a password hash and a second factor. Never
/// part of ``UserRecord``, so listing users cannot leak it.
public struct CredentialRecord: Sendable, Equatable {
    public var user: String
    /// A self-describing hash (`bcrypt-sha256$...`), or nil for users who sign in another way.
    public var passwordHash: String?
    public var passwordChangedAt: Date?
    /// The TOTP secret, Base32, once enrolment has started.
    public var totpSecret: String?
    /// Whether enrolment was confirmed with a valid code: only then is the code asked for.
    public var totpEnabled: Bool
    /// The last time step whose code was accepted: a code is good once.
    public var totpLastStep: Int64

    public init(user: String, passwordHash: String? = nil, passwordChangedAt: Date? = nil, totpSecret: String? = nil,
                totpEnabled: Bool = false, totpLastStep: Int64 = 0) {
        self.user = user
        self.passwordHash = passwordHash
        self.passwordChangedAt = passwordChangedAt
        self.totpSecret = totpSecret
        self.totpEnabled = totpEnabled
        self.totpLastStep = totpLastStep
    }
}

/// A signed-in browser (or other cookie client). The cookie value is kept only as a hash.
public struct SessionRecord: Sendable, Equatable {
    /// A public identifier for listings and the audit log.
    public var id: String
    public var user: String
    /// The value every unsafe request of this session must echo.
    public var csrf: String
    public var createdAt: Date
    public var expiresAt: Date
    public var lastSeenAt: Date
    public var address: String?
    /// How the user signed in: `password`, `password+totp`, `oidc:<provider>`.
    public var method: String

    public init(id: String, user: String, csrf: String, createdAt: Date, expiresAt: Date, lastSeenAt: Date, address: String?, method: String) {
        self.id = id
        self.user = user
        self.csrf = csrf
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.lastSeenAt = lastSeenAt
        self.address = address
        self.method = method
    }
}

/// A one-time invitation to register, made by an admin; kept only as a hash of its code.
public struct SignupInvitation: Sendable, Equatable {
    public var id: String
    public var role: String
    public var createdBy: String
    public var createdAt: Date
    public var expiresAt: Date
    public var usedBy: String?
    public var usedAt: Date?

    public init(id: String, role: String, createdBy: String, createdAt: Date, expiresAt: Date, usedBy: String? = nil, usedAt: Date? = nil) {
        self.id = id
        self.role = role
        self.createdBy = createdBy
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.usedBy = usedBy
        self.usedAt = usedAt
    }
}

/// An account at an OpenID Connect provider, linked to a user.
public struct ExternalIdentity: Sendable, Equatable {
    public var issuer: String
    public var subject: String
    public var user: String
    public var provider: String
    public var email: String?
    public var linkedAt: Date

    public init(issuer: String, subject: String, user: String, provider: String, email: String?, linkedAt: Date) {
        self.issuer = issuer
        self.subject = subject
        self.user = user
        self.provider = provider
        self.email = email
        self.linkedAt = linkedAt
    }
}

public enum CredentialStoreError: Error, Equatable, Sendable {
    /// The invitation code is unknown, used or expired.
    case invitationUnusable
    /// The external identity is linked to a user already.
    case identityLinked
}

/// Passwords, second factors, sessions, sign-up invitations and linked external identities.
/// Every implementation passes the same contract suite (Tests/StorageTests).
public protocol CredentialStore: Sendable {
    func credentials(user: String) async throws -> CredentialRecord?
    /// Sets the password hash and, when asked, ends every session of the user, in one transaction.
    func setPassword(user: String, hash: String, at: Date, endSessions: Bool) async throws
    /// Starts (secret, not enabled), confirms (enabled with recovery code hashes) or removes
    /// (nil secret) the second factor. Confirming replaces the recovery codes.
    func setTOTP(user: String, secret: String?, enabled: Bool, recoveryCodeHashes: [String], step: Int64) async throws
    /// Starts enrolment with a new secret, only while no factor is enabled; false when one is.
    func beginTOTP(user: String, secret: String) async throws -> Bool
    /// Records the use of a TOTP time step; false when this step or a later one was used already.
    func useTOTPStep(user: String, step: Int64) async throws -> Bool
    /// Spends a recovery code; false when it is unknown or spent.
    func useRecoveryCode(user: String, hash: String, at: Date) async throws -> Bool
    func recoveryCodesLeft(user: String) async throws -> Int

    /// Creates a user with a password, spending an invitation when one is given, in one
    /// transaction: the user exists with its password, and the invitation is spent, or neither.
    func register(_ user: UserRecord, passwordHash: String?, invitationHash: String?, identity: ExternalIdentity?, at: Date) async throws

    func insertSession(_ session: SessionRecord, hash: String) async throws
    func session(hash: String) async throws -> SessionRecord?
    func sessions(user: String) async throws -> [SessionRecord]
    /// Records activity; implementations may skip writes closer than a minute to the last.
    func touchSession(id: String, at: Date) async throws
    func deleteSession(id: String) async throws -> Bool
    /// Ends every session of the user (on disabling, password reset, second factor removal).
    func deleteSessions(user: String) async throws

    func insertSignupInvitation(_ invitation: SignupInvitation, hash: String) async throws
    func signupInvitations() async throws -> [SignupInvitation]

    func identity(issuer: String, subject: String) async throws -> ExternalIdentity?
    func identities(user: String) async throws -> [ExternalIdentity]
    /// Links an identity to an existing user; refuses one linked already.
    func link(_ identity: ExternalIdentity) async throws
    /// Removes the user's links to a provider's accounts (every provider when nil); the number removed.
    func unlink(user: String, provider: String?) async throws -> Int
}
