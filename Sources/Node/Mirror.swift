import Client
import Foundation
import Logging
import PackageFormat
import RegistryAPI
import Signing

/// Copies published packages from the repository into a tree in L3AFD's layout, with their
/// signatures, the repository's attestations and the revocation list, for nodes that cannot
/// reach the repository (`file://` URLs, or the node agent with the tree as its upstream).
public struct Mirror: Sendable {
    public struct Report: Sendable {
        public var written: [PackageTree.Entry] = []
        public var present: [PackageTree.Entry] = []
        public var refused: [(entry: PackageTree.Entry, reason: String)] = []
        public var latest: [(name: String, platform: String, version: String)] = []
    }

    let client: RegistryClient
    let tree: PackageTree
    let platforms: [String]
    let latestOnly: Bool
    /// When set, each package is verified in trusted mode before it is written.
    let trust: NodeTrust?
    let logger: Logger

    public init(client: RegistryClient, tree: PackageTree, platforms: [String], latestOnly: Bool, trust: NodeTrust?, logger: Logger) {
        self.client = client
        self.tree = tree
        self.platforms = platforms
        self.latestOnly = latestOnly
        self.trust = trust
        self.logger = logger
    }

    static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }

    /// Every published package's name.
    func allPackages() async throws -> [String] {
        var names: [String] = [], page = 1
        while true {
            let body = try Self.decoder.decode(PageBody<PackageSummary>.self, from: try await client.get("/api/v1/packages?per_page=100&page=\(page)"))
            names += body.items.map(\.name)
            if body.items.isEmpty || names.count >= body.total { return names }
            page += 1
        }
    }

    /// Mirrors `packages` (every package when empty).
    public func run(packages: [String]) async throws -> Report {
        let incomingDirectory = tree.state.appendingPathComponent("incoming")
        try FileManager.default.createDirectory(at: incomingDirectory, withIntermediateDirectories: true)
        // Downloads a crash interrupted.
        for leftover in (try? FileManager.default.contentsOfDirectory(at: incomingDirectory, includingPropertiesForKeys: nil)) ?? [] {
            try? FileManager.default.removeItem(at: leftover)
        }
        // The revocation list first: a tree is checked against the list it carries.
        do {
            let list = try await client.revocationList()
            if let trust, await !trust.offer(list, from: client.baseURL) {
                throw ClientError("the repository's revocation list does not verify to the trusted root")
            }
            try list.write(to: tree.revocations, options: .atomic)
        } catch let problem as RegistryProblem where problem.code == "signing-not-configured" {
            logger.warning("the repository has no signing authority: the tree carries no revocation list")
        }
        var report = Report()
        var placed: [SHA256Digest: URL] = [:]
        for name in packages.isEmpty ? try await allPackages() : packages {
            let versions = try Self.decoder.decode([VersionSummary].self, from: try await client.get("/api/v1/packages/\(name)/versions"))
            for platform in platforms {
                var wanted = latestOnly ? [] : versions.filter { Self.serves($0, platform: platform) }
                var latest: VersionSummary?
                do {
                    latest = try Self.decoder.decode(VersionSummary.self, from: try await client.get("/api/v1/packages/\(name)/versions/latest?platform=\(platform)"))
                } catch let problem as RegistryProblem where problem.status == 404 {
                    logger.info("no latest version", metadata: ["package": "\(name)", "platform": "\(platform)", "reason": "\(problem.detail)"])
                }
                if let latest, !wanted.contains(where: { $0.version == latest.version }) { wanted.append(latest) }
                var latestWritten = false
                for version in wanted {
                    let entry = PackageTree.Entry(name: version.name, version: version.version, platform: platform, artifact: version.artifact)
                    // What the repository says becomes paths in the tree: each a plain segment of its kind.
                    if let problem = PackageTree.problem(name: entry.name, version: entry.version, platform: platform, artifact: entry.artifact) {
                        throw ClientError("the repository listed \(entry.name) \(entry.version) \(entry.artifact): \(problem)")
                    }
                    let digest = SHA256Digest(hex: String(version.sha256.dropFirst("sha256:".count)))
                    if let existing = try? TrustedVerification.sha256(of: tree.archive(entry)), existing == digest {
                        // The archive is there; its documents are brought up to date (the
                        // repository attests again when its attestation key changes).
                        try await refreshDocuments(entry)
                        report.present.append(entry)
                        placed[digest] = tree.archive(entry)
                        if version.version == latest?.version { latestWritten = true }
                        continue
                    }
                    let incoming = tree.state.appendingPathComponent("incoming").appendingPathComponent(UUID().uuidString)
                    defer { try? FileManager.default.removeItem(at: incoming) }
                    if let copy = placed[digest], (try? FileManager.default.linkItem(at: copy, to: incoming)) != nil {
                        // The same archive serves another platform: linked, not fetched again.
                    } else {
                        _ = try await client.download("/\(entry.name)/\(entry.version)/\(platform)/\(entry.artifact)", to: incoming.path, expected: digest)
                    }
                    let signature = try await client.signature(entry.name, entry.version)
                    let attestation = try await client.attestation(entry.name, entry.version)
                    if let trust {
                        do {
                            _ = try await TrustedVerification.verify(archive: incoming, expected: (entry.name, entry.version), signature: signature,
                                                                     attestation: attestation, anchors: try await trust.anchors())
                        } catch {
                            report.refused.append((entry, error.reason))
                            logger.error("not mirrored", metadata: ["package": "\(entry.name)", "version": "\(entry.version)", "reason": "\(error.reason)"])
                            continue
                        }
                    }
                    try tree.place(entry, archive: incoming, signature: signature, attestation: attestation)
                    placed[digest] = tree.archive(entry)
                    report.written.append(entry)
                    if version.version == latest?.version { latestWritten = true }
                }
                if let latest, latestWritten {
                    try tree.setLatest(of: latest.name, platform: platform, to: latest.version)
                    report.latest.append((latest.name, platform, latest.version))
                }
            }
        }
        return report
    }

    /// Rewrites an archive's signature and attestation when the repository's differ.
    func refreshDocuments(_ entry: PackageTree.Entry) async throws {
        for (data, file) in [(try await client.signature(entry.name, entry.version), tree.signature(entry)),
                             (try await client.attestation(entry.name, entry.version), tree.attestation(entry))] {
            guard let data, (try? Data(contentsOf: file)) != data else { continue }
            try data.write(to: file, options: .atomic)
        }
    }

    /// Whether a version's build serves an L3AFD platform (a codename, or Windows).
    static func serves(_ version: VersionSummary, platform: String) -> Bool {
        version.platforms.contains(platform) || (platform != ManifestVocabulary.windows && version.platforms.contains(ManifestVocabulary.anyLinux))
    }
}

/// `epr verify-tree`: every archive of a tree checked as a node in trusted mode would.
public enum TreeVerification {
    public struct Outcome: Sendable {
        public var entry: PackageTree.Entry
        public var refusal: VerificationRefusal?
        public var signer: String?
    }

    public static func verify(_ tree: PackageTree, trust: NodeTrust) async -> [Outcome] {
        var outcomes: [Outcome] = []
        for entry in tree.entries() {
            let documents = tree.documents(entry)
            do {
                let anchors = try await trust.anchors()
                let result = try await TrustedVerification.verify(archive: tree.archive(entry), expected: (entry.name, entry.version),
                                                                  signature: documents.signature, attestation: documents.attestation, anchors: anchors)
                outcomes.append(Outcome(entry: entry, refusal: nil, signer: result.signer))
            } catch {
                outcomes.append(Outcome(entry: entry, refusal: error, signer: nil))
            }
        }
        return outcomes
    }
}
