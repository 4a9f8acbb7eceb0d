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
        // A new name in an organisation's namespace is its members' to take, as for uploads.
        if existing == nil, let principal, !principal.actsAsAdmin {
            let names = try await organisations.organisations().map(\.name)
            let canonical = PackageName.canonicalForm(repository)
            if let org = names.filter({ canonical == $0 || canonical.hasPrefix($0 + "-") }).max(by: { $0.count < $1.count }),
               try await !organisations.members(org: org).contains(where: { $0.user == principal.name }) {
                let reason = "\(repository) is in the namespace of the organisation \(org); only its members push new packages there"
                await audit("oci-push", principal, target: target, denied: reason)
                throw OCIError.denied(reason)
            }
        }
    }

    /// Refuses a push of `size` bytes that would take the principal's pushed bytes past its
    /// quota (a blob the repository links already costs nothing more). The store checks again
    /// when it links a blob, in one transaction with the link.
    func ociCheckQuota(adding size: Int64, digest: SHA256Digest?, repository: String, principal: Principal?) async throws {
        guard let quota = ociPushQuota, let principal else { return }
        if let digest, try await oci.blobLink(repository: repository, digest: digest) != nil { return }
        let used = try await oci.pushedBytes(pusher: principal.name)
        guard used + size <= quota else { throw await ociQuotaDenied(used: used, quota: quota, principal, target: repository) }
    }

    func ociQuotaDenied(used: Int64, quota: Int64, _ principal: Principal?, target: String) async -> OCIError {
        await audit("oci-push", principal, target: target, denied: "quota")
        return OCIError.denied("\(principal?.name ?? "") has pushed \(used) bytes not yet published, and this push would pass the quota of \(quota) bytes: publish or delete some first")
    }

    /// Links a pushed blob within the principal's quota.
    func ociLink(_ link: OCIBlobLink, principal: Principal?) async throws {
        do {
            try await oci.linkBlob(link, at: Date(), quota: principal == nil ? nil : ociPushQuota)
        } catch let OCIStoreError.quotaExceeded(used, quota) {
            throw await ociQuotaDenied(used: used, quota: quota, principal, target: "\(link.repository)@\(link.digest)")
        }
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
                let signer = ociSigner
                let artifacts = try await Self.signing { try OCIArtifacts.make(record: record, canonical: canonical, archive: archive, signer: signer) }
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
        var collected = ContinuousClock.now - .seconds(3600)
        while !Task.isCancelled {
            let generation = notices.generation
            do {
                while try await publishOCIArtifacts() > 0, !Task.isCancelled {}
            } catch {
                logger.error("could not make OCI artifacts", metadata: ["error": "\(error)"])
            }
            // Once an hour: pushed blobs nothing public or pushed uses, a day after their push.
            if ContinuousClock.now - collected >= .seconds(3600) {
                collected = ContinuousClock.now
                do {
                    let unlinked = try await collectAbandonedOCIBlobs(at: Date())
                    if unlinked > 0 { logger.notice("unlinked abandoned pushed blobs", metadata: ["blobs": "\(unlinked)"]) }
                } catch {
                    logger.error("could not collect abandoned pushed blobs", metadata: ["error": "\(error)"])
                }
            }
            await notices.wait(after: generation, upTo: .seconds(30))
        }
    }

    /// How long a pushed blob may stay private and unused before it is unlinked.
    public static let abandonedBlobGrace: TimeInterval = 86_400

    /// Unlinks pushed blobs that stayed private and unused past the grace period, so they no
    /// longer count against their pushers' quotas.
    public func collectAbandonedOCIBlobs(at now: Date) async throws -> Int {
        var total = 0
        while true {
            let unlinked = try await oci.unlinkAbandonedBlobs(before: now.addingTimeInterval(-Self.abandonedBlobGrace), limit: 500)
            total += unlinked
            if unlinked < 500 { return total }
        }
    }
}
