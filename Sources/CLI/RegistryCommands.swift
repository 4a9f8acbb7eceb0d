import ArgumentParser
import Client
import Foundation
import Logging
import Node
import PackageFormat
import RegistryAPI
import Signing
import X509

extension Data {
    func decoded<T: Decodable>(_ type: T.Type) throws -> T { try APICoding.decoder.decode(type, from: self) }
    func printJSON() { FileHandle.standardOutput.write(self + Data("\n".utf8)) }
}

struct PublishCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "publish", abstract: "Submit a package archive for checks and review.",
        discussion: "The version is published once the automated checks pass and reviewers approve it (or at once after the checks, for publishers allowed to auto-publish).")
    @Argument(help: "The package archive (<artifact>.tar.gz), as written by epr package.") var file: String
    @Option(help: "Seconds to wait for the automated checks before answering (0: answer at once).") var wait = 300
    @Option(help: "The signature to send along (default: FILE.sig when it exists).") var signature: String?
    @OptionGroup var options: ClientOptions

    func run() async throws {
        let client = try options.client()
        let signaturePath = signature ?? (FileManager.default.fileExists(atPath: file + ".sig") ? file + ".sig" : nil)
        let envelope = try signaturePath.map { path in
            do { return try Data(contentsOf: URL(fileURLWithPath: path)) } catch { throw ValidationError("cannot read the signature \(path): \(error)") }
        }
        let progress = ProgressLine(label: "uploading")
        let data = try await reportingProblems {
            try await client.publish(file: file, signature: envelope, wait: max(0, wait), progress: options.json ? nil : progress.update)
        }
        progress.finish()
        if options.json { data.printJSON(); return }
        let detail = try data.decoded(SubmissionDetail.self)
        let submission = detail.submission
        let verb = submission.state == "published" ? "published" : "submitted"
        Output.line("\(verb) \(submission.name)@\(submission.version) as \(submission.id) (\(submission.sha256), \(submission.size) bytes)")
        Output.line("state: \(submission.state)" + (submission.reason.map { ": \($0)" } ?? ""))
        Output.line(ReviewText.checks(detail.checks))
    }
}

struct DownloadCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "download", abstract: "Download a package archive.",
        discussion: "With --verify, the archive is kept only if it verifies in trusted mode (signature, certificate, revocation, the repository's attestation, digests); its signature and attestation are written beside it.")
    @Argument(help: "NAME or NAME@VERSION (default: latest).") var package: PackageReference
    @Option(help: "Download the build for this platform (a codename such as jammy, or Windows), as L3AFD does.") var platform: String?
    @Option(name: .shortAndLong, help: "The directory to write <artifact> into (default: the current directory).") var output = "."
    @Flag(help: "Verify in trusted mode against --trusted-root before keeping the archive.") var verify = false
    @OptionGroup var trust: TrustOptions
    @OptionGroup var options: ClientOptions

    func validate() throws {
        if verify, try trust.roots() == nil { throw ValidationError("--verify needs --trusted-root (or EPR_TRUSTED_ROOT): the root to verify against") }
    }

    func run() async throws {
        let client = try options.client()
        let version = package.version ?? "latest"
        // Resolve first (for the platform, when given), so the download is checked against the
        // digest of exactly the version it is.
        let query = platform.map { "?platform=\($0)" } ?? ""
        let info = try await reportingProblems {
            try await client.get("/api/v1/packages/\(package.name)/versions/\(version)\(query)").decoded(VersionSummary.self)
        }
        guard info.artifact.hasSuffix(".tar.gz"), !info.artifact.contains("/"), !info.artifact.hasPrefix(".") else {
            throw ClientError("the registry names the artifact \(info.artifact), which is not a plain .tar.gz file name")
        }
        // With a platform, download exactly as L3AFD would.
        let path = platform.map { "/\(package.name)/\(info.version)/\($0)/\(info.artifact)" }
            ?? "/api/v1/packages/\(package.name)/versions/\(info.version)/download"
        let destination = URL(fileURLWithPath: output).appendingPathComponent(info.artifact).path
        // With --verify, the archive takes its place only once it verified.
        let target = verify ? URL(fileURLWithPath: output).appendingPathComponent(".\(info.artifact).\(UUID().uuidString).unverified").path : destination
        defer { if verify { try? FileManager.default.removeItem(atPath: target) } }
        let progress = ProgressLine(label: info.artifact)
        let digest = try await reportingProblems {
            try await client.download(path, to: target, expected: SHA256Digest(hex: String(info.sha256.dropFirst(7))),
                                      progress: options.json ? nil : progress.update)
        }
        progress.finish()
        var signer: String?
        if verify, let roots = try trust.roots() {
            signer = try await verified(target, info: info, roots: roots, repository: trust.trustedRepository, client: client, destination: destination)
        } else if !options.json {
            Output.error("warning: \(info.name)@\(info.version) was not verified (normal mode); --verify --trusted-root ROOT checks it")
        }
        if options.json {
            var result = ["path": destination, "name": info.name, "version": info.version, "sha256": digest.description,
                          "verified": signer == nil ? "false" : "true"]
            if let signer { result["signer"] = signer }
            try Output.json(result)
        } else {
            if let deprecated = info.deprecated { Output.error("warning: \(info.name)@\(info.version) is deprecated: \(deprecated)") }
            Output.line("downloaded \(info.name)@\(info.version) -> \(destination) (\(digest))" + (signer.map { ", verified: signed by \($0), attested by the repository" } ?? ""))
        }
    }

    /// Verifies the downloaded archive in trusted mode; once it verifies, moves it to
    /// `destination` with its signature and attestation beside it. Fails, naming the check, when
    /// it does not verify (whatever was at `destination` stays).
    func verified(_ file: String, info: VersionSummary, roots: [Certificate], repository: String?, client: RegistryClient,
                  destination: String) async throws -> String {
        let signatureData = try await reportingProblems { try await client.signature(info.name, info.version) }
        let attestationData = try await reportingProblems { try await client.attestation(info.name, info.version) }
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("epr-revocations-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: scratch) }
        var logger = Logger(label: "epr-download")
        logger.logLevel = .warning
        let trust = await NodeTrust(roots: roots, repository: repository, file: scratch, logger: logger)
        if let list = try? await client.revocationList() { await trust.offer(list, from: client.baseURL) }
        do {
            let anchors = try await trust.anchors()
            let result = try await TrustedVerification.verify(archive: URL(fileURLWithPath: file), expected: (info.name, info.version),
                                                              signature: signatureData, attestation: attestationData, anchors: anchors)
            for (data, suffix) in [(signatureData, PackageTree.signatureSuffix), (attestationData, PackageTree.attestationSuffix)] {
                if let data { try data.write(to: URL(fileURLWithPath: destination + suffix), options: .atomic) } else {
                    try? FileManager.default.removeItem(atPath: destination + suffix)
                }
            }
            guard rename(file, destination) == 0 else { throw ClientError("cannot write \(destination): \(String(cString: strerror(errno)))") }
            return result.signer
        } catch let error as VerificationRefusal {
            Output.error("\(info.name)@\(info.version) refused in trusted mode: \(error.reason) [\(error.link.rawValue)]; nothing was written")
            throw ReportedFailure()
        }
    }
}

struct InfoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "info", abstract: "Show a package, or one of its versions.")
    @Argument(help: "NAME or NAME@VERSION.") var package: PackageReference
    @OptionGroup var options: ClientOptions

    func run() async throws {
        let client = try options.client()
        if let version = package.version {
            let data = try await reportingProblems { try await client.get("/api/v1/packages/\(package.name)/versions/\(version)") }
            if options.json { data.printJSON(); return }
            let info = try data.decoded(VersionSummary.self)
            Output.line("\(info.name)@\(info.version)\(info.yanked ? " (yanked\(info.yank_reason.map { ": \($0)" } ?? ""))" : "")")
            Output.line("  artifact   \(info.artifact)")
            Output.line("  platforms  \(info.platforms.joined(separator: ", "))")
            Output.line("  sha256     \(info.sha256)")
            Output.line("  size       \(info.size) bytes")
            Output.line("  published  \(info.published_at.formatted(.iso8601)) by \(info.publisher)")
            if let deprecated = info.deprecated { Output.line("  deprecated \(deprecated)") }
            return
        }
        let data = try await reportingProblems { try await client.get("/api/v1/packages/\(package.name)") }
        if options.json { data.printJSON(); return }
        let info = try data.decoded(PackageDetail.self)
        Output.line("\(info.name)  latest \(info.latest ?? "none")")
        Output.line("  \(info.description)")
        Output.line("  \(info.versions.count) version(s): " + info.versions.prefix(10).map(\.version).joined(separator: ", "))
    }
}

struct VersionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "versions", abstract: "List a package's versions, highest first.")
    @Argument(help: "The package name.") var name: String
    @OptionGroup var options: ClientOptions

    func run() async throws {
        let client = try options.client()
        let data = try await reportingProblems { try await client.get("/api/v1/packages/\(name)/versions") }
        if options.json { data.printJSON(); return }
        for version in try data.decoded([VersionSummary].self) {
            var notes: [String] = []
            if version.yanked { notes.append("yanked") }
            if version.deprecated != nil { notes.append("deprecated") }
            Output.line("\(version.version)\t\(version.published_at.formatted(.iso8601))\t\(version.platforms.joined(separator: ","))"
                        + (notes.isEmpty ? "" : "\t" + notes.joined(separator: ", ")))
        }
    }
}

struct YankCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "yank", abstract: "Yank a version: it still downloads by exact version, but never resolves as latest.")
    @Argument(help: "NAME@VERSION.") var package: PackageReference
    @Option(help: "Why it is yanked.") var reason: String?
    @Flag(help: "Undo a yank.") var undo = false
    @OptionGroup var options: ClientOptions

    func run() async throws {
        guard let version = package.version else { throw ValidationError("name the version: NAME@VERSION") }
        let client = try options.client()
        let data = try await reportingProblems { try await client.setYanked(package.name, version, yanked: !undo, reason: reason) }
        if options.json { data.printJSON(); return }
        Output.line("\(undo ? "unyanked" : "yanked") \(package.name)@\(version)")
    }
}

struct SearchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "search", abstract: "Search packages by name, description and keywords.")
    @Argument(help: "The search term.") var term: String = ""
    @Option(help: "The page of results.") var page = 1
    @OptionGroup var options: ClientOptions

    func run() async throws {
        let client = try options.client()
        let query = term.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed.subtracting(CharacterSet(charactersIn: "&+=?"))) ?? ""
        let data = try await reportingProblems { try await client.get("/api/v1/packages?q=\(query)&page=\(page)") }
        if options.json { data.printJSON(); return }
        let result = try data.decoded(PageBody<PackageSummary>.self)
        for item in result.items { Output.line("\(item.name)\t\(item.latest ?? "-")\t\(item.description)") }
        Output.line("\(result.total) package(s)" + (result.total > result.page * result.per_page ? "; more with --page \(result.page + 1)" : ""))
    }
}

struct DeprecateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "deprecate", abstract: "Deprecate a version with a message shown to its users.")
    @Argument(help: "NAME@VERSION.") var package: PackageReference
    @Option(help: "What users should do instead.") var message: String?
    @Flag(help: "Remove the deprecation.") var undo = false
    @OptionGroup var options: ClientOptions

    func run() async throws {
        guard let version = package.version else { throw ValidationError("name the version: NAME@VERSION") }
        guard undo || message != nil else { throw ValidationError("give a --message, or --undo") }
        let client = try options.client()
        let data = try await reportingProblems { try await client.setDeprecation(package.name, version, message: undo ? nil : message) }
        if options.json { data.printJSON(); return }
        Output.line("\(undo ? "undeprecated" : "deprecated") \(package.name)@\(version)")
    }
}
