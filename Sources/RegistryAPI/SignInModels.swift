import Foundation

/// Sign-in bodies of the REST API v1: sessions, passwords, the second factor, registration.

/// `POST /api/v1/session` and `POST /api/v1/session/token`.
public struct SignInRequest: Codable, Sendable, Equatable {
    public var name: String
    public var password: String
    /// The current code of the account's authenticator app, when it has one.
    public var otp: String?
    /// A recovery code instead of `otp`.
    public var recovery_code: String?
    /// For `session/token`: what the issued token is called, and when it expires.
    public var token_name: String?
    public var expires_in_days: Int?

    public init(name: String, password: String, otp: String? = nil, recovery_code: String? = nil, token_name: String? = nil,
                expires_in_days: Int? = nil) {
        self.name = name
        self.password = password
        self.otp = otp
        self.recovery_code = recovery_code
        self.token_name = token_name
        self.expires_in_days = expires_in_days
    }
}

public struct SessionBody: Codable, Sendable, Equatable {
    public var id: String
    public var user: String
    public var method: String
    public var created_at: Date
    public var expires_at: Date
    public var last_seen_at: Date
    public var address: String?
    /// Only for the session's own holder: the value unsafe requests echo in `X-CSRF-Token`.
    public var csrf_token: String?
    /// Why the session may only look after its own account (a second factor to enrol).
    public var restriction: String?

    public init(id: String, user: String, method: String, created_at: Date, expires_at: Date, last_seen_at: Date, address: String?,
                csrf_token: String?, restriction: String?) {
        self.id = id
        self.user = user
        self.method = method
        self.created_at = created_at
        self.expires_at = expires_at
        self.last_seen_at = last_seen_at
        self.address = address
        self.csrf_token = csrf_token
        self.restriction = restriction
    }
}

/// `PUT /api/v1/me/password`.
public struct PasswordChangeRequest: Codable, Sendable, Equatable {
    public var current: String
    public var new: String
    public init(current: String, new: String) {
        self.current = current
        self.new = new
    }
}

/// `POST /api/v1/me/totp` (`password`), `POST /api/v1/me/totp/confirm` (`code`),
/// `POST /api/v1/me/totp/remove` (both).
public struct SecondFactorRequest: Codable, Sendable, Equatable {
    public var password: String?
    public var code: String?
    public init(password: String? = nil, code: String? = nil) {
        self.password = password
        self.code = code
    }
}

public struct SecondFactorBody: Codable, Sendable, Equatable {
    public var enabled: Bool
    /// While enrolling: the Base32 secret and the `otpauth://` address, shown once.
    public var secret: String?
    public var uri: String?
    /// On confirmation: ten single-use recovery codes, shown once.
    public var recovery_codes: [String]?
    public var recovery_codes_left: Int?

    public init(enabled: Bool, secret: String? = nil, uri: String? = nil, recovery_codes: [String]? = nil, recovery_codes_left: Int? = nil) {
        self.enabled = enabled
        self.secret = secret
        self.uri = uri
        self.recovery_codes = recovery_codes
        self.recovery_codes_left = recovery_codes_left
    }
}

/// `POST /api/v1/registrations`.
public struct RegistrationRequest: Codable, Sendable, Equatable {
    public var name: String
    public var password: String
    public var invitation: String?
    public init(name: String, password: String, invitation: String? = nil) {
        self.name = name
        self.password = password
        self.invitation = invitation
    }
}

/// `POST /api/v1/signup-invitations`.
public struct SignupInvitationRequest: Codable, Sendable, Equatable {
    public var role: String?
    public var expires_in_days: Int?
    public init(role: String? = nil, expires_in_days: Int? = nil) {
        self.role = role
        self.expires_in_days = expires_in_days
    }
}

public struct SignupInvitationBody: Codable, Sendable, Equatable {
    public var id: String
    public var role: String
    public var created_by: String
    public var created_at: Date
    public var expires_at: Date
    public var used_by: String?
    public var used_at: Date?
    /// The code to register with, shown only on creation.
    public var code: String?

    public init(id: String, role: String, created_by: String, created_at: Date, expires_at: Date, used_by: String?, used_at: Date?, code: String?) {
        self.id = id
        self.role = role
        self.created_by = created_by
        self.created_at = created_at
        self.expires_at = expires_at
        self.used_by = used_by
        self.used_at = used_at
        self.code = code
    }
}

/// `POST /api/v1/users/{user}/password-reset`.
public struct PasswordResetRequest: Codable, Sendable, Equatable {
    public var remove_second_factor: Bool?
    public init(remove_second_factor: Bool? = nil) { self.remove_second_factor = remove_second_factor }
}

public struct PasswordResetBody: Codable, Sendable, Equatable {
    public var user: String
    /// The new password, shown only now: hand it to the user, who should change it.
    public var password: String
    public init(user: String, password: String) {
        self.user = user
        self.password = password
    }
}
