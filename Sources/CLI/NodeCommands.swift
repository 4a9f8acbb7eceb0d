import ArgumentParser
import Client
import Foundation
import Logging
import Node
import PackageFormat
import ServiceLifecycle
import Signing
import X509

/// Trusted-mode options shared by the node commands.
struct TrustOptions: ParsableArguments {
    @Option(help: "The repository's root certificate(s) (PEM): packages must be signed under it and attested by the repository (EPR_TRUSTED_ROOT).")
    var trustedRoot: String?

    @Option(help: "The repository whose attestations count (its repository_name); any under the root when not given (EPR_TRUSTED_REPOSITORY).")
    var repository: String?

    var trustedRepository: String? {
        repository ?? ProcessInfo.processInfo.environment["EPR_TRUSTED_REPOSITORY"].flatMap { $0.isEmpty ? nil : $0 }
    }

    func roots() throws -> [Certificate]? {
        guard let path = trustedRoot ?? ProcessInfo.processInfo.environment["EPR_TRUSTED_ROOT"].flatMap({ $0.isEmpty ? nil : $0 }) else { return nil }
        do { return try TrustRoot.certificates(pem: String(contentsOfFile: path, encoding: .utf8)) } catch {
            throw ValidationError("the trusted root \(path) cannot be read: \(error)")
        }
    }
}

/// `epr agent`: the node agent L3AFD downloads from.
struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent", abstract: "Serve L3AFD's download paths on this node, from the repository (or a mirror), verifying in trusted mode.",
        discussion: """
            Point L3AFD's ebpf_package_repo_url at http://HOST:PORT. In trusted mode a package is served only when it is signed by a key \
            certified under the trusted root for that package, not revoked, attested by the repository, and exactly what was signed; \
            latest never goes back to an older version than one served before. Refusals are 403 with the reason, also logged. \
            In normal mode nothing is verified: the operator takes responsibility. Verified packages are kept in the cache and served \
            from it while the repository cannot be reached.
            """)
    @Option(help: "The repository URL (http(s)://...), or a mirror tree (file:///path or a directory).") var upstream: String
    @Option(help: "The cache directory.") var cache: String
    @Option(help: "trusted or normal.") var mode: TrustMode
    @OptionGroup var trust: TrustOptions
    @Option(help: "The address to listen on.") var host = "127.0.0.1"
    @Option(help: "The port to listen on.") var port = 8181
    @Option(help: "Seconds between fetches of the revocation list.") var revocationRefresh = 300
    @Option(help: "PEM certificates of the authorities to trust for an https repository (EPR_CA_BUNDLE).") var caBundle: String?
    @Option(help: "trace, debug, info, notice, warning, error or critical.") var logLevel = "info"

    func validate() throws {
        if mode == .trusted, try trust.roots() == nil { throw ValidationError("trusted mode needs --trusted-root") }
        guard (1...86400).contains(revocationRefresh) else { throw ValidationError("--revocation-refresh is 1 to 86400 seconds") }
    }

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = JSONLogHandler(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "epr-agent")
        let source = try NodeUpstream.resolve(upstream, caBundle: caBundle)
        let cacheURL = URL(fileURLWithPath: cache)
        var nodeTrust: NodeTrust?
        if mode == .trusted, let roots = try trust.roots() {
            nodeTrust = await NodeTrust(roots: roots, repository: trust.trustedRepository, file: PackageTree(root: cacheURL).revocations, logger: logger)
        } else {
            logger.warning("normal mode: packages are served without verification; the operator takes responsibility for what runs")
        }
        let agent = try NodeAgent(upstream: source, cache: cacheURL, mode: mode, trust: nodeTrust,
                                  revocationRefresh: TimeInterval(revocationRefresh), logger: logger)
        let application = AgentServer.application(agent: agent, host: host, port: port, logger: logger) { bound in
            logger.notice("agent listening", metadata: ["address": "\(host):\(bound)", "upstream": "\(source.description)", "mode": "\(mode.rawValue)"])
        }
        let group = ServiceGroup(configuration: .init(services: [application], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
    }
}

extension TrustMode: ExpressibleByArgument {}

enum NodeUpstream {
    /// An http(s) URL is the repository; a file:// URL or a path is a mirror tree.
    static func resolve(_ text: String, caBundle: String?) throws -> Upstream {
        if text.hasPrefix("http://") || text.hasPrefix("https://") {
            let bundle = caBundle ?? ProcessInfo.processInfo.environment["EPR_CA_BUNDLE"].flatMap { $0.isEmpty ? nil : $0 }
            guard let bundle else { return .registry(RegistryClient(baseURL: text, token: nil)) }
            do { return .registry(RegistryClient(baseURL: text, token: nil, http: try HTTPClients.trusting(bundle: bundle))) } catch {
                throw ValidationError("the CA bundle \(bundle) cannot be used: \(error)")
            }
        }
        let path = text.hasPrefix("file://") ? String(text.dropFirst("file://".count)) : text
        return .tree(PackageTree(root: URL(fileURLWithPath: path)))
    }
}

/// `epr mirror --to DIR`: a file:// tree for air-gapped nodes.
struct MirrorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "mirror",
        abstract: "Copy published packages into a directory in L3AFD's layout (<name>/<version>/<codename>/<artifact>), with signatures and attestations.",
        discussion: "Run again to bring the tree up to date: archives already there are kept. With --trusted-root, only packages that verify are written.")
    @Option(help: "The tree's directory.") var to: String
    @Option(help: "A package to mirror; repeat for more (default: every package).") var package: [String] = []
    @Option(help: "A platform (distribution codename, or Windows) to lay out; repeat for more.") var platform: [String] = []
    @Flag(help: "Only the version latest resolves to (default: every version).") var latestOnly = false
    @OptionGroup var trust: TrustOptions
    @OptionGroup var options: ClientOptions

    func validate() throws {
        guard !platform.isEmpty else { throw ValidationError("name the platforms the nodes run (--platform jammy ...)") }
        for name in platform where PackageTree.problem(name: "a", version: "latest", platform: name, artifact: "a.tar.gz") != nil {
            throw ValidationError("\(name) is not a platform")
        }
    }

    func run() async throws {
        let client = try options.client()
        var logger = Logger(label: "epr-mirror")
        logger.logLevel = .warning
        let tree = PackageTree(root: URL(fileURLWithPath: to))
        var nodeTrust: NodeTrust?
        if let roots = try trust.roots() {
            nodeTrust = await NodeTrust(roots: roots, repository: trust.trustedRepository, file: tree.state.appendingPathComponent("verified-revocations.json"),
                                        logger: logger)
        }
        let mirror = Mirror(client: client, tree: tree, platforms: platform, latestOnly: latestOnly, trust: nodeTrust, logger: logger)
        let report = try await reportingProblems { try await mirror.run(packages: package) }
        if options.json {
            try Output.json(["written": report.written.count, "present": report.present.count, "refused": report.refused.count])
        } else {
            for entry in report.written { Output.line("wrote \(entry.name)/\(entry.version)/\(entry.platform)/\(entry.artifact)") }
            for (name, platform, version) in report.latest { Output.line("latest \(name)/\(platform) -> \(version)") }
            for (entry, reason) in report.refused { Output.error("refused \(entry.name) \(entry.version): \(reason)") }
            Output.line("\(report.written.count) written, \(report.present.count) already there, \(report.refused.count) refused")
        }
        if !report.refused.isEmpty { throw ReportedFailure() }
    }
}

/// `epr verify-tree DIR`: every archive of a tree, as a node in trusted mode would check it.
struct VerifyTreeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify-tree", abstract: "Verify every package of a tree in L3AFD's layout in trusted mode; exits 1 if any fails.")
    @Argument(help: "The tree's directory.") var directory: String
    @OptionGroup var trust: TrustOptions
    @Option(help: "The revocation list (default: DIR/.epr/revocations.json).") var revocations: String?
    @Flag(help: "Print the results as JSON.") var json = false

    func run() async throws {
        guard let roots = try trust.roots() else { throw ValidationError("give --trusted-root") }
        let tree = PackageTree(root: URL(fileURLWithPath: directory))
        var logger = Logger(label: "epr-verify-tree")
        logger.logLevel = .warning
        // The list is only read here: a scratch file keeps the tree as it is.
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("epr-verify-tree-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let nodeTrust = await NodeTrust(roots: roots, repository: trust.trustedRepository, file: scratch, logger: logger)
        let listFile = revocations.map { URL(fileURLWithPath: $0) } ?? tree.revocations
        if let data = try? Data(contentsOf: listFile) { await nodeTrust.offer(data, from: listFile.path) }
        let outcomes = await TreeVerification.verify(tree, trust: nodeTrust)
        let failed = outcomes.filter { $0.refusal != nil }
        if json {
            try Output.json(outcomes.map { outcome -> [String: String] in
                var item = ["path": "\(outcome.entry.name)/\(outcome.entry.version)/\(outcome.entry.platform)/\(outcome.entry.artifact)",
                            "verified": outcome.refusal == nil ? "true" : "false"]
                if let refusal = outcome.refusal { item["check"] = refusal.link.rawValue; item["reason"] = refusal.reason }
                if let signer = outcome.signer { item["signer"] = signer }
                return item
            })
        } else {
            for outcome in outcomes {
                let path = "\(outcome.entry.name)/\(outcome.entry.version)/\(outcome.entry.platform)/\(outcome.entry.artifact)"
                if let refusal = outcome.refusal { Output.line("FAIL \(path): \(refusal.reason) [\(refusal.link.rawValue)]") } else {
                    Output.line("ok   \(path) (signed by \(outcome.signer ?? "?"))")
                }
            }
            Output.line("\(outcomes.count - failed.count) of \(outcomes.count) verified")
        }
        if !failed.isEmpty || outcomes.isEmpty { throw ReportedFailure() }
    }
}
