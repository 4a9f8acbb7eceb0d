import Foundation

/// A registered user.
public struct UserRecord: Sendable, Equatable, Codable {
    /// Lower case; the name users sign in with and are known by.
    public var name: String
    /// One of admin, reviewer, publisher, user.
    public var role: String
    public var createdAt: Date
    public var disabled: Bool

    public init(name: String, role: String, createdAt: Date, disabled: Bool = false) {
        self.name = name
        self.role = role
        self.createdAt = createdAt
        self.disabled = disabled
    }
}

/// An API token as stored: never the token itself, only its hash (kept apart).
public struct TokenRecord: Sendable, Equatable, Codable {
    /// A public identifier, shown in listings and the audit log.
    public var id: String
    public var user: String
    /// What the token is for, in its owner's words.
    public var name: String
    public var scopes: [String]
    /// Package name patterns (`l3af-*`) the token is limited to; empty means any package.
    public var packages: [String]
    public var createdAt: Date
    public var expiresAt: Date?
    public var lastUsedAt: Date?
    public var revokedAt: Date?

    public init(id: String, user: String, name: String, scopes: [String], packages: [String] = [], createdAt: Date,
                expiresAt: Date? = nil, lastUsedAt: Date? = nil, revokedAt: Date? = nil) {
        self.id = id
        self.user = user
        self.name = name
        self.scopes = scopes
        self.packages = packages
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.lastUsedAt = lastUsedAt
        self.revokedAt = revokedAt
    }
}

/// A pending offer of a package's ownership, which the invited user must accept.
public struct OwnerInvitation: Sendable, Equatable, Codable {
    public var package: String
    public var user: String
    public var invitedBy: String
    public var createdAt: Date
    /// A transfer: on acceptance the invited user becomes the only owner.
    public var transfer: Bool

    public init(package: String, user: String, invitedBy: String, createdAt: Date, transfer: Bool = false) {
        self.package = package
        self.user = user
        self.invitedBy = invitedBy
        self.createdAt = createdAt
        self.transfer = transfer
    }
}

/// One security-relevant action, as the append-only audit log keeps it.
public struct AuditRecord: Sendable, Equatable, Codable {
    public var id: Int
    public var at: Date
    /// The user who acted, when known (a failed sign-in may have none).
    public var actor: String?
    public var tokenID: String?
    public var address: String?
    /// A stable name: `publish`, `yank`, `token.create`, `auth.failure`, ...
    public var action: String
    /// What was acted on: a package, `name@version`, a user or a token id.
    public var target: String?
    /// `success`, or `denied` with the reason in `detail`.
    public var outcome: String
    public var detail: String?

    public init(id: Int = 0, at: Date, actor: String?, tokenID: String?, address: String?, action: String, target: String?,
                outcome: String = "success", detail: String? = nil) {
        self.id = id
        self.at = at
        self.actor = actor
        self.tokenID = tokenID
        self.address = address
        self.action = action
        self.target = target
        self.outcome = outcome
        self.detail = detail
    }
}

/// Who may publish a new version of an existing package.
public enum PublishOwnership: Sendable, Equatable {
    /// Anyone the policy let through (admins).
    case anyone
    /// Only the package's owners; the publisher of a new package becomes its first owner.
    case owners
}

/// What the account store refuses.
public enum AccountStoreError: Error, Equatable, Sendable {
    case userExists(String)
    case userNotFound(String)
    case notOwner(user: String, package: String)
    case lastOwner(String)
    case alreadyOwner(user: String, package: String)
    /// The change would leave no enabled admin.
    case lastAdmin
    /// A new package name inside an organisation's namespace, by someone not a member.
    case namespaceTaken(package: String, org: String)
}

/// Users, API tokens, package owners and the audit log. The SQLite store keeps them in the same
/// database as the packages, so ownership checks and publishes share one transaction.
///
/// Every implementation passes the same contract suite (Tests/StorageTests).
public protocol AccountStore: Sendable {
    func insertUser(_ user: UserRecord) async throws
    func user(name: String) async throws -> UserRecord?
    func users() async throws -> [UserRecord]
    /// Refuses (``AccountStoreError/lastAdmin``) a change that would leave no enabled admin.
    func updateUser(name: String, role: String?, disabled: Bool?) async throws -> UserRecord
    /// Whether any user exists (a new data directory has none).
    func hasUsers() async throws -> Bool
    /// Creates the first user and its token together, only if there is no user yet; false when
    /// users exist.
    func bootstrap(_ user: UserRecord, token: TokenRecord, hash: String) async throws -> Bool

    func insertToken(_ token: TokenRecord, hash: String) async throws
    /// The token with this hash, revoked or expired ones included: the caller decides.
    func token(hash: String) async throws -> TokenRecord?
    func tokens(user: String) async throws -> [TokenRecord]
    func token(id: String) async throws -> TokenRecord?
    /// Revokes a token; false when it does not exist or was revoked already.
    func revokeToken(id: String, at: Date) async throws -> Bool
    /// Records a use; implementations may skip writes closer than a minute to the last.
    func touchToken(id: String, at: Date) async throws

    func owners(package canonical: String) async throws -> [String]
    /// Offers ownership of a package to a user (who is not an owner yet).
    func invite(_ invitation: OwnerInvitation) async throws
    func invitations(user: String) async throws -> [OwnerInvitation]
    func invitations(package canonical: String) async throws -> [OwnerInvitation]
    /// Accepts (or declines) an invitation; false when there was none, or when whoever sent it
    /// no longer owns the package (the invitation is dropped then).
    func answerInvitation(package canonical: String, user: String, accept: Bool) async throws -> Bool
    /// Removes an owner, and withdraws the invitations that owner sent; refuses to remove the last one.
    func removeOwner(package canonical: String, user: String) async throws

    func appendAudit(_ record: AuditRecord) async throws
    /// The newest records first, filtered by actor and action when given.
    func audit(actor: String?, action: String?, offset: Int, limit: Int) async throws -> Page<AuditRecord>
}

/// An organisation: a namespace (`name` and `name-...` package names) whose members own its
/// packages together.
public struct Organisation: Sendable, Equatable, Codable {
    public var name: String
    public var description: String
    public var createdBy: String
    public var createdAt: Date

    public init(name: String, description: String, createdBy: String, createdAt: Date) {
        self.name = name
        self.description = description
        self.createdBy = createdBy
        self.createdAt = createdAt
    }
}

public struct OrgMember: Sendable, Equatable, Codable {
    public var org: String
    public var user: String
    /// `admin` (manages members and moves packages in) or `member`.
    public var role: String
    public var addedAt: Date

    public init(org: String, user: String, role: String, addedAt: Date) {
        self.org = org
        self.user = user
        self.role = role
        self.addedAt = addedAt
    }
}

public enum OrganisationStoreError: Error, Equatable, Sendable {
    case exists(String)
    case notFound(String)
    /// The change would leave the organisation without an admin.
    case lastAdmin(String)
    case notMember(user: String, org: String)
}

/// Organisations, their members, and which packages they hold. Every implementation passes the
/// same contract suite (Tests/StorageTests).
public protocol OrganisationStore: Sendable {
    /// Creates an organisation with its first admin.
    func createOrganisation(_ organisation: Organisation, admin: String) async throws
    func organisation(name: String) async throws -> Organisation?
    func organisations() async throws -> [Organisation]
    func members(org: String) async throws -> [OrgMember]
    /// Adds a member or changes a member's role; refuses to leave no admin.
    func setMember(_ member: OrgMember) async throws
    /// Removes a member; refuses to remove the last admin.
    func removeMember(org: String, user: String) async throws
    func organisation(ofPackage canonical: String) async throws -> String?
    func packages(org: String) async throws -> [String]
    /// Puts a package in an organisation (nil takes it out; the package must then keep an owner).
    func setOrganisation(ofPackage canonical: String, to org: String?) async throws
    /// Owners of the package and members of its organisation: everyone who may publish, yank
    /// and deprecate it.
    func effectiveOwners(package canonical: String) async throws -> [String]
    /// Who may change the package's owners and organisation: its direct owners and the admins
    /// of its organisation.
    func ownerManagers(package canonical: String) async throws -> [String]
    /// Offers a package to a user: on acceptance the user becomes its only owner.
    func offerTransfer(_ invitation: OwnerInvitation) async throws
}
