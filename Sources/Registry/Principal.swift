import Foundation
import PackageFormat

/// Who is acting: the user whose token authenticated the request, the token's rights, and where
/// the request came from (for the audit log).
public struct Principal: Sendable, Equatable {
    /// Roles, each with every right of the ones before it: a user reads; a publisher publishes,
    /// yanks and manages the owners of the packages it owns, and signs; a reviewer also reviews;
    /// an admin also administers users and may act on every package.
    public enum Role: String, Sendable, CaseIterable, Codable {
        case admin, reviewer, publisher, user

        /// The most a token of a user with this role can carry.
        public var scopes: Set<Scope> {
            switch self {
            case .admin: Set(Scope.allCases)
            case .reviewer: [.publishNew, .publishUpdate, .yank, .owners, .sign, .review]
            case .publisher: [.publishNew, .publishUpdate, .yank, .owners, .sign]
            case .user: []
            }
        }
    }

    /// What a token may be used for.
    public enum Scope: String, Sendable, CaseIterable, Codable {
        /// Publishing the first version of a package.
        case publishNew = "publish-new"
        /// Publishing further versions of a package one owns.
        case publishUpdate = "publish-update"
        /// Yanking, unyanking and deprecating versions.
        case yank
        /// Inviting and removing a package's owners.
        case owners
        case review
        case sign
        /// Managing users and reading the audit log.
        case admin
        /// Taking and reporting build jobs: what a build worker's token carries (admins only
        /// hold it; a worker's token should hold nothing else).
        case build
    }

    public var name: String
    public var role: Role
    /// The token that authenticated the request.
    public var tokenID: String?
    public var scopes: Set<Scope>
    /// Package name patterns the token is limited to; empty means any.
    public var packages: [String]
    /// The client's address.
    public var address: String?
    /// When the token in use expires; tokens it creates expire no later.
    public var tokenExpiresAt: Date?
    /// Why this principal may only read and look after its own account for now (an admin who
    /// signed in without the second factor its role requires).
    public var restriction: String?
    /// Whether a browser session (not an API token) authenticated the request.
    public var viaSession = false

    public init(name: String, role: Role, tokenID: String? = nil, scopes: Set<Scope>? = nil, packages: [String] = [],
                address: String? = nil, tokenExpiresAt: Date? = nil) {
        self.name = name
        self.role = role
        self.tokenID = tokenID
        self.scopes = (scopes ?? role.scopes).intersection(role.scopes)
        self.packages = packages
        self.address = address
        self.tokenExpiresAt = tokenExpiresAt
    }

    /// An admin acting as one, with the admin scope: it may act on every package.
    public var actsAsAdmin: Bool { role == .admin && scopes.contains(.admin) }

    /// Whether the token may act on this package: its patterns (`l3af-*`) against the canonical name.
    public func mayTouch(_ package: String) -> Bool {
        guard !packages.isEmpty else { return true }
        let canonical = (try? PackageName(package).canonical) ?? package.lowercased().replacingOccurrences(of: "_", with: "-")
        return packages.contains { PackageName.pattern($0, covers: canonical) }
    }
}

/// What a request wants to do, as the authorisation policy sees it.
public enum Action: Sendable, Equatable {
    case read
    /// Publishing, before the upload is read: any publishing right will do for now.
    case upload
    /// Publishing a version of this package; `isNew` when the package does not exist yet.
    case publish(package: String, isNew: Bool)
    case yank(package: String)
    case deprecate(package: String)
    case manageOwners(package: String)
    /// Answering an ownership invitation made to oneself.
    case answerInvitation(package: String)
    /// Creating, listing or revoking tokens of this user.
    case manageTokens(user: String)
    case manageUsers
    case readAudit
    /// Reading one's own account.
    case readSelf
    /// Managing an organisation's members (`owners` are its admins).
    case manageOrganisation(org: String)
    /// Giving up some of one's own access (leaving an organisation, unlinking a provider's
    /// account), here named by `what`.
    case giveUpAccess(what: String)
    /// Approving, rejecting or asking for changes to a submission of this package, published by
    /// `publisher` (reviewers never decide on their own submissions).
    case review(package: String, publisher: String)
    /// Reading a submission, its archive, checks and comments, or commenting on it: its
    /// publisher, the package's owners, and reviewers.
    case readSubmission(package: String, publisher: String)
    /// Withdrawing a submission: its publisher, an owner of the package, or an admin.
    case withdraw(package: String, publisher: String)
    /// Having one's own signing key certified.
    case certifyKey
    /// Revoking the certificates of a key of `user`'s.
    case revokeKey(user: String)
    /// Granting or taking back signing rights; `org` when an organisation's admins may grant
    /// the pattern (passed as owners), nil when only admins may.
    case grantSigning(org: String?)
    /// Taking and reporting build jobs (a build worker): the build right, an admin's alone, as
    /// workers decide what a submission becomes.
    case build
}

/// The one authorisation policy every endpoint goes through.
///
/// Reading published packages is open to everyone. Everything else needs a token whose scopes
/// allow the action (scopes never exceed the user's role), whose package patterns cover the
/// package, and, for package changes, a principal who owns the package or is an admin using
/// the admin scope (an admin's narrow token gets no more than an owner's would).
/// Ownership of an existing package on publish is checked again by the store, in the same
/// transaction as the insert.
public struct AuthorizationPolicy: Sendable {
    public init() {}

    public func authorize(_ action: Action, for principal: Principal?, owners: [String]? = nil) throws(RegistryError) {
        if case .read = action { return }
        guard let principal else { throw .unauthenticated }
        if let restriction = principal.restriction, action != .readSelf { throw .forbidden(restriction) }
        func need(_ scope: Principal.Scope) throws(RegistryError) {
            guard principal.scopes.contains(scope) else {
                if !principal.role.scopes.contains(scope) {
                    throw .forbidden("the \(principal.role.rawValue) role cannot do this (it needs the \(scope.rawValue) right)")
                }
                throw .forbidden("this token lacks the \(scope.rawValue) scope")
            }
        }
        func package(_ name: String) throws(RegistryError) {
            guard principal.mayTouch(name) else { throw .forbidden("this token is limited to packages \(principal.packages.joined(separator: ", "))") }
        }
        func owner(_ name: String) throws(RegistryError) {
            guard principal.actsAsAdmin || (owners ?? []).contains(principal.name) else {
                throw .forbidden("\(principal.name) is not an owner of \(name)")
            }
        }
        switch action {
        case .read, .readSelf:
            return
        case let .answerInvitation(name):
            try need(.owners)
            try package(name)
        case .upload:
            guard principal.scopes.contains(.publishNew) || principal.scopes.contains(.publishUpdate) else { try need(.publishUpdate); return }
        case let .publish(name, isNew):
            try need(isNew ? .publishNew : .publishUpdate)
            try package(name)
            if !isNew, owners != nil { try owner(name) }
        case let .yank(name), let .deprecate(name):
            try need(.yank)
            try package(name)
            try owner(name)
        case let .manageOwners(name):
            try need(.owners)
            try package(name)
            try owner(name)
        case let .giveUpAccess(what):
            // A browser session may; a token only with the owners scope, so that a leaked
            // read-only token cannot take its user out of anything.
            guard principal.viaSession || principal.scopes.contains(.owners) else {
                throw .forbidden("\(what) needs a signed-in session or a token with the owners scope")
            }
        case let .manageOrganisation(org):
            try need(.owners)
            // Members own every package of the organisation: a token limited to some packages
            // cannot choose them.
            guard principal.packages.isEmpty else { throw .forbidden("a token limited to packages cannot manage an organisation") }
            guard principal.actsAsAdmin || (owners ?? []).contains(principal.name) else {
                throw .forbidden("\(principal.name) is not an admin of the organisation \(org)")
            }
        case let .manageTokens(user):
            if user != principal.name { try need(.admin) }
        case .manageUsers, .readAudit:
            try need(.admin)
        case let .review(name, publisher):
            try need(.review)
            try package(name)
            guard principal.name != publisher else { throw .forbidden("\(principal.name) published this submission and cannot review it") }
        case let .readSubmission(name, publisher):
            let reviewer = principal.scopes.contains(.review) && principal.mayTouch(name)
            guard principal.name == publisher || principal.actsAsAdmin || reviewer || (owners ?? []).contains(principal.name) else {
                throw .forbidden("only the publisher, the owners of \(name) and reviewers see its submissions")
            }
        case .certifyKey:
            try need(.sign)
        case .build:
            try need(.build)
            guard principal.packages.isEmpty else { throw .forbidden("a token limited to packages cannot build submissions") }
        case let .revokeKey(user):
            if user != principal.name { try need(.admin) } else if !principal.actsAsAdmin { try need(.sign) }
        case let .grantSigning(org):
            guard principal.packages.isEmpty else { throw .forbidden("a token limited to packages cannot grant signing") }
            if principal.actsAsAdmin { return }
            guard let org else { throw .forbidden("only admins grant signing outside an organisation's namespace") }
            try need(.owners)
            guard (owners ?? []).contains(principal.name) else {
                throw .forbidden("\(principal.name) is not an admin of the organisation \(org)")
            }
        case let .withdraw(name, publisher):
            guard principal.name == publisher || principal.actsAsAdmin || (owners ?? []).contains(principal.name) else {
                throw .forbidden("only \(publisher), who submitted it, or an owner of \(name) can withdraw this submission")
            }
            if !principal.actsAsAdmin {
                guard principal.scopes.contains(.publishNew) || principal.scopes.contains(.publishUpdate) else { try need(.publishUpdate); return }
            }
            try package(name)
        }
    }
}
