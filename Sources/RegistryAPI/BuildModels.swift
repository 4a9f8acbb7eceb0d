import Foundation

/// A build job, as POST /api/v1/builds/claim gives it to a worker.
public struct BuildJobBody: Codable, Sendable, Equatable {
    public var job: Int
    public var attempt: Int
    public var submission: String
    public var name: String
    public var version: String
    /// Where to download the submitted archive (GET, with the worker's token).
    public var archive_url: String
    public var sha256: String
    /// The submission carries sources only: the built archive takes its place.
    public var sources_only: Bool
    /// Seconds the worker holds the job.
    public var lease_seconds: Int

    public init(job: Int, attempt: Int, submission: String, name: String, version: String, archive_url: String, sha256: String, sources_only: Bool,
                lease_seconds: Int) {
        self.job = job
        self.attempt = attempt
        self.submission = submission
        self.name = name
        self.version = version
        self.archive_url = archive_url
        self.sha256 = sha256
        self.sources_only = sources_only
        self.lease_seconds = lease_seconds
    }
}

/// A worker's result, the body of POST /api/v1/builds/{job}/result.
public struct BuildResultRequest: Codable, Sendable, Equatable {
    public var submission: String
    public var attempt: Int
    /// `built` (with `archive`) or `failed` (with `check` and `message`).
    public var outcome: String
    public var check: String?
    public var message: String?
    public var log: String
    /// The built package archive, base64.
    public var archive: String?

    public init(submission: String, attempt: Int, outcome: String, check: String? = nil, message: String? = nil, log: String, archive: String? = nil) {
        self.submission = submission
        self.attempt = attempt
        self.outcome = outcome
        self.check = check
        self.message = message
        self.log = log
        self.archive = archive
    }
}

/// What the repository made of a worker's result.
public struct BuildResultBody: Codable, Sendable, Equatable {
    /// passed, warnings or failed.
    public var outcome: String
    public var findings: [FindingBody]

    public init(outcome: String, findings: [FindingBody]) {
        self.outcome = outcome
        self.findings = findings
    }
}
