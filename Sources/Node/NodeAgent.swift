import Client
import Foundation
import Logging
import NIOCore
import PackageFormat
import RegistryAPI
import Signing

/// Where the node agent takes packages from: the repository's API, or a tree in L3AFD's layout
/// (a mirror carried to an air-gapped node).
public enum Upstream: Sendable {
    case registry(RegistryClient)
    case tree(PackageTree)

    public var description: String {
        switch self {
        case let .registry(client): client.baseURL
        case let .tree(tree): tree.root.absoluteString
        }
    }
}

/// The node agent: answers L3AFD's downloads (`/<name>/<version>/<codename>/<artifact>`) from
/// its cache, filled from upstream. In trusted mode it keeps and serves only packages that
/// verify to its roots (signature, certificate, revocation, attestation, digests), and never
/// serves an older version for `latest` than one it served before; in normal mode it verifies
/// nothing and says so. When upstream cannot be reached it serves what it has.
public actor NodeAgent {
    public struct Served: Sendable {
        public var file: URL
        public var version: String
        public var digest: SHA256Digest
        public var size: Int64
        /// Set in normal mode: what the operator is taking on.
        public var warning: String?
    }

    /// A request the agent does not answer with a package: its HTTP status, a stable code and why.
    public struct Refused: Error, CustomStringConvertible, Sendable {
        public var status: Int
        public var code: String
        public var reason: String
        public var description: String { reason }
    }

    let upstream: Upstream
    let cache: PackageTree
    let mode: TrustMode
    let trust: NodeTrust?
    let logger: Logger
    let revocationRefresh: TimeInterval
    var revocationsFetchedAt: Date?
    /// Per `name/platform`: the highest version served for `latest`.
    var served: [String: String]
    /// Archives verified, by path, with the size, change time and revocation list they were
    /// verified with: checked again when any of them changes.
    var verified: [String: (size: Int64, modified: Date, sequence: Int, at: Date, result: VerifiedPackage)] = [:]
    /// How long a verification counts before it is made again (certificates and attestations
    /// expire).
    static let verificationLifetime: TimeInterval = 60
    var warned: Set<String> = []
    /// After the repository failed to answer, it is not asked again until then (requests are
    /// answered from the cache meanwhile, without waiting on it).
    var upstreamDownUntil: Date?
    /// How long the repository gets to answer a question, and how long it is left alone after
    /// it did not.
    static let upstreamTimeout: Int64 = 10
    static let upstreamPause: TimeInterval = 30

    public init(upstream: Upstream, cache: URL, mode: TrustMode, trust: NodeTrust?, revocationRefresh: TimeInterval = 300, logger: Logger) throws {
        precondition(mode == .normal || trust != nil, "trusted mode needs roots")
        self.upstream = upstream
        self.cache = PackageTree(root: cache)
        self.mode = mode
        self.trust = trust
        self.logger = logger
        self.revocationRefresh = revocationRefresh
        try FileManager.default.createDirectory(at: self.cache.state.appendingPathComponent("incoming"), withIntermediateDirectories: true,
                                                attributes: [.posixPermissions: 0o700])
        // What was served for `latest` is what rollback protection stands on: a record that
        // exists but cannot be read stops the agent rather than being forgotten.
        let record = self.cache.state.appendingPathComponent("served.json")
        if FileManager.default.fileExists(atPath: record.path) {
            do { served = try JSONDecoder().decode([String: String].self, from: Data(contentsOf: record)) } catch {
                throw Refused(status: 500, code: "state-unreadable", reason: "\(record.path) cannot be read (\(error)); restore it, or remove it to forget what was served")
            }
        } else {
            served = [:]
        }
        // Downloads a crash interrupted.
        for leftover in (try? FileManager.default.contentsOfDirectory(at: self.cache.state.appendingPathComponent("incoming"), includingPropertiesForKeys: nil)) ?? [] {
            try? FileManager.default.removeItem(at: leftover)
        }
    }

    enum Resolution {
        case version(String, SHA256Digest?)
        case notFound(Int, String, String)
        case unreachable(String)
    }

    /// Answers one L3AFD download.
    public func fetch(name: String, version: String, platform: String, artifact: String) async throws(Refused) -> Served {
        if let problem = PackageTree.problem(name: name, version: version, platform: platform, artifact: artifact) {
            throw Refused(status: 400, code: "invalid-path", reason: problem)
        }
        if mode == .trusted { await refreshRevocations() }
        let key = "\(name)/\(platform)"
        var resolved: String
        var digest: SHA256Digest?
        var reachable = true
        let cachedExact = version != "latest" && FileManager.default.fileExists(
            atPath: cache.archive(.init(name: name, version: version, platform: platform, artifact: artifact)).path)
        if cachedExact {
            // A version is immutable: the copy kept is the one.
            resolved = version
        } else {
            switch await resolve(name: name, version: version, platform: platform, artifact: artifact) {
            case let .version(found, announced):
                resolved = found
                digest = announced
            case let .notFound(status, code, reason):
                throw Refused(status: status, code: code, reason: reason)
            case let .unreachable(reason):
                reachable = false
                logger.warning("upstream unreachable; serving from the cache", metadata: ["upstream": "\(upstream.description)", "error": "\(reason)"])
                let floor = served[key].flatMap { try? SemanticVersion($0) }
                let candidates = version == "latest"
                    ? cache.versions(of: name, platform: platform, artifact: artifact).filter { candidate in candidate.prerelease.isEmpty && (floor.map { candidate >= $0 } ?? true) }.map(\.description)
                    : []
                guard let cached = candidates.first else {
                    throw Refused(status: 503, code: "upstream-unreachable",
                                  reason: "the repository cannot be reached (\(reason)) and the cache holds no \(name) \(version) for \(platform)")
                }
                resolved = cached
            }
        }
        var rollback: String?
        if version == "latest", let floor = served[key], let before = try? SemanticVersion(floor), let now = try? SemanticVersion(resolved), now < before {
            let reason = "latest of \(name) for \(platform) is now \(resolved), but \(floor) was served before"
            guard mode == .normal else {
                logger.error("refused", metadata: ["package": "\(name)", "version": "\(resolved)", "platform": "\(platform)", "check": "rollback",
                                                   "reason": "\(reason)"])
                throw Refused(status: 403, code: "rollback", reason: "rollback refused in trusted mode: \(reason)")
            }
            logger.warning("rollback served in normal mode", metadata: ["package": "\(name)", "version": "\(resolved)", "reason": "\(reason)"])
            rollback = "a rollback: \(reason)"
        }
        let entry = PackageTree.Entry(name: name, version: resolved, platform: platform, artifact: artifact)
        if reachable, !FileManager.default.fileExists(atPath: cache.archive(entry).path) {
            try await download(entry, digest: digest)
        }
        var result = try await check(entry)
        if version == "latest" {
            // Checked again after every wait above: another request may have served a newer
            // version meanwhile.
            if mode == .trusted, let floor = served[key], let before = try? SemanticVersion(floor), let now = try? SemanticVersion(resolved), now < before {
                throw Refused(status: 403, code: "rollback", reason: "rollback refused in trusted mode: \(floor) of \(name) was served for latest meanwhile")
            }
            try remember(key, resolved)
        }
        if let rollback { result.warning = (result.warning.map { $0 + "; " } ?? "") + rollback }
        return result
    }

    /// Verifies (trusted) or just describes (normal) a cached archive.
    func check(_ entry: PackageTree.Entry) async throws(Refused) -> Served {
        let file = cache.archive(entry)
        let attributes = try? FileManager.default.attributesOfItem(atPath: file.path)
        // Only regular files the agent wrote itself: a link could lead anywhere.
        if let type = attributes?[.type] as? FileAttributeType, type != .typeRegular {
            throw Refused(status: 500, code: "cache-invalid", reason: "\(file.path) is not a regular file")
        }
        let size = (attributes?[.size] as? NSNumber)?.int64Value ?? 0
        let modified = attributes?[.modificationDate] as? Date ?? Date.distantPast
        switch mode {
        case .normal:
            let digest: SHA256Digest
            do { digest = try TrustedVerification.sha256(of: file) } catch {
                throw Refused(status: 404, code: "not-cached", reason: "\(entry.name) \(entry.version) is not in the cache")
            }
            let warning = "normal mode: \(entry.name) \(entry.version) is served without verification"
            if warned.insert(file.path).inserted { logger.warning("served unverified", metadata: ["package": "\(entry.name)", "version": "\(entry.version)", "mode": "normal"]) }
            return Served(file: file, version: entry.version, digest: digest, size: size, warning: warning)
        case .trusted:
            let anchors: TrustAnchors
            do { anchors = try await trust!.anchors() } catch { throw refuse(entry, error) }
            let sequence = anchors.revocations?.sequence ?? 0
            if let memo = verified[file.path], memo.size == size, memo.modified == modified, memo.sequence == sequence,
               Date().timeIntervalSince(memo.at) < Self.verificationLifetime {
                return Served(file: file, version: entry.version, digest: memo.result.digest, size: size)
            }
            do {
                let result = try await verifyCached(entry, file: file, anchors: anchors)
                verified[file.path] = (size, modified, sequence, Date(), result)
                return Served(file: file, version: entry.version, digest: result.digest, size: size)
            } catch {
                verified[file.path] = nil
                throw refuse(entry, error)
            }
        }
    }

    /// Verifies a cached archive with its documents. When they no longer verify (the
    /// repository attested again with a new key, say), the documents are fetched once more from
    /// upstream, if it answers, and checked again; the archive itself is never replaced.
    func verifyCached(_ entry: PackageTree.Entry, file: URL, anchors: TrustAnchors) async throws(VerificationRefusal) -> VerifiedPackage {
        let documents = cache.documents(entry)
        do {
            return try await TrustedVerification.verify(archive: file, expected: (entry.name, entry.version), signature: documents.signature,
                                                        attestation: documents.attestation, anchors: anchors)
        } catch {
            guard [.attestationUntrusted, .attestationMissing, .attestationMismatch, .untrusted].contains(error.link),
                  let fresh = await upstreamDocuments(entry) else { throw error }
            let result = try await TrustedVerification.verify(archive: file, expected: (entry.name, entry.version), signature: fresh.signature,
                                                              attestation: fresh.attestation, anchors: anchors)
            for (data, destination) in [(fresh.signature, cache.signature(entry)), (fresh.attestation, cache.attestation(entry))] {
                if let data { try? data.write(to: destination, options: .atomic) }
            }
            logger.info("documents renewed", metadata: ["package": "\(entry.name)", "version": "\(entry.version)"])
            return result
        }
    }

    /// The signature and attestation upstream has for a version, when it answers.
    func upstreamDocuments(_ entry: PackageTree.Entry) async -> (signature: Data?, attestation: Data?)? {
        switch upstream {
        case let .registry(client):
            if let until = upstreamDownUntil, until > Date() { return nil }
            do { return (try await client.signature(entry.name, entry.version), try await client.attestation(entry.name, entry.version)) } catch {
                upstreamDownUntil = Date().addingTimeInterval(Self.upstreamPause)
                return nil
            }
        case let .tree(tree):
            guard FileManager.default.fileExists(atPath: tree.archive(entry).path) else { return nil }
            return tree.documents(entry)
        }
    }

    func refuse(_ entry: PackageTree.Entry, _ refusal: VerificationRefusal) -> Refused {
        logger.error("refused", metadata: ["package": "\(entry.name)", "version": "\(entry.version)", "platform": "\(entry.platform)",
                                           "check": "\(refusal.link.rawValue)", "reason": "\(refusal.reason)"])
        return Refused(status: 403, code: "untrusted-\(refusal.link.rawValue)", reason: "\(entry.name) \(entry.version) refused in trusted mode: \(refusal.reason)")
    }

    /// Records the highest version served for `latest`; in trusted mode nothing is served that
    /// could not be recorded.
    func remember(_ key: String, _ version: String) throws(Refused) {
        if let floor = served[key], let before = try? SemanticVersion(floor), let now = try? SemanticVersion(version), now <= before { return }
        var next = served
        next[key] = version
        do {
            try JSONEncoder().encode(next).write(to: cache.state.appendingPathComponent("served.json"), options: .atomic)
            served = next
        } catch {
            logger.error("cannot record the versions served", metadata: ["error": "\(error)"])
            guard mode == .normal else {
                throw Refused(status: 500, code: "state-unwritable", reason: "what is served cannot be recorded, so rollbacks could not be refused: \(error)")
            }
            served = next
        }
    }

    // MARK: Upstream

    func resolve(name: String, version: String, platform: String, artifact: String) async -> Resolution {
        switch upstream {
        case let .registry(client):
            if let until = upstreamDownUntil, until > Date() { return .unreachable("it did not answer recently; asking again after \(until.formatted(.iso8601))") }
            do {
                let data = try await client.get("/api/v1/packages/\(name)/versions/\(version)?platform=\(platform)", timeout: .seconds(Self.upstreamTimeout))
                upstreamDownUntil = nil
                let decoder = JSONDecoder()
                decoder.dateDecodingStrategy = .iso8601
                let summary = try decoder.decode(VersionSummary.self, from: data)
                guard summary.artifact == artifact else {
                    return .notFound(404, "artifact-mismatch", "the artifact of \(name) \(summary.version) is \(summary.artifact), not \(artifact)")
                }
                // What upstream says becomes a path in the cache: only a version, nothing else.
                guard summary.version != "latest", PackageTree.problem(name: name, version: summary.version, platform: platform, artifact: artifact) == nil else {
                    return .notFound(502, "upstream-invalid", "the repository answered with \"\(summary.version)\", which is not a version")
                }
                return .version(summary.version, SHA256Digest(hex: String(summary.sha256.dropFirst("sha256:".count))))
            } catch let problem as RegistryProblem where (400..<500).contains(problem.status) && problem.status != 429 {
                upstreamDownUntil = nil
                return .notFound(problem.status, problem.code, problem.detail)
            } catch {
                upstreamDownUntil = Date().addingTimeInterval(Self.upstreamPause)
                return .unreachable("\(error)")
            }
        case let .tree(tree):
            guard FileManager.default.fileExists(atPath: tree.root.path) else { return .unreachable("\(tree.root.path) is not there") }
            if version == "latest" {
                guard let found = tree.latestLink(of: name, platform: platform)
                        ?? tree.versions(of: name, platform: platform, artifact: artifact).first(where: { $0.prerelease.isEmpty })?.description else {
                    return .notFound(404, "no-published-version", "the tree holds no version of \(name) for \(platform)")
                }
                return .version(found, nil)
            }
            guard FileManager.default.fileExists(atPath: tree.archive(.init(name: name, version: version, platform: platform, artifact: artifact)).path) else {
                return .notFound(404, "version-not-found", "the tree holds no \(name) \(version) for \(platform)")
            }
            return .version(version, nil)
        }
    }

    /// Brings an archive and its documents into the cache; in trusted mode only once they verify.
    func download(_ entry: PackageTree.Entry, digest: SHA256Digest?) async throws(Refused) {
        let incoming = cache.state.appendingPathComponent("incoming").appendingPathComponent(UUID().uuidString)
        defer { try? FileManager.default.removeItem(at: incoming) }
        var signature: Data?, attestation: Data?
        do {
            switch upstream {
            case let .registry(client):
                _ = try await client.download("/\(entry.name)/\(entry.version)/\(entry.platform)/\(entry.artifact)", to: incoming.path, expected: digest)
                signature = try await client.signature(entry.name, entry.version)
                attestation = try await client.attestation(entry.name, entry.version)
            case let .tree(tree):
                // Contents only: a link in the tree is not followed out of it, nor copied as a link.
                guard (try? FileManager.default.attributesOfItem(atPath: tree.archive(entry).path))?[.type] as? FileAttributeType == .typeRegular else {
                    throw Refused(status: 502, code: "upstream-invalid", reason: "\(tree.archive(entry).path) is not a regular file")
                }
                try FileManager.default.copyItem(at: tree.archive(entry), to: incoming)
                (signature, attestation) = tree.documents(entry)
            }
        } catch let refused as Refused {
            throw refused
        } catch {
            throw Refused(status: 502, code: "upstream-failed", reason: "\(entry.name) \(entry.version) could not be fetched: \(error)")
        }
        if mode == .trusted {
            let anchors: TrustAnchors
            do { anchors = try await trust!.anchors() } catch { throw refuse(entry, error) }
            do {
                _ = try await TrustedVerification.verify(archive: incoming, expected: (entry.name, entry.version), signature: signature,
                                                         attestation: attestation, anchors: anchors)
            } catch {
                throw refuse(entry, error)
            }
        }
        do { try cache.place(entry, archive: incoming, signature: signature, attestation: attestation) } catch {
            throw Refused(status: 500, code: "cache-failed", reason: "cannot write to the cache: \(error)")
        }
        logger.info("cached", metadata: ["package": "\(entry.name)", "version": "\(entry.version)", "platform": "\(entry.platform)", "mode": "\(mode.rawValue)"])
    }

    /// Fetches the signing authority's revocation list when the one kept is due for a refresh.
    func refreshRevocations(now: Date = Date()) async {
        guard let trust else { return }
        if let last = revocationsFetchedAt, now.timeIntervalSince(last) < revocationRefresh { return }
        revocationsFetchedAt = now
        switch upstream {
        case let .registry(client):
            if let until = upstreamDownUntil, until > now { return }
            do { await trust.offer(try await client.revocationList(timeout: .seconds(Self.upstreamTimeout)), from: client.baseURL) } catch {
                upstreamDownUntil = now.addingTimeInterval(Self.upstreamPause)
                logger.warning("cannot fetch the revocation list", metadata: ["upstream": "\(client.baseURL)", "error": "\(error)"])
            }
        case let .tree(tree):
            if let data = try? Data(contentsOf: tree.revocations) { await trust.offer(data, from: tree.revocations.path) }
        }
    }
}
