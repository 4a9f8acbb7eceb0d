import Foundation
import PackageFormat

/// A check job, as POST /api/v1/checks/claim gives it to a check worker (`epr worker --jobs check`).
public struct CheckJobBody: Codable, Sendable {
    public var job: Int
    /// This taking of the job; the result must name it.
    public var attempt: Int
    public var submission: String
    public var name: String
    public var version: String
    /// Where to download the submitted archive (GET, with the worker's token).
    public var archive_url: String
    public var sha256: String
    /// Seconds the worker holds the job.
    public var lease_seconds: Int
    /// The check, the package's inspection report and the registry's check settings.
    public var task: CheckTask

    public init(job: Int, attempt: Int, submission: String, name: String, version: String, archive_url: String, sha256: String,
                lease_seconds: Int, task: CheckTask) {
        self.job = job
        self.attempt = attempt
        self.submission = submission
        self.name = name
        self.version = version
        self.archive_url = archive_url
        self.sha256 = sha256
        self.lease_seconds = lease_seconds
        self.task = task
    }
}

/// The body of POST /api/v1/checks/{job}/result.
public struct CheckResultRequest: Codable, Sendable {
    public var submission: String
    public var attempt: Int
    public var result: CheckResult

    public init(submission: String, attempt: Int, result: CheckResult) {
        self.submission = submission
        self.attempt = attempt
        self.result = result
    }
}

extension CheckResult {
    /// A result from a worker, kept within bounds: at most 1,000 findings, each of its job's
    /// check (`CHECK` or `CHECK.something`, else given that prefix), with messages (16 KiB) and locations
    /// cut short; at most 1,000 details of at most 256 KiB each; the outcome follows from the
    /// findings (a worker cannot call a result with errors a pass), `not-run` staying so.
    public func bounded(check: String) -> CheckResult {
        func cut(_ text: String, _ limit: Int) -> String { text.utf8.count <= limit ? text : String(decoding: text.utf8.prefix(limit), as: UTF8.self) }
        let findings = findings.prefix(1000).map { finding in
            var id = cut(finding.check, 200)
            if id != check, !id.hasPrefix(check + ".") { id = check + "." + id }
            return Finding(finding.severity, id, cut(finding.message, 16 << 10), at: finding.location.map { cut($0, 1024) })
        }
        var details: [String: String] = [:]
        for key in self.details.keys.sorted().prefix(1000) { details[cut(key, 256)] = cut(self.details[key] ?? "", 256 << 10) }
        return CheckResult(findings: Array(findings), ranFully: outcome != .notRun, details: details)
    }
}
