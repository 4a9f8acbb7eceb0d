import Foundation
import Logging
import NIOCore
import NIOPosix
import PackageFormat
import Storage

/// Pushes through the OCI API: blobs received and mounted, manifests stored, and eBPF programs
/// (bpfman, Bumblebee and Inspektor Gadget forms, or the repository's own package artifact)
/// pushed by a version tag submitted like any upload.
extension RegistryService {
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
        try await ociCheckQuota(adding: size, digest: expected, repository: repository, principal: principal)
        if try await blobs.size(of: expected) == nil { try await blobs.store(file, digest: expected) }
        let link = OCIBlobLink(repository: repository, digest: expected, size: size, isPublic: false, pusher: principal?.name)
        try await ociLink(link, principal: principal)
        return try await oci.blobLink(repository: repository, digest: expected) ?? link
    }

    /// Links a blob another repository holds, when the principal may read it there; nil when it cannot.
    public func ociMount(repository: String, from source: String, digest: SHA256Digest, principal: Principal?) async throws -> OCIBlobLink? {
        try await ociAuthorizePush(repository, principal, target: "\(repository)@\(digest)")
        guard let link = try? await ociBlob(repository: source, digest: digest, principal: principal) else { return nil }
        try await ociCheckQuota(adding: link.size, digest: digest, repository: repository, principal: principal)
        let mounted = OCIBlobLink(repository: repository, digest: digest, size: link.size, isPublic: false, pusher: principal?.name)
        try await ociLink(mounted, principal: principal)
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
        try await ociCheckQuota(adding: Int64(content.count), digest: nil, repository: repository, principal: principal)
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
        // A push by tag that may hold a program counts as a publish before anything of it is read.
        try await checkPublishRate(principal)
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
            // Each layer once, read as a stream off the request threads: only BPF objects are
            // kept, within the same bounds as package archives.
            var objects: [(name: String, bytes: [UInt8])] = []
            var seen: Set<SHA256Digest> = []
            guard layers.count <= Self.ociMaximumLayers else {
                throw OCIError.manifestInvalid("an eBPF program is read from at most \(Self.ociMaximumLayers) layers")
            }
            // The expansion allowed is shared by the layers: many small layers expand no more
            // than one large one may.
            var limits = Self.ociLayerLimits
            limits.expandedBytes /= UInt64(max(1, layers.count))
            limits.ratioGrace /= UInt64(max(1, layers.count))
            for layer in layers {
                guard let digest = SHA256Digest(oci: layer.digest), seen.insert(digest).inserted else { continue }
                let (path, temporary) = try await localFile(of: digest)
                defer { if temporary { try? FileManager.default.removeItem(atPath: path) } }
                let found = objects, limits = limits
                do {
                    objects += try await NIOThreadPool.singleton.runIfActive {
                        try OCIPushedProgram.objects(in: layer, source: try FileSource(path: path), limits: limits, found: found)
                    }
                } catch let error as OCILayer.Failure {
                    throw OCIError.manifestInvalid(error.description)
                } catch let error as ArchiveError {
                    throw OCIError.manifestInvalid("\(layer.digest) cannot be read: \(error)")
                }
            }
            let configBytes = config.size <= 1 << 20 ? try await blobBytes(configDigest, limit: 1 << 20) : nil
            let program: OCIPushedProgram?
            program = OCIPushedProgram.program(objects: objects, config: configBytes, annotations: image.annotations ?? [:])
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
            return try await publish(upload: upload, by: principal)
        } catch let RegistryError.invalidPackage(findings) {
            throw OCIError.manifestInvalid("the package is refused: " + findings.filter { $0.severity == .error }.map(\.description).joined(separator: "; "))
        } catch let RegistryError.versionExists(package, version) {
            throw OCIError.denied("\(package) \(version) exists; versions never change")
        } catch let RegistryError.archiveRefused(error) {
            throw OCIError.manifestInvalid("the package archive is refused: \(error)")
        }
    }

    /// How much of a pushed program's layers is read, all layers together: 1 GiB expanded, the
    /// ratio and entries of package archives, and at most 64 MiB of BPF objects kept.
    static let ociLayerLimits: OCILayer.Limits = {
        var limits = OCILayer.Limits()
        let archives = ArchiveLimits()
        limits.keptBytes = 64 << 20
        limits.fileBytes = 64 << 20
        limits.entries = archives.maxEntries
        limits.expandedBytes = 1 << 30
        limits.compressionRatio = UInt64(archives.maxCompressionRatio)
        limits.ratioGrace = archives.ratioGrace
        return limits
    }()

    /// The most layers a pushed program is read from.
    static let ociMaximumLayers = 64

    /// Copies a blob into a file, chunk by chunk.
    func copyBlob(_ digest: SHA256Digest, to file: URL) async throws {
        guard FileManager.default.createFile(atPath: file.path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
            throw CocoaError(.fileWriteUnknown)
        }
        let handle = try FileHandle(forWritingTo: file)
        defer { try? handle.close() }
        for try await chunk in try await blobs.read(digest, range: nil) { try handle.write(contentsOf: chunk.readableBytesView) }
    }

    /// A file holding a blob: the blob store's own, or a temporary copy (true) to remove after use.
    public func localFile(of digest: SHA256Digest) async throws -> (String, Bool) {
        if let path = blobs.localPath(of: digest) { return (path, false) }
        let file = try blobs.temporaryFile()
        do {
            try await copyBlob(digest, to: file)
        } catch {
            try? FileManager.default.removeItem(at: file)
            throw error
        }
        return (file.path, true)
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
}
