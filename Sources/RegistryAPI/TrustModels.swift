import Foundation

/// What the repository's signing authority is, for clients and nodes to fetch (a node in
/// trusted mode is given its root by its operator, not by this answer).
public struct TrustInfo: Codable, Sendable, Equatable {
    public var configured: Bool
    public var repository: String?
    /// PEM.
    public var root_certificates: String?
    public var intermediate_certificate: String?
    /// The attestation key's certificate and the intermediate's (PEM).
    public var attestation_chain: String?
    public var require_signatures: Bool
    /// Days a contributor's certificate is valid.
    public var certificate_days: Int?

    public init(configured: Bool, repository: String?, root_certificates: String?, intermediate_certificate: String?,
                attestation_chain: String?, require_signatures: Bool, certificate_days: Int?) {
        self.configured = configured
        self.repository = repository
        self.root_certificates = root_certificates
        self.intermediate_certificate = intermediate_certificate
        self.attestation_chain = attestation_chain
        self.require_signatures = require_signatures
        self.certificate_days = certificate_days
    }
}

public struct SigningGrantRequest: Codable, Sendable {
    public var user: String
    /// Package names or patterns (`acme-*`).
    public var packages: [String]
    public init(user: String, packages: [String]) {
        self.user = user
        self.packages = packages
    }
}

public struct SigningGrantBody: Codable, Sendable, Equatable {
    public var id: Int
    public var user: String
    public var pattern: String
    public var granted_by: String
    public var created_at: Date
    public init(id: Int, user: String, pattern: String, granted_by: String, created_at: Date) {
        self.id = id
        self.user = user
        self.pattern = pattern
        self.granted_by = granted_by
        self.created_at = created_at
    }
}

/// A request to certify one's key: the PEM public key, a proof that one holds its private half
/// (the base64 DER ECDSA signature of `epr-signing-key:<user>:<key id>`), and the packages the
/// certificate is to allow (all of one's grants when absent).
public struct SigningKeyRequest: Codable, Sendable {
    public var public_key: String
    public var proof: String
    public var packages: [String]?
    public init(public_key: String, proof: String, packages: [String]?) {
        self.public_key = public_key
        self.proof = proof
        self.packages = packages
    }

    /// The message a proof signs.
    public static func proofMessage(user: String, keyID: String) -> String { "epr-signing-key:\(user):\(keyID)" }
}

/// A certificate the repository issued for a contributor's key.
public struct SigningCertificateBody: Codable, Sendable, Equatable {
    public var serial: String
    public var key_id: String
    public var user: String
    public var packages: [String]
    public var not_before: Date
    public var not_after: Date
    public var created_at: Date
    /// active, expired or revoked.
    public var status: String
    public var revoked_at: Date?
    public var revoke_reason: String?
    /// The certificate and the intermediate's (PEM), to carry in signatures.
    public var chain: String

    public init(serial: String, key_id: String, user: String, packages: [String], not_before: Date, not_after: Date, created_at: Date,
                status: String, revoked_at: Date?, revoke_reason: String?, chain: String) {
        self.serial = serial
        self.key_id = key_id
        self.user = user
        self.packages = packages
        self.not_before = not_before
        self.not_after = not_after
        self.created_at = created_at
        self.status = status
        self.revoked_at = revoked_at
        self.revoke_reason = revoke_reason
        self.chain = chain
    }
}

public struct KeyRevocationRequest: Codable, Sendable {
    public var reason: String?
    public init(reason: String?) { self.reason = reason }
}
