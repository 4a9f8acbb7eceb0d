import Foundation
import PackageFormat

/// The automated checks a package goes through, the same on the registry (as background jobs)
/// and in `epr check` (one after another): the inspection (manifest and objects, licensing,
/// sensitive helpers, chaining, portability, secrets, set-ID files), the kernel verifier, and
/// external scanners.
public struct CheckSuite: Sendable {
    public static let inspection = "inspection"

    /// Nil when the verifier check is turned off.
    public var verifier: VerifierCheck?
    public var scanners: [ExternalScanner]

    public init(verifier: VerifierCheck? = VerifierCheck(), scanners: [ExternalScanner] = []) {
        self.verifier = verifier
        self.scanners = scanners
    }

    /// The checks that run after the inspection, in order.
    public var jobs: [String] { (verifier == nil ? [] : [VerifierCheck.id]) + scanners.map(\.id) }

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
    public func run(_ check: String, archive: String, report: PackageReport, scratch: URL) throws -> CheckResult {
        if check == Self.inspection { return Self.inspectionResult(report) }
        let directory = scratch.appendingPathComponent("check-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let package = try PackageUnpacker.unpack(archive: archive, into: directory)
        if check == VerifierCheck.id, let verifier { return verifier.run(package: package, report: report) }
        if let scanner = scanners.first(where: { $0.id == check }) { return try scanner.run(package: package, archive: archive) }
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
