import PackageFormat

/// Everything the registry refuses, each with a stable code. The server maps these to HTTP
/// statuses and `application/problem+json` in one place.
public enum RegistryError: Error, Sendable, Equatable {
    case invalidName(String, reason: String)
    case invalidVersion(String, reason: String)
    case invalidPlatform(String)
    case invalidDigest(String)
    case packageNotFound(String)
    case versionNotFound(package: String, version: String)
    case noPublishedVersion(package: String, platform: String?)
    case noBuildForPlatform(package: String, version: String, platform: String)
    case artifactMismatch(expected: String, requested: String)
    case blobNotFound(String)
    case versionExists(package: String, version: String)
    case invalidPackage(findings: [Finding])
    case archiveRefused(ArchiveError)
    case unauthenticated
    case forbidden(String)
    case invalidUserName(String)
    case userExists(String)
    case userNotFound(String)
    case invalidToken(String)
    case tokenNotFound(String)
    case ownerConflict(String)
    case invitationNotFound(String)
    /// Too many requests: try again after this many seconds.
    case rateLimited(retryAfter: Int, reason: String)
    /// Wrong user name, password or second factor (the reason is for the log, not the client).
    case signInFailed(String)
    /// The password was right; the account also needs a code from its authenticator.
    case secondFactorRequired
    case invalidPassword(String)
    case registrationClosed
    case signupInvitationInvalid
    case sessionNotFound(String)
    /// An OpenID Connect sign-in that cannot be accepted, with why.
    case externalSignInFailed(String)
    case invalidRequest(String)
    case organisationNotFound(String)
    case organisationConflict(String)
    case submissionNotFound(String)
    /// The submission's state does not allow this (approving a rejected one, ...).
    case submissionState(id: String, state: String, wanted: String)
    /// Approving needs these warnings acknowledged by check id.
    case acknowledgementRequired([String])
    /// This registry has no signing authority configured.
    case signingNotConfigured
    /// An upload's signature failed a link of the chain of trust (`link` is its code).
    case signatureRefused(link: String, reason: String)
    case signatureRequired
    case signingKeyNotFound(String)
    case signingKeyRevoked(String)
    /// The user has no grant covering these packages.
    case signingNotGranted([String])
    case signingGrantNotFound(Int)
    /// The version has no signature, or no attestation.
    case signatureNotFound(package: String, version: String)
    case attestationNotFound(package: String, version: String)

    public var code: String {
        switch self {
        case .invalidName: "invalid-name"
        case .invalidVersion: "invalid-version"
        case .invalidPlatform: "invalid-platform"
        case .invalidDigest: "invalid-digest"
        case .packageNotFound: "package-not-found"
        case .versionNotFound: "version-not-found"
        case .noPublishedVersion: "no-published-version"
        case .noBuildForPlatform: "no-build-for-platform"
        case .artifactMismatch: "artifact-mismatch"
        case .blobNotFound: "blob-not-found"
        case .versionExists: "version-exists"
        case .invalidPackage: "invalid-package"
        case let .archiveRefused(error): error.code
        case .unauthenticated: "unauthenticated"
        case .forbidden: "forbidden"
        case .invalidUserName: "invalid-user-name"
        case .userExists: "user-exists"
        case .userNotFound: "user-not-found"
        case .invalidToken: "invalid-token-request"
        case .tokenNotFound: "token-not-found"
        case .ownerConflict: "owner-conflict"
        case .invitationNotFound: "invitation-not-found"
        case .rateLimited: "rate-limited"
        case .signInFailed: "sign-in-failed"
        case .secondFactorRequired: "second-factor-required"
        case .invalidPassword: "invalid-password"
        case .registrationClosed: "registration-closed"
        case .signupInvitationInvalid: "signup-invitation-invalid"
        case .sessionNotFound: "session-not-found"
        case .externalSignInFailed: "external-sign-in-failed"
        case .invalidRequest: "invalid-request"
        case .organisationNotFound: "organisation-not-found"
        case .organisationConflict: "organisation-conflict"
        case .submissionNotFound: "submission-not-found"
        case .submissionState: "submission-state"
        case .acknowledgementRequired: "acknowledgement-required"
        case .signingNotConfigured: "signing-not-configured"
        case let .signatureRefused(link, _): "signature-\(link)"
        case .signatureRequired: "signature-required"
        case .signingKeyNotFound: "signing-key-not-found"
        case .signingKeyRevoked: "signing-key-revoked"
        case .signingNotGranted: "signing-not-granted"
        case .signingGrantNotFound: "signing-grant-not-found"
        case .signatureNotFound: "signature-not-found"
        case .attestationNotFound: "attestation-not-found"
        }
    }

    public var detail: String {
        switch self {
        case let .invalidName(name, reason): "\"\(name)\" is not a valid package name: \(reason)"
        case let .invalidVersion(version, reason): "\"\(version)\" is not a valid version: \(reason)"
        case let .invalidPlatform(platform): "\"\(platform)\" is not a platform (a distribution codename such as jammy, or Windows)"
        case let .invalidDigest(digest): "\"\(digest)\" is not a sha256 digest"
        case let .packageNotFound(name): "there is no package \(name)"
        case let .versionNotFound(name, version): "\(name) has no version \(version)"
        case let .noPublishedVersion(name, platform):
            "\(name) has no published version" + (platform.map { " for \($0)" } ?? "") + " that latest can resolve to"
        case let .noBuildForPlatform(name, version, platform): "\(name) \(version) has no build for \(platform)"
        case let .artifactMismatch(expected, requested): "the artifact of this version is \(expected), not \(requested)"
        case let .blobNotFound(digest): "no blob \(digest)"
        case let .versionExists(name, version): "\(name) \(version) is already published; versions are immutable, publish a new version"
        case let .invalidPackage(findings):
            "the package is invalid: " + findings.filter { $0.severity == .error }.map(\.message).joined(separator: "; ")
        case let .archiveRefused(error): "the archive was refused: \(error)"
        case .unauthenticated: "this needs a token: send Authorization: Bearer <token>"
        case let .forbidden(reason): reason
        case let .invalidUserName(name): "\"\(name)\" is not a user name (1 to 39 lower-case letters, digits, - and _, starting with a letter or digit)"
        case let .userExists(name): "there is already a user \(name)"
        case let .userNotFound(name): "there is no user \(name)"
        case let .invalidToken(reason): reason
        case let .tokenNotFound(id): "there is no token \(id)"
        case let .ownerConflict(reason): reason
        case let .invitationNotFound(name): "there is no invitation to own \(name)"
        case let .rateLimited(seconds, reason): "\(reason); try again in \(seconds) seconds"
        case .signInFailed: "wrong user name, password or code"
        case .secondFactorRequired: "this account also needs a code from its authenticator app (otp) or a recovery code"
        case let .invalidPassword(reason): reason
        case .registrationClosed: "this registry does not take registrations; ask an admin for an invitation"
        case .signupInvitationInvalid: "the invitation code is unknown, used or expired"
        case let .sessionNotFound(id): "there is no session \(id)"
        case let .externalSignInFailed(reason): "the sign-in was refused: \(reason)"
        case let .invalidRequest(reason): reason
        case let .organisationNotFound(name): "there is no organisation \(name)"
        case let .organisationConflict(reason): reason
        case let .submissionNotFound(id): "there is no submission \(id) (or it is not yours to see)"
        case let .submissionState(id, state, wanted): "submission \(id) is \(state): it cannot be \(wanted)"
        case let .acknowledgementRequired(checks):
            "approving needs these warnings acknowledged (acknowledge: [...]): " + checks.joined(separator: ", ")
        case .signingNotConfigured: "this registry has no signing authority configured ([trust] directory)"
        case let .signatureRefused(_, reason): "the signature was refused: \(reason)"
        case .signatureRequired: "this registry takes signed packages only: sign it (epr sign) and send the signature along"
        case let .signingKeyNotFound(id): "there is no signing key \(id)"
        case let .signingKeyRevoked(id): "the signing key \(id) is revoked; generate a new key"
        case let .signingNotGranted(packages): "no signing grant covers \(packages.joined(separator: ", ")): ask an admin (or your organisation's admin) for one"
        case let .signingGrantNotFound(id): "there is no signing grant \(id)"
        case let .signatureNotFound(name, version): "\(name) \(version) was published without a signature"
        case let .attestationNotFound(name, version): "\(name) \(version) has no attestation by this repository (it was not published through review)"
        }
    }
}
