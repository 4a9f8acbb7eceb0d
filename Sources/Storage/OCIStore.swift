import Foundation
import PackageFormat

/// A manifest held for the OCI distribution API: stored byte for byte as it was pushed or made.
public struct OCIManifestRecord: Sendable, Equatable {
    public enum Origin: String, Sendable, Codable {
        /// Made by the repository from a published version.
        case generated
        /// Pushed by a client.
        case pushed
    }

    public var repository: String
    public var digest: SHA256Digest
    public var mediaType: String
    /// The artifact type referrers report: the manifest's `artifactType`, else its config's media type.
    public var artifactType: String?
    public var subject: SHA256Digest?
    public var content: Data
    /// Blobs (config and layers) and manifests (an index's entries) it refers to.
    public var blobs: [SHA256Digest]
    public var children: [SHA256Digest]
    /// Annotations, as referrers list them.
    public var annotations: [String: String]
    public var origin: Origin
    /// Whether anyone may pull it; a pushed package stays private to its pusher and reviewers.
    public var isPublic: Bool
    public var pusher: String?
    /// The submission a pushed package became.
    public var submission: String?
    public var createdAt: Date

    public init(repository: String, digest: SHA256Digest, mediaType: String, artifactType: String?, subject: SHA256Digest?, content: Data,
                blobs: [SHA256Digest], children: [SHA256Digest], annotations: [String: String], origin: Origin, isPublic: Bool,
                pusher: String?, submission: String?, createdAt: Date) {
        self.repository = repository
        self.digest = digest
        self.mediaType = mediaType
        self.artifactType = artifactType
        self.subject = subject
        self.content = content
        self.blobs = blobs
        self.children = children
        self.annotations = annotations
        self.origin = origin
        self.isPublic = isPublic
        self.pusher = pusher
        self.submission = submission
        self.createdAt = createdAt
    }
}

/// A blob as one repository holds it.
public struct OCIBlobLink: Sendable, Equatable {
    public var repository: String
    public var digest: SHA256Digest
    public var size: Int64
    /// Whether anyone may pull it (it belongs to a public manifest).
    public var isPublic: Bool
    public var pusher: String?

    public init(repository: String, digest: SHA256Digest, size: Int64, isPublic: Bool, pusher: String?) {
        self.repository = repository
        self.digest = digest
        self.size = size
        self.isPublic = isPublic
        self.pusher = pusher
    }
}

/// What the repository made for one published version: its blobs, manifests and tags, stored at once.
public struct OCIPublication: Sendable {
    public var canonical: String
    public var version: String
    public var blobs: [(digest: SHA256Digest, size: Int64)]
    public var manifests: [OCIManifestRecord]
    public var tags: [(tag: String, digest: SHA256Digest)]

    public init(canonical: String, version: String, blobs: [(digest: SHA256Digest, size: Int64)], manifests: [OCIManifestRecord],
                tags: [(tag: String, digest: SHA256Digest)]) {
        self.canonical = canonical
        self.version = version
        self.blobs = blobs
        self.manifests = manifests
        self.tags = tags
    }
}

public enum OCIStoreError: Error, Equatable, Sendable {
    /// A tag belongs to the repository's own artifacts and is not moved by pushes.
    case tagProtected(String)
    /// A manifest refers to blobs or manifests the repository does not hold.
    case missing([SHA256Digest])
    /// A manifest of the repository uses the blob.
    case inUse(SHA256Digest)
    /// The pusher's pushed bytes (``OCIStore/pushedBytes(pusher:)``), with this link, would pass
    /// its quota.
    case quotaExceeded(used: Int64, quota: Int64)
}

/// The OCI distribution API's records: blobs linked into repositories, manifests, tags and
/// referrers. Blob contents live in the shared content-addressed ``BlobStore``.
public protocol OCIStore: Sendable {
    /// Links a stored blob into a repository (pushed, so private until a public manifest uses it).
    /// With a quota, a new link that would take its pusher's pushed bytes past it is refused
    /// (``OCIStoreError/quotaExceeded(used:quota:)``), checked in the same transaction.
    func linkBlob(_ link: OCIBlobLink, at: Date, quota: Int64?) async throws
    func blobLink(repository: String, digest: SHA256Digest) async throws -> OCIBlobLink?
    /// What `pusher`'s push quota counts, all repositories together: the blobs it linked and
    /// the manifests it pushed, but for what went through a submission (and so through the
    /// publish rate limit and review).
    func pushedBytes(pusher: String) async throws -> Int64
    /// Unlinks pushed blobs that are still private, were linked before `before` and no
    /// manifest of their repository uses (pushes never finished, manifests deleted); returns how
    /// many. Their content goes with the next start's sweep, when nothing else holds it.
    func unlinkAbandonedBlobs(before: Date, limit: Int) async throws -> Int
    /// Unlinks a blob; false when it is not linked. Refused (``OCIStoreError/inUse(_:)``) while a
    /// manifest of the repository uses it, checked in the same transaction.
    func unlinkBlob(repository: String, digest: SHA256Digest) async throws -> Bool

    /// Stores a pushed manifest (checking that what it refers to is linked) and points `tag` at
    /// it; a public manifest makes its blobs public.
    func putManifest(_ manifest: OCIManifestRecord, tag: String?) async throws
    func manifest(repository: String, digest: SHA256Digest) async throws -> OCIManifestRecord?
    func tag(repository: String, tag: String) async throws -> SHA256Digest?
    /// Tags of public manifests in lexical order, after `last`.
    func tags(repository: String, after last: String?, limit: Int) async throws -> [String]
    /// Manifests whose subject is `subject`.
    func referrers(repository: String, subject: SHA256Digest) async throws -> [OCIManifestRecord]
    /// Deletes a manifest and the tags pointing at it; false when it does not exist.
    func deleteManifest(repository: String, digest: SHA256Digest) async throws -> Bool
    /// Removes one tag; false when it does not exist.
    func deleteTag(repository: String, tag: String) async throws -> Bool

    /// Published versions whose OCI artifacts are not made yet, oldest first; a version whose
    /// last attempt failed waits before it is listed again (a minute, doubling up to a day).
    func versionsWithoutArtifacts(limit: Int) async throws -> [(canonical: String, version: String)]
    /// Records a failed attempt at a version's artifacts.
    func recordPublicationFailure(canonical: String, version: String, error: String, at: Date) async throws
    /// Stores a version's artifacts at once; tags it names are moved to them.
    func recordPublication(_ publication: OCIPublication, at: Date) async throws
}

extension OCIStore {
    /// Links a stored blob into a repository, with no quota.
    public func linkBlob(_ link: OCIBlobLink, at: Date) async throws { try await linkBlob(link, at: at, quota: nil) }
}
