import BPFObject
import Checks
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOPosix
import PackageFormat
import Storage

/// The registry's domain operations: publish, look up, resolve, yank and deprecate versions.
/// It works through the storage protocols and never knows which database or blob store it has.
public struct RegistryService: Sendable {
    public let metadata: any MetadataStore
    public let blobs: any BlobStore
    public let accounts: any AccountStore
    public let credentials: any CredentialStore
    public let organisations: any OrganisationStore
    public let submissions: any SubmissionStore
    public let trust: any TrustStore
    public let oci: any OCIStore
    public var inspector: PackageInspector
    /// The automated checks every submission goes through after its inspection.
    public var checks = CheckSettings()
    /// How a check job runs: in a check worker process, in a sandbox.
    public var checkProcess = CheckProcess()
    public var review = ReviewSettings()
    /// Where checks unpack packages.
    public var scratch = FileManager.default.temporaryDirectory.appendingPathComponent("epr-checks")
    public var policy = AuthorizationPolicy()
    public var limits = RateLimits()
    public var signIn = SignInSettings()
    /// The signing authority the repository certifies keys and attests publications with, when
    /// configured; shared by every copy of the service (its attestation key is renewed while
    /// the server runs).
    let signingHolder = SigningHolder()
    public var signing: SigningAuthority? {
        get { signingHolder.value }
        nonmutating set { signingHolder.value = newValue }
    }
    /// The key that signs the OCI manifests the repository makes (cosign's form).
    public var ociSigner: OCISigner?
    /// Whether every submission that says how it is built is rebuilt by a build worker and its
    /// objects compared with the uploaded ones (submissions of sources are always built).
    public var rebuildSources = false
    /// Whether an upload must carry a contributor's signature.
    public var requireSignatures = false
    /// The most bytes of private blobs (not yet part of anything public) one user may have
    /// pushed through the OCI API; nil: no limit.
    public var ociPushQuota: Int64? = 1 << 30
    /// The file the first admin's generated token was written to, removed once the token is
    /// used: by then the admin has it, and it need not lie on the disk any longer.
    public let adminTokenFile = AdminTokenFile()
    let logger: Logger
    let cache = VersionCache()

    /// Changes with every write made through this registry (publish, yank, deprecation):
    /// caches of answers compare it to know whether what they hold may be stale.
    public var changeCount: UInt64 { cache.changeCount }

    /// Tokens whose last use was recorded recently, so that requests do not each write it.
    let tokenUses = TokenUses()
    /// Wakes the check runner when a submission queues jobs.
    public let jobs = JobSignal()
    /// Wakes those who follow submissions' events (webhooks) when one is recorded.
    public let notices = JobSignal()

    public init(metadata: any MetadataStore, accounts: any AccountStore & CredentialStore & OrganisationStore & SubmissionStore & TrustStore & OCIStore,
                blobs: any BlobStore, inspector: PackageInspector = PackageInspector(), logger: Logger) {
        self.metadata = metadata
        self.accounts = accounts
        self.credentials = accounts
        self.organisations = accounts
        self.submissions = accounts
        self.trust = accounts
        self.oci = accounts
        self.blobs = blobs
        self.inspector = inspector
        self.logger = logger
    }

    // MARK: Publishing

    /// Submits the package archive spooled in `upload` (a temporary file of the blob store,
    /// consumed whatever happens): it is inspected at once (an invalid package is refused), then
    /// recorded as a submission with its background checks queued. The submission, its blob and
    /// its jobs become visible atomically; its version is published only once checks and review
    /// let it through. A contributor's `signature` (a DSSE envelope) is checked against the
    /// repository's root before anything is stored.
    public func publish(upload: URL, signature: Data? = nil, by principal: Principal?) async throws -> SubmissionRecord {
        defer { try? FileManager.default.removeItem(at: upload) }
        let inspector = self.inspector
        let report = try await NIOThreadPool.singleton.runIfActive { () throws -> PackageReport in
            do throws(ArchiveError) { return try inspector.inspect(path: upload.path) } catch { throw RegistryError.archiveRefused(error) }
        }
        guard let manifest = report.manifest, report.isValid else {
            throw RegistryError.invalidPackage(findings: report.findings.filter { $0.severity != .info })
        }
        let existing = try await metadata.package(canonical: manifest.name.canonical)
        let owners = existing == nil ? [] : try await organisations.effectiveOwners(package: manifest.name.canonical)
        try await authorize(.publish(package: manifest.name.value, isNew: existing == nil), principal, owners: owners,
                            target: "\(manifest.name)@\(manifest.version)")
        if Self.reservedNames.contains(manifest.name.canonical) {
            throw RegistryError.invalidName(manifest.name.value, reason: "the name is reserved for the registry's own paths")
        }
        let signed: SignatureRecord?
        do { signed = try await checkSignature(signature, report: report) } catch let error as RegistryError {
            await audit("publish", principal, target: "\(manifest.name)@\(manifest.version)", denied: error.detail)
            throw error
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let now = Date()
        let record = VersionRecord(
            package: manifest.name.value, version: manifest.version.description, artifact: manifest.artifact,
            platforms: manifest.platforms, digest: report.sha256, size: Int64(report.size),
            manifest: try encoder.encode(manifest), report: try encoder.encode(report),
            publisher: principal?.name ?? "", publishedAt: now, signature: signed)
        let inspection = CheckSuite.inspectionResult(report)
        // A package of sources is built by a build worker before anything else checks it; with
        // `rebuild_sources`, every package that says how it is built is rebuilt and compared.
        let sourcesOnly = !Self.missingBuiltFiles(report).isEmpty
        let builtPaths = PackageBuilder.builtFiles(manifest)
        if let odd = report.files.first(where: { builtPaths.contains($0.path) && $0.kind != .file }) {
            throw RegistryError.invalidPackage(findings: [Finding(.error, "build.not-regular", "\(odd.path) is what [build] builds, but is a \(odd.kind.rawValue) here",
                                                                  at: odd.path)])
        }
        if sourcesOnly, requireSignatures {
            throw RegistryError.invalidPackage(findings: [Finding(.error, "build.signature-required",
                                                                  "this repository requires signed packages: a package of sources cannot be, as its signature would not cover what is published; submit the built package")])
        }
        let needsBuild = sourcesOnly || (rebuildSources && manifest.build != nil)
        let queued = (needsBuild ? [Self.buildCheck] : []) + checks.jobs
        var submission = SubmissionRecord(id: SubmissionRecord.newID(), canonical: manifest.name.canonical, version: record, state: .submitted,
                                          approvalsRequired: review.approvalsRequired, createdAt: now, updatedAt: now)
        if queued.isEmpty {
            // Nothing left to run: the inspection decides where it goes.
            let auto = try await submissions.autoPublishers().contains(record.publisher)
            let decision = verdict([inspection], publisher: record.publisher, autoPublishFlag: auto)
            submission.state = decision.state
            submission.reason = decision.reason
        }
        let blobs = self.blobs, digest = report.sha256
        do {
            try await submissions.insertSubmission(submission, packageName: manifest.name.value, description: manifest.description,
                                                   ownership: principal?.actsAsAdmin == true ? .anyone : .owners,
                                                   done: [CheckSuite.inspection: inspection], queued: queued) {
                try await blobs.store(upload, digest: digest)
            }
        } catch let MetadataStoreError.versionExists(package, version) {
            throw RegistryError.versionExists(package: package, version: version)
        } catch let AccountStoreError.namespaceTaken(package, org) {
            let reason = "\(package) is in the namespace of the organisation \(org); only its members publish new packages there"
            await audit("publish", principal, target: "\(manifest.name)@\(manifest.version)", denied: reason)
            throw RegistryError.forbidden(reason)
        } catch let AccountStoreError.notOwner(user, package) {
            // Another publisher created the package between the check above and the insert.
            await audit("publish", principal, target: "\(manifest.name)@\(manifest.version)", denied: "\(user) is not an owner of \(package)")
            throw RegistryError.forbidden("\(user) is not an owner of \(package)")
        }
        if submission.state == .published {
            cache.invalidate(manifest.name.canonical)
            do { try await attestPending() } catch {
                logger.error("could not attest; the background sweep tries again", metadata: ["error": "\(error)"])
            }
        }
        await audit("submit", principal, target: "\(manifest.name)@\(manifest.version)", detail: "\(submission.id) sha256:\(digest.hex)")
        logger.info("submitted", metadata: ["package": "\(manifest.name)", "version": "\(manifest.version)", "submission": "\(submission.id)",
                                            "digest": "\(digest)", "publisher": "\(record.publisher)"])
        jobs.wake()
        notices.wake()
        return submission
    }

    // MARK: Reading

    public func package(named name: String) async throws -> (package: PackageRecord, versions: [VersionRecord]) {
        let canonical = try Self.canonical(name)
        // A package whose first version is still in review is not there yet for readers.
        guard let package = try await metadata.package(canonical: canonical) else { throw RegistryError.packageNotFound(name) }
        let versions = VersionResolver.sorted(try await versions(canonical: canonical))
        guard !versions.isEmpty else { throw RegistryError.packageNotFound(name) }
        return (package, versions)
    }

    public func version(_ name: String, _ version: String) async throws -> VersionRecord {
        let canonical = try Self.canonical(name)
        if version == "latest" { return try await resolve(name, "latest", platform: nil) }
        let semantic: SemanticVersion
        do { semantic = try SemanticVersion(version) } catch { throw RegistryError.invalidVersion(version, reason: error.reason) }
        let versions = try await versions(canonical: canonical)
        guard let record = versions.first(where: { $0.semanticVersion == semantic }) else {
            if versions.isEmpty { throw RegistryError.packageNotFound(name) }
            throw RegistryError.versionNotFound(package: name, version: version)
        }
        return record
    }

    /// The version a download means: an exact version (yanked ones included: they still
    /// download by exact version), or `latest`, for a platform when one is given.
    public func resolve(_ name: String, _ version: String, platform: String?) async throws -> VersionRecord {
        if let platform, !VersionResolver.isPlatform(platform) { throw RegistryError.invalidPlatform(platform) }
        let record: VersionRecord
        if version == "latest" {
            let versions = try await versions(canonical: try Self.canonical(name))
            guard !versions.isEmpty else { throw RegistryError.packageNotFound(name) }
            guard let latest = VersionResolver.latest(versions, platform: platform) else {
                throw RegistryError.noPublishedVersion(package: name, platform: platform)
            }
            record = latest
        } else {
            record = try await self.version(name, version)
        }
        if let platform, !VersionResolver.serves(record, platform: platform) {
            throw RegistryError.noBuildForPlatform(package: name, version: record.version, platform: platform)
        }
        return record
    }

    public func search(_ query: String, page: Int, perPage: Int) async throws -> Page<PackageRecord> {
        let (offset, overflow) = max(0, page - 1).multipliedReportingOverflow(by: perPage)
        guard !overflow else { return Page(items: [], total: 0) }
        return try await metadata.searchPackages(query: query, offset: offset, limit: perPage)
    }

    // MARK: Changing versions

    public func setYanked(_ name: String, _ version: String, yanked: Bool, reason: String?, by principal: Principal?) async throws -> VersionRecord {
        let canonical = try Self.canonical(name)
        try await authorize(.yank(package: name), principal, owners: try await organisations.effectiveOwners(package: canonical),
                            target: "\(name)@\(version)")
        guard version != "latest" else { throw RegistryError.invalidVersion(version, reason: "name the exact version to yank") }
        let record = try await self.version(name, version)
        try await metadata.setYanked(canonical: canonical, version: record.version, yanked: yanked, reason: reason)
        cache.invalidate(canonical)
        await audit(yanked ? "yank" : "unyank", principal, target: "\(record.package)@\(record.version)", detail: reason)
        logger.info(yanked ? "yanked" : "unyanked", metadata: ["package": "\(name)", "version": "\(record.version)",
                                                                "by": "\(principal?.name ?? "")"])
        return try await self.version(name, record.version)
    }

    public func setDeprecation(_ name: String, _ version: String, message: String?, by principal: Principal?) async throws -> VersionRecord {
        let canonical = try Self.canonical(name)
        try await authorize(.deprecate(package: name), principal, owners: try await organisations.effectiveOwners(package: canonical),
                            target: "\(name)@\(version)")
        guard version != "latest" else { throw RegistryError.invalidVersion(version, reason: "name the exact version to deprecate") }
        let record = try await self.version(name, version)
        try await metadata.setDeprecation(canonical: canonical, version: record.version, message: message)
        cache.invalidate(canonical)
        await audit(message == nil ? "undeprecate" : "deprecate", principal, target: "\(record.package)@\(record.version)", detail: message)
        return try await self.version(name, record.version)
    }

    /// Every version of a package, from the cache when it is fresh.
    public func versions(canonical: String) async throws -> [VersionRecord] {
        try await cache.versions(canonical) { try await metadata.versions(canonical: canonical) }
    }

    // MARK: Housekeeping

    /// Removes what a crash can leave behind: spooled uploads that never finished, and blobs
    /// that no version refers to (stored just before a crash, or for a refused version).
    public func sweep() async throws -> (temporaryFiles: Int, orphanBlobs: Int) {
        let temporary = try await blobs.sweepTemporaryFiles()
        let referenced = try await metadata.referencedDigests()
        var orphans = 0
        for digest in try await blobs.allDigests() where !referenced.contains(digest) {
            try await blobs.delete(digest)
            orphans += 1
        }
        if temporary > 0 || orphans > 0 {
            logger.notice("swept leftovers", metadata: ["temporary_files": "\(temporary)", "orphan_blobs": "\(orphans)"])
        }
        return (temporary, orphans)
    }

    /// First path segments of the server's own routes: a package so named could not be
    /// downloaded through the L3AFD path.
    public static let reservedNames: Set<String> = ["api", "metrics", "healthz", "readyz", "v2", "openapi", "static"]

    public static func canonical(_ name: String) throws(RegistryError) -> String {
        do { return try PackageName(name).canonical } catch {
            // Look-ups accept any spelling that canonicalises to a valid name (Xdp_Filter finds xdp-filter).
            let canonical = PackageName.canonicalForm(name)
            guard (try? PackageName(canonical)) != nil else { throw .invalidName(name, reason: error.reason) }
            return canonical
        }
    }
}

/// Where the first admin's generated token waits to be picked up.
public final class AdminTokenFile: Sendable {
    private let path = NIOLockedValueBox<String?>(nil)

    public init() {}

    /// The file to remove once the token is used.
    public func set(_ file: String) { path.withLockedValue { $0 = file } }

    /// Removes the file, the first time only; true when it did.
    @discardableResult
    func remove() -> Bool {
        guard let file = path.withLockedValue({ path in defer { path = nil }; return path }) else { return false }
        return (try? FileManager.default.removeItem(atPath: file)) != nil
    }
}
