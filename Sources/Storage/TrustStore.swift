import Foundation

/// A user's right, given by an admin or an organisation's admin, to have signing keys certified
/// for packages a name pattern covers.
public struct SigningGrant: Sendable, Equatable, Codable {
    public var id: Int
    public var user: String
    public var pattern: String
    public var grantedBy: String
    public var createdAt: Date

    public init(id: Int = 0, user: String, pattern: String, grantedBy: String, createdAt: Date) {
        self.id = id
        self.user = user
        self.pattern = pattern
        self.grantedBy = grantedBy
        self.createdAt = createdAt
    }
}

/// A certificate the repository issued for a contributor's key.
public struct SigningCertificateRecord: Sendable, Equatable, Codable {
    /// The certificate's serial number, lower-case hex.
    public var serial: String
    public var keyID: String
    public var user: String
    /// The key (PEM) and the chain issued for it (PEM, leaf first).
    public var publicKey: String
    public var chain: String
    public var packages: [String]
    public var notBefore: Date
    public var notAfter: Date
    public var createdAt: Date
    public var revokedAt: Date?
    public var revokeReason: String?

    public init(serial: String, keyID: String, user: String, publicKey: String, chain: String, packages: [String], notBefore: Date,
                notAfter: Date, createdAt: Date, revokedAt: Date? = nil, revokeReason: String? = nil) {
        self.serial = serial
        self.keyID = keyID
        self.user = user
        self.publicKey = publicKey
        self.chain = chain
        self.packages = packages
        self.notBefore = notBefore
        self.notAfter = notAfter
        self.createdAt = createdAt
        self.revokedAt = revokedAt
        self.revokeReason = revokeReason
    }
}

/// A revoked certificate (by serial number) and, when a key was revoked, its id.
public struct RevokedCertificate: Sendable, Equatable, Codable {
    public var serial: String
    public var keyID: String?
    public var revokedAt: Date
    public var reason: String?

    public init(serial: String, keyID: String?, revokedAt: Date, reason: String?) {
        self.serial = serial
        self.keyID = keyID
        self.revokedAt = revokedAt
        self.reason = reason
    }
}

/// A published version the repository is still to attest.
public struct PendingAttestation: Sendable, Equatable {
    public var canonical: String
    public var version: String
    public var submission: String
    public init(canonical: String, version: String, submission: String) {
        self.canonical = canonical
        self.version = version
        self.submission = submission
    }
}

public enum TrustStoreError: Error, Equatable, Sendable {
    case userNotFound(String)
    case keyNotFound(String)
}

/// Signing grants, the certificates issued for contributors' keys, revocations and the signed
/// revocation list, and the attestations of published versions.
public protocol TrustStore: Sendable {
    /// Adds a grant (the existing one when the user has it already).
    func addGrant(_ grant: SigningGrant) async throws -> SigningGrant
    /// Every grant, or one user's.
    func grants(user: String?) async throws -> [SigningGrant]
    /// Removes a grant; returns it, or nil when there was none.
    func removeGrant(id: Int) async throws -> SigningGrant?

    func insertCertificate(_ certificate: SigningCertificateRecord) async throws
    /// Issued certificates, newest first: every one, a user's, or a key's.
    func certificates(user: String?, keyID: String?) async throws -> [SigningCertificateRecord]
    /// Revokes every certificate issued for a key (and the key, for certificates issued
    /// elsewhere), in one transaction; returns the certificates revoked now.
    func revokeKey(_ keyID: String, at: Date, reason: String?) async throws -> [SigningCertificateRecord]
    /// Records revocations made elsewhere (the authority's own list); known ones are kept.
    func addRevocations(_ entries: [RevokedCertificate]) async throws
    func revocations() async throws -> [RevokedCertificate]
    /// The newest signed revocation list and its sequence number.
    func revocationList() async throws -> (sequence: Int, document: Data)?
    /// Stores a signed list if its sequence is above the stored one's; returns whether it did.
    func saveRevocationList(sequence: Int, document: Data) async throws -> Bool

    /// Published versions waiting for the repository's attestation, oldest first.
    func pendingAttestations(limit: Int) async throws -> [PendingAttestation]
    /// Stores a version's attestation, made with the key `keyID`, and takes it off the list.
    func setAttestation(canonical: String, version: String, document: Data, keyID: String) async throws
    /// Puts back on the list every attestation made with another key than `keyID` (the
    /// repository's key changed: what it attested before is attested again with the new one, so
    /// that attestations never outlive their certificate); returns how many.
    func requestAttestations(unlessSignedBy keyID: String) async throws -> Int
}
