import Foundation
import PackageFormat

/// A package as the metadata store keeps it.
public struct PackageRecord: Sendable, Equatable, Codable {
    public var name: String
    /// The canonical form used for look-ups (see ``PackageName/canonical``).
    public var canonical: String
    public var description: String
    public var createdAt: Date
    public var updatedAt: Date

    public init(name: String, canonical: String, description: String, createdAt: Date, updatedAt: Date) {
        self.name = name
        self.canonical = canonical
        self.description = description
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

/// One published version of a package.
public struct VersionRecord: Sendable, Equatable, Codable {
    public var package: String
    public var version: String
    public var artifact: String
    public var platforms: [String]
    public var digest: SHA256Digest
    public var size: Int64
    /// The manifest, as JSON.
    public var manifest: Data
    /// The inspection report, as JSON.
    public var report: Data
    public var publisher: String
    public var publishedAt: Date
    public var yanked: Bool
    public var yankReason: String?
    public var deprecation: String?
    /// The contributor's signature, as checked when it was uploaded.
    public var signature: SignatureRecord?
    /// The repository's attestation (a DSSE envelope), once it published the version after
    /// checks and review.
    public var attestation: Data?

    public init(package: String, version: String, artifact: String, platforms: [String], digest: SHA256Digest, size: Int64,
                manifest: Data, report: Data, publisher: String, publishedAt: Date, yanked: Bool = false,
                yankReason: String? = nil, deprecation: String? = nil, signature: SignatureRecord? = nil, attestation: Data? = nil) {
        self.signature = signature
        self.attestation = attestation
        self.package = package
        self.version = version
        self.artifact = artifact
        self.platforms = platforms
        self.digest = digest
        self.size = size
        self.manifest = manifest
        self.report = report
        self.publisher = publisher
        self.publishedAt = publishedAt
        self.yanked = yanked
        self.yankReason = yankReason
        self.deprecation = deprecation
    }

    public var semanticVersion: SemanticVersion? { try? SemanticVersion(version) }
}

/// A package signature the registry checked on upload: the envelope as sent, who signed it
/// (the name in their certificate) with which key, and when it was checked.
public struct SignatureRecord: Sendable, Equatable, Codable {
    public var envelope: Data
    public var signer: String
    public var keyID: String
    public var checkedAt: Date

    public init(envelope: Data, signer: String, keyID: String, checkedAt: Date) {
        self.envelope = envelope
        self.signer = signer
        self.keyID = keyID
        self.checkedAt = checkedAt
    }
}

/// A page of results and the total they come from.
public struct Page<Item: Sendable>: Sendable {
    public var items: [Item]
    public var total: Int
    public init(items: [Item], total: Int) {
        self.items = items
        self.total = total
    }
}

/// What the metadata store refuses.
public enum MetadataStoreError: Error, Equatable, Sendable {
    /// The version exists already (versions are immutable).
    case versionExists(package: String, version: String)
    case notFound
}

/// Where package and version metadata live: SQLite on one machine, PostgreSQL when scaled out.
///
/// Every implementation passes the same contract suite (Tests/StorageTests).
public protocol MetadataStore: Sendable {
    /// Creates tables and applies migrations; safe to call on every start.
    func migrate() async throws

    /// Records a new version as published at once, without checks or review (for imports and
    /// tests; uploads go through ``SubmissionStore/insertSubmission``), creating its package on
    /// first publish, atomically. `commitBlob`
    /// runs inside the same transaction, after the rows are written and just before they become
    /// visible, so a blob is never kept for a refused version and never missing for a visible one.
    /// With `.owners`, a new version of an existing package is refused
    /// (``AccountStoreError/notOwner(user:package:)``) unless its publisher owns the package; the
    /// publisher of a new package becomes its first owner, in the same transaction.
    func insertVersion(_ version: VersionRecord, packageName: String, canonical: String, description: String,
                       ownership: PublishOwnership, commitBlob: @Sendable () async throws -> Void) async throws

    func package(canonical: String) async throws -> PackageRecord?
    /// Every version of a package, in no particular order.
    func versions(canonical: String) async throws -> [VersionRecord]
    func version(canonical: String, version: String) async throws -> VersionRecord?
    /// Packages whose name, description or keywords contain `query` (all when empty), by name.
    func searchPackages(query: String, offset: Int, limit: Int) async throws -> Page<PackageRecord>

    func setYanked(canonical: String, version: String, yanked: Bool, reason: String?) async throws
    func setDeprecation(canonical: String, version: String, message: String?) async throws

    /// Whether any published version refers to this blob (a submission's archive is not
    /// served to everyone).
    func isReferenced(_ digest: SHA256Digest) async throws -> Bool
    /// Every blob digest that must be kept: those of versions, and of submissions still open
    /// or sent back for changes.
    func referencedDigests() async throws -> Set<SHA256Digest>

    /// Whether the store answers (for readiness checks).
    func ping() async throws
    func close() async throws
}
