import Foundation

/// Account bodies of the REST API v1: users, tokens, owners, the audit log.
public struct UserBody: Codable, Sendable, Equatable {
    public var name: String
    public var role: String
    public var created_at: Date
    public var disabled: Bool

    public init(name: String, role: String, created_at: Date, disabled: Bool) {
        self.name = name
        self.role = role
        self.created_at = created_at
        self.disabled = disabled
    }
}

/// `POST /api/v1/users`, `PATCH /api/v1/users/{user}`.
public struct UserRequest: Codable, Sendable, Equatable {
    public var name: String?
    public var role: String?
    public var disabled: Bool?

    public init(name: String? = nil, role: String? = nil, disabled: Bool? = nil) {
        self.name = name
        self.role = role
        self.disabled = disabled
    }
}

public struct TokenBody: Codable, Sendable, Equatable {
    public var id: String
    public var user: String
    public var name: String
    public var scopes: [String]
    public var packages: [String]
    public var created_at: Date
    public var expires_at: Date?
    public var last_used_at: Date?
    public var revoked_at: Date?
    /// Only in the answer that creates the token: it is never shown again.
    public var token: String?

    public init(id: String, user: String, name: String, scopes: [String], packages: [String], created_at: Date, expires_at: Date?,
                last_used_at: Date?, revoked_at: Date?, token: String? = nil) {
        self.id = id
        self.user = user
        self.name = name
        self.scopes = scopes
        self.packages = packages
        self.created_at = created_at
        self.expires_at = expires_at
        self.last_used_at = last_used_at
        self.revoked_at = revoked_at
        self.token = token
    }
}

/// `POST /api/v1/tokens`.
public struct TokenRequest: Codable, Sendable, Equatable {
    public var name: String
    public var scopes: [String]
    public var packages: [String]?
    /// Days until the token expires; none for a token that lasts until revoked.
    public var expires_in_days: Int?
    /// An admin may issue a token for another user.
    public var user: String?

    public init(name: String, scopes: [String], packages: [String]? = nil, expires_in_days: Int? = nil, user: String? = nil) {
        self.name = name
        self.scopes = scopes
        self.packages = packages
        self.expires_in_days = expires_in_days
        self.user = user
    }
}

/// `GET /api/v1/me`.
public struct AccountBody: Codable, Sendable, Equatable {
    public var user: UserBody
    public var token: TokenBody?

    public init(user: UserBody, token: TokenBody?) {
        self.user = user
        self.token = token
    }
}

public struct InvitationBody: Codable, Sendable, Equatable {
    public var package: String
    public var user: String
    public var invited_by: String
    public var created_at: Date
    /// A transfer: accepting makes the invited user the only owner.
    public var transfer: Bool?

    public init(package: String, user: String, invited_by: String, created_at: Date, transfer: Bool? = nil) {
        self.package = package
        self.user = user
        self.invited_by = invited_by
        self.created_at = created_at
        self.transfer = transfer
    }
}

public struct OwnersBody: Codable, Sendable, Equatable {
    public var owners: [String]
    public var invited: [InvitationBody]
    /// The organisation the package belongs to, whose members own it too.
    public var organisation: String?

    public init(owners: [String], invited: [InvitationBody], organisation: String? = nil) {
        self.owners = owners
        self.invited = invited
        self.organisation = organisation
    }
}

public struct AuditBody: Codable, Sendable, Equatable {
    public var id: Int
    public var at: Date
    public var actor: String?
    public var token_id: String?
    public var address: String?
    public var action: String
    public var target: String?
    public var outcome: String
    public var detail: String?

    public init(id: Int, at: Date, actor: String?, token_id: String?, address: String?, action: String, target: String?, outcome: String,
                detail: String?) {
        self.id = id
        self.at = at
        self.actor = actor
        self.token_id = token_id
        self.address = address
        self.action = action
        self.target = target
        self.outcome = outcome
        self.detail = detail
    }
}
