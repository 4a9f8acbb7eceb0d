import Foundation
import Logging
import NIOCore
import NIOPosix
import PackageFormat
import Storage

/// What a manifest push became.
public struct OCIPushResult: Sendable {
    public let manifest: OCIManifestRecord
    /// The submission a pushed eBPF program became, on its way through checks and review.
    public let submission: SubmissionRecord?
}

/// The OCI distribution API over the repository: published versions are pulled as bpfman
/// bytecode images and package artifacts; pushes of eBPF programs become submissions; other
/// pushes are kept private to those who may publish the package, except artifacts attached to a
/// public manifest (signatures, SBOMs), which its owners make public.
extension RegistryService {
    /// The largest manifest accepted.
    public static let ociManifestLimit = 4 << 20

    /// The package a repository name stands for (OCI names are lower case; package names are
    /// their canonical form).
    public func ociRepository(_ name: String) throws -> String {
        guard OCIReference.isValidName(name) else { throw OCIError.nameInvalid(name, "not a valid OCI repository name") }
        guard let canonical = try? PackageName(name).canonical, canonical == name else {
            throw OCIError.nameInvalid(name, "repositories are named as packages are, in their canonical form (lower case, '-' between words)")
        }
        if Self.reservedNames.contains(name) { throw OCIError.nameInvalid(name, "the name is reserved for the registry's own paths") }
        return canonical
    }

    // MARK: Who may see what

    /// Whether the principal may see private content of a repository: reviewers and admins,
    /// and whoever may publish new versions of the package (its owners). Before the package
    /// exists, a private push is its pusher's alone.
    func ociMayManage(_ repository: String, _ principal: Principal?) async -> Bool {
        guard let principal, principal.restriction == nil else { return false }
        // As submissions are read: admins acting as such, and reviewers whose token may review this package.
        if principal.actsAsAdmin || (principal.scopes.contains(.review) && principal.mayTouch(repository)) { return true }
        guard (try? await metadata.package(canonical: repository)) != nil,
              let owners = try? await organisations.effectiveOwners(package: repository) else { return false }
        return (try? policy.authorize(.publish(package: repository, isNew: false), for: principal, owners: owners)) != nil
    }

    func ociMayRead(_ manifest: OCIManifestRecord, _ principal: Principal?) async -> Bool {
        if manifest.isPublic { return true }
        guard let principal else { return false }
        if manifest.pusher == principal.name { return true }
        return await ociMayManage(manifest.repository, principal)
    }

    /// Refuses a push the principal may not make: nobody, or someone who may not publish the package.
    func ociAuthorizePush(_ repository: String, _ principal: Principal?, target: String) async throws {
        let existing = try await metadata.package(canonical: repository)
        let owners = existing == nil ? [] : try await organisations.effectiveOwners(package: repository)
        try await authorize(.publish(package: repository, isNew: existing == nil), principal, owners: owners, target: target)
    }

    // MARK: Pulling

    /// The manifest a tag or digest names, when the principal may see it. `latest` is the
    /// version L3AFD's `latest` resolves to.
    public func ociManifest(repository: String, reference: String, principal: Principal?) async throws -> OCIManifestRecord {
        let digest: SHA256Digest?
        if reference.contains(":") {
            guard let parsed = SHA256Digest(oci: reference) else { throw OCIError.digestInvalid("\(reference) is not a sha256 digest") }
            digest = parsed
        } else {
            guard OCIReference.isValidTag(reference) else { throw OCIError.manifestInvalid("\(reference) is not a valid tag") }
            if reference == "latest", try await oci.tag(repository: repository, tag: reference) == nil,
               let version = try? await resolve(repository, "latest", platform: nil) {
                digest = try await oci.tag(repository: repository, tag: OCIReference.tag(version: version.version))
            } else {
                digest = try await oci.tag(repository: repository, tag: reference)
            }
        }
        guard let digest, let record = try await oci.manifest(repository: repository, digest: digest),
              await ociMayRead(record, principal) else {
            throw OCIError.manifestUnknown(reference)
        }
        return record
    }

    /// A blob of the repository, when the principal may see it.
    public func ociBlob(repository: String, digest: SHA256Digest, principal: Principal?) async throws -> OCIBlobLink {
        guard let link = try await oci.blobLink(repository: repository, digest: digest) else { throw OCIError.blobUnknown(digest.description) }
        if link.isPublic || (principal != nil && link.pusher == principal?.name) { return link }
        guard await ociMayManage(repository, principal) else { throw OCIError.blobUnknown(digest.description) }
        return link
    }

    /// Public tags in lexical order (with `latest` when a version resolves), `limit` after `last`.
    public func ociTags(repository: String, last: String?, limit: Int) async throws -> (tags: [String], more: Bool) {
        var tags = try await oci.tags(repository: repository, after: last, limit: limit + 1)
        var hasContent = !tags.isEmpty
        if !hasContent { hasContent = try await metadata.package(canonical: repository) != nil }
        guard hasContent || last != nil else { throw OCIError.nameUnknown(repository) }
        if last.map({ "latest" > $0 }) ?? true, !tags.contains("latest"), let latest = try? await resolve(repository, "latest", platform: nil),
           try await oci.tag(repository: repository, tag: OCIReference.tag(version: latest.version)) != nil {
            tags.append("latest")
            tags.sort()
        }
        return (Array(tags.prefix(limit)), tags.count > limit)
    }

    /// The referrers of a manifest as an image index, filtered by artifact type when asked.
    public func ociReferrers(repository: String, subject: SHA256Digest, artifactType: String?, principal: Principal?) async throws -> Data {
        var descriptors: [OCIDescriptor] = []
        for record in try await oci.referrers(repository: repository, subject: subject) where await ociMayRead(record, principal) {
            if let artifactType, record.artifactType != artifactType { continue }
            descriptors.append(OCIDescriptor(mediaType: record.mediaType, digest: record.digest, size: Int64(record.content.count),
                                             artifactType: record.artifactType, annotations: record.annotations.isEmpty ? nil : record.annotations))
        }
        return OCIManifestDocument(mediaType: OCIMediaType.imageIndex, manifests: descriptors).encoded()
    }

    // MARK: Pushing

    /// Checks that the principal may push to the repository, before any upload is read.
    public func ociBeginPush(repository: String, principal: Principal?) async throws {
        try await ociAuthorizePush(repository, principal, target: repository)
    }

    /// Stores an uploaded blob (a temporary file of the blob store, consumed) whose content
    /// hashed to `actual`, and links it into the repository.
    public func ociReceiveBlob(repository: String, file: URL, actual: SHA256Digest, size: Int64, expected: SHA256Digest,
                               principal: Principal?) async throws -> OCIBlobLink {
        defer { try? FileManager.default.removeItem(at: file) }
        guard actual == expected else { throw OCIError.digestInvalid("the content's digest is \(actual), not \(expected)") }
        // The file holds exactly what was hashed (nothing removed or added under the session).
        let stored = (try? FileManager.default.attributesOfItem(atPath: file.path)[.size] as? NSNumber)?.int64Value
        guard stored == size else { throw OCIError.blobUploadInvalid("the upload changed while it was written; start it again") }
        try await ociAuthorizePush(repository, principal, target: "\(repository)@\(expected)")
        if try await blobs.size(of: expected) == nil { try await blobs.store(file, digest: expected) }
        let link = OCIBlobLink(repository: repository, digest: expected, size: size, isPublic: false, pusher: principal?.name)
        try await oci.linkBlob(link, at: Date())
        return try await oci.blobLink(repository: repository, digest: expected) ?? link
    }

    /// Links a blob another repository holds, when the principal may read it there; nil when it cannot.
    public func ociMount(repository: String, from source: String, digest: SHA256Digest, principal: Principal?) async throws -> OCIBlobLink? {
        try await ociAuthorizePush(repository, principal, target: "\(repository)@\(digest)")
        guard let link = try? await ociBlob(repository: source, digest: digest, principal: principal) else { return nil }
        let mounted = OCIBlobLink(repository: repository, digest: digest, size: link.size, isPublic: false, pusher: principal?.name)
        try await oci.linkBlob(mounted, at: Date())
        return try await oci.blobLink(repository: repository, digest: digest) ?? mounted
    }

    /// Stores a pushed manifest. An eBPF program pushed by tag becomes a submission.
    public func ociPutManifest(repository: String, reference: String, content: Data, contentType: String?,
                               principal: Principal?) async throws -> OCIPushResult {
        let digest = SHA256Digest(of: content)
        var tag: String?
        if reference.contains(":") {
            guard let named = SHA256Digest(oci: reference) else { throw OCIError.digestInvalid("\(reference) is not a sha256 digest") }
            guard named == digest else { throw OCIError.digestInvalid("the manifest's digest is \(digest), not \(reference)") }
        } else {
            guard OCIReference.isValidTag(reference) else { throw OCIError.manifestInvalid("\(reference) is not a valid tag") }
            guard reference != "latest" else { throw OCIError.denied("latest names the highest published version; it is not pushed") }
            tag = reference
        }
        try await ociAuthorizePush(repository, principal, target: "\(repository):\(reference)")
        let document: OCIManifestDocument
        do { document = try JSONDecoder().decode(OCIManifestDocument.self, from: content) } catch {
            throw OCIError.manifestInvalid("the manifest is not JSON of an image manifest or index")
        }
        let contentType = contentType.map { String($0.split(separator: ";").first ?? "").trimmingCharacters(in: .whitespaces) }
        guard let mediaType = document.mediaType ?? contentType, OCIMediaType.manifests.contains(mediaType) else {
            throw OCIError.manifestInvalid("the media type \(document.mediaType ?? contentType ?? "(none)") is not an image manifest or index")
        }
        if let declared = document.mediaType, let contentType, contentType != declared, OCIMediaType.manifests.contains(contentType) {
            throw OCIError.manifestInvalid("Content-Type \(contentType) differs from the manifest's mediaType \(declared)")
        }
        guard document.schemaVersion == 2 else { throw OCIError.manifestInvalid("schemaVersion must be 2") }
        let isIndex = OCIMediaType.indexes.contains(mediaType)
        func digests(_ descriptors: [OCIDescriptor]) throws -> [SHA256Digest] {
            try descriptors.map {
                guard let value = SHA256Digest(oci: $0.digest) else { throw OCIError.manifestInvalid("\($0.digest) is not a sha256 digest") }
                return value
            }
        }
        let blobRefs: [SHA256Digest]
        let children: [SHA256Digest]
        if isIndex {
            guard let manifests = document.manifests else { throw OCIError.manifestInvalid("an image index needs manifests") }
            blobRefs = []
            children = try digests(manifests)
        } else {
            guard let config = document.config else { throw OCIError.manifestInvalid("an image manifest needs a config") }
            blobRefs = try digests([config] + (document.layers ?? []))
            children = []
        }
        let subject = try document.subject.map { try digests([$0])[0] }
        // What it refers to must be in the repository and visible to the pusher: a push does not
        // read someone else's private blob by naming its digest.
        var missing: [String] = []
        for blob in Set(blobRefs) where (try? await ociBlob(repository: repository, digest: blob, principal: principal)) == nil {
            missing.append(blob.description)
        }
        for child in Set(children) {
            guard let record = try await oci.manifest(repository: repository, digest: child), await ociMayRead(record, principal) else {
                missing.append(child.description)
                continue
            }
        }
        guard missing.isEmpty else { throw OCIError.manifestBlobUnknown(missing.sorted()) }

        var isPublic = false
        var submission: SubmissionRecord?
        if let subject {
            // An artifact attached to a public manifest (a signature, an SBOM) is public, as its
            // pusher may publish the package; never one a loader could run, which goes through review.
            isPublic = try await oci.manifest(repository: repository, digest: subject)?.isPublic == true && !Self.isRunnable(document, mediaType: mediaType)
        } else if let tag {
            submission = try await ociSubmit(repository: repository, tag: tag, document: document, principal: principal)
        }
        if submission == nil, let tag, OCIReference.version(tag: tag) != nil {
            throw OCIError.denied("the tag \(tag) is a version: versions are named by what is published; push this by digest or under another tag")
        }
        let record = OCIManifestRecord(
            repository: repository, digest: digest, mediaType: mediaType, artifactType: document.artifactType ?? document.config?.mediaType,
            subject: subject, content: content, blobs: Array(Set(blobRefs)), children: Array(Set(children)), annotations: document.annotations ?? [:],
            origin: .pushed, isPublic: isPublic, pusher: principal?.name, submission: submission?.id, createdAt: Date())
        do {
            try await oci.putManifest(record, tag: submission == nil ? tag : nil)
        } catch let OCIStoreError.tagProtected(tag) {
            throw OCIError.denied("the tag \(tag) names a published version, which never changes")
        } catch let OCIStoreError.missing(digests) {
            throw OCIError.manifestBlobUnknown(digests.map(\.description))
        }
        await audit("oci-push", principal, target: "\(repository)@\(digest)", detail: submission.map { "submission \($0.id)" } ?? tag)
        return OCIPushResult(manifest: record, submission: submission)
    }

    /// Whether a loader could take the manifest for a program: an index, an image config, or
    /// a layer of an image, a BPF object or a package archive.
    static func isRunnable(_ document: OCIManifestDocument, mediaType: String) -> Bool {
        if OCIMediaType.indexes.contains(mediaType) { return true }
        let runnableConfigs: Set<String> = [OCIMediaType.imageConfig, OCIMediaType.dockerConfig, OCIMediaType.bumblebeeConfig, OCIMediaType.packageManifest]
        let runnableLayers: Set<String> = [OCIMediaType.layerTarGzip, OCIMediaType.dockerLayerGzip, "application/vnd.oci.image.layer.v1.tar",
                                           "application/vnd.oci.image.layer.v1.tar+zstd", OCIMediaType.bumblebeeProgram, OCIMediaType.gadgetProgram,
                                           OCIMediaType.packageArchive]
        let artifactTypes: Set<String> = [OCIMediaType.packageArtifact, OCIMediaType.gadgetArtifact]
        return runnableConfigs.contains(document.config?.mediaType ?? "") || (document.layers ?? []).contains { runnableLayers.contains($0.mediaType) }
            || artifactTypes.contains(document.artifactType ?? "")
    }

    /// A pushed eBPF program, or the repository's own package artifact, submitted as an upload;
    /// nil when the manifest holds neither.
    func ociSubmit(repository: String, tag: String, document: OCIManifestDocument, principal: Principal?) async throws -> SubmissionRecord? {
        var image = document
        if OCIMediaType.indexes.contains(image.mediaType ?? "") {
            // The amd64 image of an index (or its first one) is the one checked.
            let entries = image.manifests ?? []
            guard let chosen = entries.first(where: { $0.platform?.architecture == "amd64" }) ?? entries.first,
                  let digest = SHA256Digest(oci: chosen.digest),
                  let child = try await oci.manifest(repository: repository, digest: digest),
                  let decoded = try? JSONDecoder().decode(OCIManifestDocument.self, from: child.content) else { return nil }
            image = decoded
        }
        guard let config = image.config, let configDigest = SHA256Digest(oci: config.digest) else { return nil }
        let layers = image.layers ?? []
        let upload = try blobs.temporaryFile()
        defer { try? FileManager.default.removeItem(at: upload) }

        if image.artifactType == OCIMediaType.packageArtifact || config.mediaType == OCIMediaType.packageManifest {
            guard let archive = layers.first(where: { $0.mediaType == OCIMediaType.packageArchive }), let digest = SHA256Digest(oci: archive.digest) else {
                throw OCIError.manifestInvalid("a package artifact needs a layer of type \(OCIMediaType.packageArchive)")
            }
            try await copyBlob(digest, to: upload)
            // The archive names its package and version: they must be the repository and the tag.
            let inspector = self.inspector
            let manifest = try? await NIOThreadPool.singleton.runIfActive { try inspector.inspect(path: upload.path).manifest }
            if let manifest = manifest ?? nil {
                guard manifest.name.canonical == repository, OCIReference.tag(version: manifest.version.description) == tag else {
                    throw OCIError.manifestInvalid("the archive is \(manifest.name) \(manifest.version); push it to \(manifest.name.canonical):\(OCIReference.tag(version: manifest.version.description))")
                }
            }
        } else {
            // Each layer once, and no more than 256 MiB of them together.
            var contents: [(OCIDescriptor, [UInt8])] = []
            var seen: Set<SHA256Digest> = [], total = 0
            for layer in layers {
                guard let digest = SHA256Digest(oci: layer.digest), seen.insert(digest).inserted else { continue }
                let bytes = try await blobBytes(digest, limit: Self.ociProgramLimit - total)
                total += bytes.count
                contents.append((layer, bytes))
            }
            let configBytes = config.size <= 1 << 20 ? try await blobBytes(configDigest, limit: 1 << 20) : nil
            let program: OCIPushedProgram?
            do { program = try OCIPushedProgram.find(layers: contents, config: configBytes, annotations: image.annotations ?? [:]) } catch let error as OCILayer.Failure {
                throw OCIError.manifestInvalid(error.description)
            }
            guard let program else { return nil }
            let version = OCIReference.version(tag: tag) ?? (image.annotations?["org.opencontainers.image.version"]).flatMap { try? SemanticVersion($0) }
            guard let version else {
                throw OCIError.manifestInvalid("push an eBPF program with its version as the tag (SemVer, '_' for '+'), or in org.opencontainers.image.version")
            }
            let directory = scratch.appendingPathComponent("oci-push-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            try program.write(name: repository, version: version, publisher: principal?.name ?? "", into: directory)
            do {
                _ = try PackageBuilder().build(directory: directory, output: upload, modificationTime: UInt64(Date().timeIntervalSince1970))
            } catch let failure as PackageBuilder.Failure {
                throw OCIError.manifestInvalid("the pushed program does not make a valid package: " + failure.description)
            } catch let failure as ManifestError {
                throw OCIError.manifestInvalid("the pushed program does not make a valid package: " + failure.description)
            }
        }
        do {
            try await checkPublishRate(principal)
            return try await publish(upload: upload, by: principal)
        } catch let RegistryError.invalidPackage(findings) {
            throw OCIError.manifestInvalid("the package is refused: " + findings.filter { $0.severity == .error }.map(\.description).joined(separator: "; "))
        } catch let RegistryError.versionExists(package, version) {
            throw OCIError.denied("\(package) \(version) exists; versions never change")
        } catch let RegistryError.archiveRefused(error) {
            throw OCIError.manifestInvalid("the package archive is refused: \(error)")
        }
    }

    /// The most bytes of layers (and of files unpacked from them) a pushed program is read from.
    static let ociProgramLimit = 256 << 20

    /// Copies a blob into a file, chunk by chunk.
    func copyBlob(_ digest: SHA256Digest, to file: URL) async throws {
        FileManager.default.createFile(atPath: file.path, contents: nil, attributes: [.posixPermissions: 0o600])
        let handle = try FileHandle(forWritingTo: file)
        defer { try? handle.close() }
        for try await chunk in try await blobs.read(digest, range: nil) { try handle.write(contentsOf: chunk.readableBytesView) }
    }

    /// A blob's whole content.
    func blobBytes(_ digest: SHA256Digest, limit: Int) async throws -> [UInt8] {
        var bytes: [UInt8] = []
        for try await chunk in try await blobs.read(digest, range: nil) {
            bytes.append(contentsOf: chunk.readableBytesView)
            guard bytes.count <= limit else { throw OCIError.manifestInvalid("\(digest) is larger than \(limit) bytes") }
        }
        return bytes
    }

    // MARK: Deleting

    /// Deletes a pushed manifest (by digest) or a tag; the repository's own artifacts stay.
    public func ociDelete(repository: String, reference: String, principal: Principal?) async throws {
        guard principal != nil else { throw RegistryError.unauthenticated }
        let owners = try await organisations.effectiveOwners(package: repository)
        if let digest = SHA256Digest(oci: reference) {
            guard let record = try await oci.manifest(repository: repository, digest: digest), await ociMayRead(record, principal) else {
                throw OCIError.manifestUnknown(reference)
            }
            guard record.origin == .pushed else { throw OCIError.denied("the repository's own artifacts of a published version are never deleted; yank the version instead") }
            try await ociAuthorizeDelete(repository, record.pusher, principal, owners: owners, target: "\(repository)@\(reference)")
            _ = try await oci.deleteManifest(repository: repository, digest: digest)
        } else {
            guard OCIReference.isValidTag(reference), let digest = try await oci.tag(repository: repository, tag: reference),
                  let record = try await oci.manifest(repository: repository, digest: digest), await ociMayRead(record, principal) else {
                throw OCIError.manifestUnknown(reference)
            }
            guard record.origin == .pushed else { throw OCIError.denied("the tag \(reference) names a published version, which never changes") }
            try await ociAuthorizeDelete(repository, record.pusher, principal, owners: owners, target: "\(repository):\(reference)")
            _ = try await oci.deleteTag(repository: repository, tag: reference)
        }
        cache.invalidate(repository)
        await audit("oci-delete", principal, target: "\(repository)@\(reference)")
    }

    /// Deleting what one pushed takes the rights a push takes; what another pushed, the right to yank.
    func ociAuthorizeDelete(_ repository: String, _ pusher: String?, _ principal: Principal?, owners: [String], target: String) async throws {
        if pusher != nil, pusher == principal?.name {
            try await ociAuthorizePush(repository, principal, target: target)
        } else {
            try await authorize(.yank(package: repository), principal, owners: owners, target: target)
        }
    }

    /// Unlinks a blob from the repository; one a manifest still uses stays.
    public func ociDeleteBlob(repository: String, digest: SHA256Digest, principal: Principal?) async throws {
        guard principal != nil else { throw RegistryError.unauthenticated }
        let link = try await ociBlob(repository: repository, digest: digest, principal: principal)
        try await ociAuthorizeDelete(repository, link.pusher, principal, owners: try await organisations.effectiveOwners(package: repository),
                                     target: "\(repository)@\(digest)")
        do {
            _ = try await oci.unlinkBlob(repository: repository, digest: digest)
        } catch OCIStoreError.inUse {
            throw OCIError.denied("a manifest of \(repository) uses \(digest); delete the manifest first")
        }
        cache.invalidate(repository)
        await audit("oci-delete", principal, target: "\(repository)@\(digest)")
    }

    // MARK: Publication

    /// Makes the OCI artifacts of published versions that do not have them yet; returns how many.
    @discardableResult
    public func publishOCIArtifacts(limit: Int = 32) async throws -> Int {
        var count = 0
        for (canonical, version) in try await oci.versionsWithoutArtifacts(limit: limit) {
            guard let record = try await metadata.version(canonical: canonical, version: version) else { continue }
            do {
                let archive = try await blobBytes(record.digest, limit: Int.max)
                let artifacts = try OCIArtifacts.make(record: record, canonical: canonical, archive: archive, signer: ociSigner)
                for (digest, data) in artifacts.blobs where try await blobs.size(of: digest) == nil {
                    let file = try blobs.temporaryFile()
                    do {
                        try data.write(to: file)
                        try await blobs.store(file, digest: digest)
                    } catch {
                        try? FileManager.default.removeItem(at: file)
                        throw error
                    }
                }
                // Nothing served before is changed by this (it only adds), so cached answers stay.
                try await oci.recordPublication(artifacts.publication, at: Date())
                logger.info("OCI artifacts made", metadata: ["package": "\(canonical)", "version": "\(version)", "image": "\(artifacts.image)"])
                count += 1
            } catch {
                // One version's failure does not hold back the others; it is tried again later,
                // less often each time.
                logger.error("could not make the OCI artifacts of a version", metadata: ["package": "\(canonical)", "version": "\(version)",
                                                                                        "error": "\(error)"])
                try? await oci.recordPublicationFailure(canonical: canonical, version: version, error: "\(error)", at: Date())
            }
        }
        return count
    }

    /// Makes OCI artifacts as versions are published, until cancelled.
    public func runOCIPublication() async {
        while !Task.isCancelled {
            let generation = notices.generation
            do {
                while try await publishOCIArtifacts() > 0, !Task.isCancelled {}
            } catch {
                logger.error("could not make OCI artifacts", metadata: ["error": "\(error)"])
            }
            await notices.wait(after: generation, upTo: .seconds(30))
        }
    }
}
