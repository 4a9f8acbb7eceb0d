import Foundation
import PackageFormat
#if canImport(Glibc)
import Glibc
#endif

/// The automated checks a package goes through, the same on the registry (as background jobs)
/// and in `epr check` (one after another): the inspection (manifest and objects, licensing,
/// sensitive helpers, chaining, portability, user-space files, secrets, set-ID files), the
/// kernel verifier, the sources check, and external scanners.
public struct CheckSuite: Sendable {
    public static let inspection = "inspection"

    /// Nil when the verifier check is turned off.
    public var verifier: VerifierCheck?
    /// Nil when the sources check is turned off.
    public var sources: SourcesCheck?
    public var scanners: [ExternalScanner]

    public init(verifier: VerifierCheck? = VerifierCheck(), sources: SourcesCheck? = SourcesCheck(), scanners: [ExternalScanner] = []) {
        self.verifier = verifier
        self.sources = sources
        self.scanners = scanners
    }

    /// The checks that run after the inspection, in order.
    public var jobs: [String] {
        (verifier == nil ? [] : [VerifierCheck.id]) + (sources == nil ? [] : [SourcesCheck.id]) + scanners.map(\.id)
    }

    public enum Failure: Error, CustomStringConvertible {
        case unknownCheck(String)
        public var description: String {
            switch self { case let .unknownCheck(id): "no check is called \(id) here" }
        }
    }

    /// The inspection's findings as a check result.
    public static func inspectionResult(_ report: PackageReport) -> CheckResult {
        CheckResult(findings: report.findings)
    }

    /// Runs one check on the archive at `archive` (already inspected into `report`), in a
    /// scratch directory below `scratch` that is removed afterwards. Throws when the check could
    /// not be carried out and should be tried again.
    public func run(_ check: String, archive: String, report: PackageReport, scratch: URL,
                    cancellation: Cancellation? = nil) throws -> CheckResult {
        if check == Self.inspection { return Self.inspectionResult(report) }
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        // A directory of its own, made with mkdtemp: nobody else can have prepared it.
        var template = Array(scratch.appendingPathComponent("check-XXXXXX").path.utf8CString)
        guard let made = mkdtemp(&template) else { throw CocoaError(.fileWriteUnknown) }
        let directory = URL(fileURLWithPath: String(cString: made))
        defer { try? FileManager.default.removeItem(at: directory) }
        let package = try PackageUnpacker.unpack(archive: archive, into: directory)
        if check == VerifierCheck.id, var verifier {
            verifier.cancellation = cancellation
            return verifier.run(package: package, report: report)
        }
        if check == SourcesCheck.id, var sources {
            sources.cancellation = cancellation
            return sources.run(package: package, report: report)
        }
        if var scanner = scanners.first(where: { $0.id == check }) {
            scanner.cancellation = cancellation
            // Scanners get a copy of the archive they cannot write to, never the stored one.
            let copy = directory.appendingPathComponent("archive.tar.gz")
            try FileManager.default.copyItem(atPath: archive, toPath: copy.path)
            try FileManager.default.setAttributes([.posixPermissions: 0o444], ofItemAtPath: copy.path)
            return try scanner.run(package: package, archive: copy.path)
        }
        throw Failure.unknownCheck(check)
    }

    /// Every check, one after another, as `epr check` runs them: a scanner that fails gives a
    /// `not-run` result instead of stopping the rest.
    public func runAll(archive: String, report: PackageReport, scratch: URL) -> [(check: String, result: CheckResult)] {
        var results = [(Self.inspection, Self.inspectionResult(report))]
        for check in jobs {
            do {
                results.append((check, try run(check, archive: archive, report: report, scratch: scratch)))
            } catch {
                results.append((check, CheckResult(findings: [Finding(.warning, "\(check).not-run", "\(error)")], ranFully: false)))
            }
        }
        return results
    }
}
