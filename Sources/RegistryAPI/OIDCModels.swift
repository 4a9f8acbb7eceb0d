import Foundation

/// `GET /api/v1/oidc/providers`.
public struct ProviderBody: Codable, Sendable, Equatable {
    public var name: String
    public var label: String
    /// Where a browser starts signing in.
    public var start: String
    public init(name: String, label: String, start: String) {
        self.name = name
        self.label = label
        self.start = start
    }
}

/// `POST /api/v1/cli-logins`: a sign-in the command line waits for while the user finishes it
/// in a browser on the same machine, which is sent back to the command line's loopback port
/// with a one-time code (RFC 8252).
public struct CommandLineSignInRequest: Codable, Sendable, Equatable {
    public var provider: String
    /// The port the command line listens on at 127.0.0.1.
    public var redirect_port: Int
    public var token_name: String?
    public var expires_in_days: Int?
    public init(provider: String, redirect_port: Int, token_name: String? = nil, expires_in_days: Int? = nil) {
        self.provider = provider
        self.redirect_port = redirect_port
        self.token_name = token_name
        self.expires_in_days = expires_in_days
    }
}

public struct CommandLineSignInBody: Codable, Sendable, Equatable {
    public var id: String
    /// Only the command line that asked knows it: it collects the token with it.
    public var secret: String
    /// The address to open in a browser.
    public var url: String
    public var expires_in: Int
    public init(id: String, secret: String, url: String, expires_in: Int) {
        self.id = id
        self.secret = secret
        self.url = url
        self.expires_in = expires_in
    }
}

/// `POST /api/v1/cli-logins/{id}/token`: the secret of the request and the code the browser
/// brought to the loopback port.
public struct CommandLineCollectRequest: Codable, Sendable, Equatable {
    public var secret: String
    public var code: String
    public init(secret: String, code: String) {
        self.secret = secret
        self.code = code
    }
}

/// `GET /api/v1/me/identities`.
public struct IdentityBody: Codable, Sendable, Equatable {
    public var provider: String
    public var issuer: String
    public var subject: String
    public var email: String?
    public var linked_at: Date
    public init(provider: String, issuer: String, subject: String, email: String?, linked_at: Date) {
        self.provider = provider
        self.issuer = issuer
        self.subject = subject
        self.email = email
        self.linked_at = linked_at
    }
}

/// `GET /api/v1/orgs/{org}`; `POST /api/v1/orgs` takes `name`, `description` and `admin`.
public struct OrganisationBody: Codable, Sendable, Equatable {
    public var name: String
    public var description: String
    public var created_by: String?
    public var created_at: Date?
    public var members: [MemberBody]?
    public var packages: [String]?
    /// On creation: the organisation's first admin.
    public var admin: String?

    public init(name: String, description: String, created_by: String? = nil, created_at: Date? = nil, members: [MemberBody]? = nil,
                packages: [String]? = nil, admin: String? = nil) {
        self.name = name
        self.description = description
        self.created_by = created_by
        self.created_at = created_at
        self.members = members
        self.packages = packages
        self.admin = admin
    }
}

public struct MemberBody: Codable, Sendable, Equatable {
    public var user: String
    public var role: String
    public var added_at: Date?
    public init(user: String, role: String, added_at: Date? = nil) {
        self.user = user
        self.role = role
        self.added_at = added_at
    }
}

/// `PUT /api/v1/orgs/{org}/members/{user}` (`role`), `PUT /api/v1/packages/{name}/org` (`org`),
/// `POST /api/v1/packages/{name}/transfer` (`user`).
public struct OrganisationChangeRequest: Codable, Sendable, Equatable {
    public var role: String?
    public var org: String?
    public var user: String?
    public init(role: String? = nil, org: String? = nil, user: String? = nil) {
        self.role = role
        self.org = org
        self.user = user
    }
}
