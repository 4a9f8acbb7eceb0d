import Foundation
import Checks
import NIOPosix
import PackageFormat
import Storage

/// A build job given to a worker.
public struct BuildAssignment: Sendable {
    public let job: CheckJob
    public let submission: SubmissionRecord
    /// The submission carries sources only: the built archive takes its place.
    public let sourcesOnly: Bool
    /// How long the worker holds the job.
    public let lease: TimeInterval
}

/// What a worker reports for a build job.
public enum BuildOutcome: Sendable {
    /// The package was built: the archive (a temporary file of the blob store, consumed).
    case built(archive: URL)
    /// The build failed: a finding id (`build.failed`, `build.timeout`, `build.sandbox`, ...) and why.
    case failed(check: String, message: String)
}

/// Builds from source: a submission whose `[build]` table builds objects it does not carry (or
/// every submission with a `[build]` table, with `rebuild_sources`) gets a build job, which
/// only build workers (`epr worker`, separate processes) take. Its other checks wait until the
/// build is done; a submission of sources then continues with the built archive, while one
/// that carried objects has them compared with the rebuilt ones.
extension RegistryService {
    public static let buildCheck = CheckJob.buildCheck
    /// The longest a worker holds a build job before another may take it.
    public static let buildLease: TimeInterval = 3600
    /// How often a build job is taken before it is reported as not built.
    public static let buildAttempts = 3
    /// The most of a build's log kept with its result.
    public static let buildLogLimit = 256 << 10

    /// The objects and program a package's `[build]` table builds that its archive lacks.
    public static func missingBuiltFiles(_ report: PackageReport) -> [String] {
        guard let manifest = report.manifest else { return [] }
        let present = Set(report.files.filter { $0.kind == .file }.map(\.path))
        return PackageBuilder.builtFiles(manifest).filter { !present.contains($0) }.sorted()
    }

    /// Takes the oldest build job, for a worker holding the review right.
    public func claimBuild(by principal: Principal?) async throws -> BuildAssignment? {
        try await authorize(.build, principal, target: nil)
        guard let job = try await submissions.claimBuildJob(lease: Self.buildLease) else { return nil }
        guard let submission = try await submissions.submission(id: job.submission) else { return nil }
        if job.attempts > Self.buildAttempts {
            // Taken this often without a result (its workers died on it): reported as not built.
            let result = CheckResult(findings: [Finding(.error, "build.not-run", "the build was taken \(job.attempts - 1) times without a result")], ranFully: false)
            let publisher = submission.version.publisher, registry = self
            _ = try await submissions.completeBuildJob(id: job.id, attempt: job.attempts, result: result, rebuilt: nil, commitBlob: {}) { results, flag in
                registry.verdict(results, publisher: publisher, autoPublishFlag: flag)
            }
            notices.wake()
            jobs.wake()
            return try await claimBuild(by: principal)
        }
        let report = try JSONDecoder().decode(PackageReport.self, from: submission.version.report)
        logger.info("build job taken", metadata: ["submission": "\(submission.id)", "worker": "\(principal?.name ?? "")", "attempt": "\(job.attempts)"])
        return BuildAssignment(job: job, submission: submission, sourcesOnly: !Self.missingBuiltFiles(report).isEmpty, lease: Self.buildLease)
    }

    /// Records a worker's result for a build job it holds (`attempt`): the built archive is
    /// inspected and must be the submitted package; a submission of sources continues with it,
    /// one that carried objects has them compared. False when the attempt no longer holds the job.
    public func reportBuild(job id: Int, attempt: Int, submission submissionID: String, outcome: BuildOutcome, log: String,
                            by principal: Principal?) async throws -> (counted: Bool, result: CheckResult) {
        try await authorize(.build, principal, target: submissionID)
        var archiveFile: URL?
        if case let .built(file) = outcome { archiveFile = file }
        // Consumed by the blob store when stored; removed whatever happens.
        defer { if let archiveFile { try? FileManager.default.removeItem(at: archiveFile) } }
        guard let submission = try await submissions.submission(id: submissionID),
              try await submissions.jobs(submission: submissionID).contains(where: { $0.id == id && $0.check == Self.buildCheck }) else {
            throw RegistryError.submissionNotFound(submissionID)
        }
        let submitted = try JSONDecoder().decode(PackageReport.self, from: submission.version.report)
        let sourcesOnly = !Self.missingBuiltFiles(submitted).isEmpty
        var findings: [Finding] = []
        var rebuilt: RebuiltArchive?
        var built: URL?
        switch outcome {
        case let .failed(check, message):
            let id = check.hasPrefix("build.") && check.utf8.count <= 64 ? check : "build.failed"
            findings.append(Finding(.error, id, message))
        case let .built(file):
            let inspector = self.inspector
            let report = try? await NIOThreadPool.singleton.runIfActive { try inspector.inspect(path: file.path) }
            if let report, let manifest = report.manifest, report.isValid, manifest == submitted.manifest,
               Self.missingBuiltFiles(report).isEmpty {
                if sourcesOnly {
                    findings.append(Finding(.info, "build.built", "built from the sources by \(principal?.name ?? "a worker"): "
                                            + PackageBuilder.builtFiles(manifest).sorted().joined(separator: ", ")))
                    if submission.version.signature != nil {
                        findings.append(Finding(.info, "build.signature-replaced",
                                                "the contributor's signature covered the sources; the built archive is the repository's to attest"))
                    }
                    let changed = Self.unbuiltFilesChanged(submitted: submitted, built: report, manifest: manifest)
                    if changed.isEmpty {
                        let encoder = JSONEncoder()
                        encoder.outputFormatting = [.sortedKeys]
                        rebuilt = RebuiltArchive(digest: report.sha256, size: Int64(report.size), report: try encoder.encode(report),
                                                 inspection: try encoder.encode(CheckSuite.inspectionResult(report)))
                        built = file
                    } else {
                        findings = [Finding(.error, "build.invalid", "the built archive changes what was submitted: " + changed.joined(separator: ", "))]
                    }
                } else {
                    findings += try await compareBuilt(file, with: submission.version.digest, manifest: manifest)
                }
            } else {
                let why = report.map { report in
                    report.manifest.map { $0 == submitted.manifest ? "it is not a valid package: "
                        + report.findings.filter { $0.severity == .error }.map(\.description).joined(separator: "; ")
                        : "its manifest differs from the submitted one" } ?? "it has no manifest"
                } ?? "it cannot be read as a package archive"
                findings.append(Finding(.error, "build.invalid", "the built archive is refused: \(why)"))
            }
        }
        var details = ["worker": principal?.name ?? ""]
        let trimmed = log.utf8.count > Self.buildLogLimit ? "(the log's beginning was cut)\n" + String(decoding: Array(log.utf8.suffix(Self.buildLogLimit)), as: UTF8.self) : log
        details["log"] = trimmed
        let result = CheckResult(findings: findings, details: details)
        let blobs = self.blobs, publisher = submission.version.publisher, registry = self
        let file = built, digest = rebuilt?.digest
        let counted = try await submissions.completeBuildJob(id: id, attempt: attempt, result: result, rebuilt: rebuilt, commitBlob: {
            guard let file, let digest else { return }
            if try await blobs.size(of: digest) == nil { try await blobs.store(file, digest: digest) }
        }) { results, flag in
            registry.verdict(results, publisher: publisher, autoPublishFlag: flag)
        }
        if counted {
            await audit("build", principal, target: "\(submission.version.package)@\(submission.version.version)",
                        detail: "\(submission.id): \(result.outcome.rawValue)")
            jobs.wake()
            notices.wake()
            if let updated = try await submissions.submission(id: submissionID), updated.state == .published {
                cache.invalidate(updated.canonical)
                await published(updated, by: "epr")
            }
        }
        return (counted, result)
    }

    /// Files of the built archive other than what `[build]` builds that are not the submitted
    /// ones, or submitted files it lacks: a build only adds what it builds.
    static func unbuiltFilesChanged(submitted: PackageReport, built: PackageReport, manifest: Manifest) -> [String] {
        let builtPaths = PackageBuilder.builtFiles(manifest)
        func files(_ report: PackageReport) -> [String: String] {
            Dictionary(report.files.filter { !builtPaths.contains($0.path) }.map { ($0.path, "\($0.kind.rawValue) \($0.sha256?.hex ?? $0.linkTarget ?? "") \($0.mode)") },
                       uniquingKeysWith: { first, _ in first })
        }
        let before = files(submitted), after = files(built)
        return Set(before.keys).union(after.keys).filter { before[$0] != after[$0] }.sorted()
    }

    /// Rebuilt objects and program against those the submission carries: a difference is a
    /// warning a reviewer must acknowledge (another kernel's BTF or another compiler can change
    /// the bytes without anything being wrong), an exact match is noted.
    func compareBuilt(_ file: URL, with uploaded: SHA256Digest, manifest: Manifest) async throws -> [Finding] {
        let names = PackageBuilder.builtFiles(manifest)
        let rebuiltFiles = try Self.files(names, archive: Array(try Data(contentsOf: file)), manifest: manifest)
        let uploadedFiles = try Self.files(names, archive: try await blobBytes(uploaded, limit: 1 << 30), manifest: manifest)
        return names.sorted().map { name in
            if let a = rebuiltFiles[name], a == uploadedFiles[name] {
                Finding(.info, "build.reproduced", "\(name) rebuilt from the sources is byte-identical to the uploaded one", at: name)
            } else {
                Finding(.warning, "build.mismatch", "\(name) rebuilt from the sources differs from the uploaded one", at: name)
            }
        }
    }

    static func files(_ names: Set<String>, archive: [UInt8], manifest: Manifest) throws -> [String: SHA256Digest] {
        try manifest.regularFiles(names, inArchive: archive).mapValues { SHA256Digest(of: $0) }
    }
}
