import Foundation
import Logging
import PackageFormat
import Storage
import TestSupport
import Testing

/// The contract every OCI store keeps: a manifest only over what its repository holds, tags of
/// published versions that pushes never move, publicity that follows public manifests, and
/// published versions whose artifacts are still to be made.
@Suite struct OCIStoreContractTests {
    typealias Kind = MetadataStoreContractTests.Kind
    typealias Store = any MetadataStore & OCIStore

    static func makeStore(_ kind: Kind) async throws -> (Store, @Sendable () async -> Void) {
        switch kind {
        case .sqlite:
            let directory = try Fixtures.temporaryDirectory()
            let store = try await SQLiteMetadataStore.open(path: directory.appendingPathComponent("epr.sqlite").path, logger: Logger(label: "test"))
            try await store.migrate()
            return (store, {
                try? await store.close()
                try? FileManager.default.removeItem(at: directory)
            })
        }
    }

    static func digest(_ text: String) -> SHA256Digest { SHA256Digest(of: Array(text.utf8)) }

    static func manifest(_ name: String, repository: String = "xdp-filter", blobs: [SHA256Digest], children: [SHA256Digest] = [],
                         subject: SHA256Digest? = nil, isPublic: Bool = false, origin: OCIManifestRecord.Origin = .pushed) -> OCIManifestRecord {
        OCIManifestRecord(repository: repository, digest: digest(name), mediaType: "application/vnd.oci.image.manifest.v1+json",
                          artifactType: "application/x-test", subject: subject, content: Data(name.utf8), blobs: blobs, children: children,
                          annotations: ["n": name], origin: origin, isPublic: isPublic, pusher: "alice", submission: nil, createdAt: Date())
    }

    /// What a user pushed counts against its quota (blobs, public or not, and manifests), a link
    /// past the quota is refused, and private blobs no manifest uses are unlinked once old
    /// enough; used, public or recent ones stay.
    @Test(arguments: Kind.allCases)
    func quotasCountPrivateBlobsAndAbandonedOnesAreUnlinked(kind: Kind) async throws {
        let (store, cleanup) = try await Self.makeStore(kind)
        defer { Task { await cleanup() } }
        let old = Date(timeIntervalSince1970: 1_000_000), recent = Date(timeIntervalSince1970: 2_000_000)
        let abandoned = Self.digest("abandoned"), used = Self.digest("used"), fresh = Self.digest("fresh"), shared = Self.digest("shared")
        for (blob, at, isPublic) in [(abandoned, old, false), (used, old, false), (fresh, recent, false), (shared, old, true)] {
            try await store.linkBlob(OCIBlobLink(repository: "xdp-filter", digest: blob, size: 100, isPublic: isPublic, pusher: "alice"), at: at)
        }
        try await store.linkBlob(OCIBlobLink(repository: "other", digest: abandoned, size: 100, isPublic: false, pusher: "bob"), at: recent)
        try await store.putManifest(Self.manifest("m", blobs: [used]), tag: nil)
        // Four blobs of 100 bytes and the one-byte manifest "m".
        #expect(try await store.pushedBytes(pusher: "alice") == 401)
        #expect(try await store.pushedBytes(pusher: "bob") == 100)
        await #expect(throws: OCIStoreError.quotaExceeded(used: 401, quota: 450)) {
            try await store.linkBlob(OCIBlobLink(repository: "xdp-filter", digest: Self.digest("more"), size: 100, isPublic: false, pusher: "alice"),
                                     at: recent, quota: 450)
        }
        try await store.linkBlob(OCIBlobLink(repository: "xdp-filter", digest: used, size: 100, isPublic: false, pusher: "alice"), at: recent, quota: 0)

        #expect(try await store.unlinkAbandonedBlobs(before: recent, limit: 10) == 1)
        #expect(try await store.blobLink(repository: "xdp-filter", digest: abandoned) == nil)
        for blob in [used, fresh, shared] { #expect(try await store.blobLink(repository: "xdp-filter", digest: blob) != nil) }
        #expect(try await store.blobLink(repository: "other", digest: abandoned) != nil, "bob's own recent link stays")
        #expect(try await store.pushedBytes(pusher: "alice") == 301)
        #expect(try await store.blobLink(repository: "xdp-filter", digest: Self.digest("more")) == nil)
        #expect(try await store.unlinkAbandonedBlobs(before: recent, limit: 10) == 0)
    }

    @Test(arguments: Kind.allCases)
    func manifestsNeedTheirBlobsAndKeepTheirBytes(kind: Kind) async throws {
        let (store, cleanup) = try await Self.makeStore(kind)
        defer { Task { await cleanup() } }
        let layer = Self.digest("layer"), config = Self.digest("config")
        let record = Self.manifest("m1", blobs: [config, layer])
        await #expect(throws: OCIStoreError.missing([config, layer])) { try await store.putManifest(record, tag: "a") }
        for blob in [layer, config] {
            try await store.linkBlob(OCIBlobLink(repository: "xdp-filter", digest: blob, size: 5, isPublic: false, pusher: "alice"), at: Date())
        }
        // Linked in another repository only: still missing here.
        await #expect(throws: OCIStoreError.self) { try await store.putManifest(Self.manifest("m0", repository: "other", blobs: [layer]), tag: nil) }
        try await store.putManifest(record, tag: "a")
        let read = try #require(try await store.manifest(repository: "xdp-filter", digest: record.digest))
        #expect(read.content == record.content)
        #expect(Set(read.blobs) == [config, layer])
        #expect(read.annotations == ["n": "m1"])
        #expect(!read.isPublic)
        #expect(try await store.tag(repository: "xdp-filter", tag: "a") == record.digest)
        // Private manifests' tags are not listed.
        #expect(try await store.tags(repository: "xdp-filter", after: nil, limit: 10).isEmpty)
        await #expect(throws: OCIStoreError.inUse(layer)) { try await store.unlinkBlob(repository: "xdp-filter", digest: layer) }
        #expect(try await store.deleteManifest(repository: "xdp-filter", digest: record.digest))
        #expect(try await store.tag(repository: "xdp-filter", tag: "a") == nil)
        #expect(try await store.unlinkBlob(repository: "xdp-filter", digest: layer))
        #expect(try await store.blobLink(repository: "xdp-filter", digest: layer) == nil)
    }

    @Test(arguments: Kind.allCases)
    func publicationsProtectTheirTagsAndMakeReferrersPublic(kind: Kind) async throws {
        let (store, cleanup) = try await Self.makeStore(kind)
        defer { Task { await cleanup() } }
        try await store.insertVersion(MetadataStoreContractTests.record("1.0.0"), packageName: "xdp-filter", canonical: "xdp-filter",
                                      description: "d", ownership: .anyone) {}
        #expect(try await store.versionsWithoutArtifacts(limit: 10).map(\.version) == ["1.0.0"])
        // A failed attempt makes the version wait before it is listed again.
        try await store.recordPublicationFailure(canonical: "xdp-filter", version: "1.0.0", error: "boom", at: Date())
        #expect(try await store.versionsWithoutArtifacts(limit: 10).isEmpty)
        try await store.recordPublicationFailure(canonical: "xdp-filter", version: "1.0.0", error: "boom", at: Date(timeIntervalSinceNow: -86_400 * 2))
        #expect(try await store.versionsWithoutArtifacts(limit: 10).map(\.version) == ["1.0.0"])
        let layer = Self.digest("layer")
        let image = Self.manifest("image", blobs: [layer], isPublic: true, origin: .generated)
        try await store.recordPublication(OCIPublication(canonical: "xdp-filter", version: "1.0.0", blobs: [(layer, 5)], manifests: [image],
                                                         tags: [("1.0.0", image.digest)]), at: Date())
        #expect(try await store.versionsWithoutArtifacts(limit: 10).isEmpty)
        #expect(try await store.tags(repository: "xdp-filter", after: nil, limit: 10) == ["1.0.0"])
        #expect(try await store.blobLink(repository: "xdp-filter", digest: layer)?.isPublic == true)

        // A push never moves a published version's tag.
        let note = Self.digest("note")
        try await store.linkBlob(OCIBlobLink(repository: "xdp-filter", digest: note, size: 4, isPublic: false, pusher: "alice"), at: Date())
        await #expect(throws: OCIStoreError.tagProtected("1.0.0")) { try await store.putManifest(Self.manifest("other", blobs: [note]), tag: "1.0.0") }
        #expect(try await store.tag(repository: "xdp-filter", tag: "1.0.0") == image.digest)

        // A public referrer makes its blobs public and is listed with its subject.
        let referrer = Self.manifest("sbom", blobs: [note], subject: image.digest, isPublic: true)
        try await store.putManifest(referrer, tag: nil)
        #expect(try await store.blobLink(repository: "xdp-filter", digest: note)?.isPublic == true)
        #expect(try await store.referrers(repository: "xdp-filter", subject: image.digest).map(\.digest) == [referrer.digest])
        #expect(try await store.referrers(repository: "xdp-filter", subject: referrer.digest).isEmpty)

        // Pagination after a tag.
        try await store.putManifest(Self.manifest("b-public", blobs: [note], subject: image.digest, isPublic: true), tag: "b")
        #expect(try await store.tags(repository: "xdp-filter", after: nil, limit: 1) == ["1.0.0"])
        #expect(try await store.tags(repository: "xdp-filter", after: "1.0.0", limit: 10) == ["b"])
        #expect(try await store.deleteTag(repository: "xdp-filter", tag: "b"))
        #expect(try await !store.deleteTag(repository: "xdp-filter", tag: "b"))
    }

    @Test(arguments: Kind.allCases)
    func aPublicIndexMakesItsImagesPublic(kind: Kind) async throws {
        let (store, cleanup) = try await Self.makeStore(kind)
        defer { Task { await cleanup() } }
        let layer = Self.digest("layer")
        try await store.linkBlob(OCIBlobLink(repository: "xdp-filter", digest: layer, size: 5, isPublic: false, pusher: "alice"), at: Date())
        let child = Self.manifest("child", blobs: [layer])
        try await store.putManifest(child, tag: nil)
        await #expect(throws: OCIStoreError.missing([Self.digest("absent")])) {
            try await store.putManifest(Self.manifest("bad-index", blobs: [], children: [Self.digest("absent")]), tag: nil)
        }
        try await store.putManifest(Self.manifest("index", blobs: [], children: [child.digest], isPublic: true), tag: "i")
        #expect(try await store.manifest(repository: "xdp-filter", digest: child.digest)?.isPublic == true)
        #expect(try await store.blobLink(repository: "xdp-filter", digest: layer)?.isPublic == true)
    }
}
