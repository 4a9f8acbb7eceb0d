import Foundation
import PackageFormat

/// Where a submission stands. An upload is `submitted`, its checks run (`checking`), then it
/// waits for reviewers (`awaitingReview`) until enough of them approve (`published`), one
/// rejects it or asks for changes, or its author withdraws it. Only `published` versions are
/// served; a version number is held only while a submission of it is open or published.
public enum SubmissionState: String, Sendable, Codable, CaseIterable {
    case submitted
    case checking
    case awaitingReview = "awaiting-review"
    case changesRequested = "changes-requested"
    case rejected
    case withdrawn
    case published

    /// Still on its way: it holds its version number and may yet be published.
    public var isOpen: Bool { self == .submitted || self == .checking || self == .awaitingReview }
}

/// One upload on its way through checks and review: the version it would publish, and where
/// it stands.
public struct SubmissionRecord: Sendable, Equatable {
    /// `sub_` and 20 hex digits.
    public var id: String
    public var canonical: String
    /// The version as it will be published (package name as spelled, artifact, digest, ...).
    public var version: VersionRecord
    public var state: SubmissionState
    /// Why it is in its state (a rejection's reason, the checks' verdict).
    public var reason: String?
    /// Approvals it needs from reviewers other than its publisher.
    public var approvalsRequired: Int
    public var createdAt: Date
    public var updatedAt: Date

    public init(id: String, canonical: String, version: VersionRecord, state: SubmissionState, reason: String? = nil,
                approvalsRequired: Int, createdAt: Date, updatedAt: Date) {
        self.id = id
        self.canonical = canonical
        self.version = version
        self.state = state
        self.reason = reason
        self.approvalsRequired = approvalsRequired
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }

    /// A new submission id: `sub_` and 80 random bits in hex.
    public static func newID() -> String {
        var generator = SystemRandomNumberGenerator()
        return "sub_" + (0..<10).map { _ in String(UInt8.random(in: 0...255, using: &generator), radix: 16).leftPadded(to: 2) }.joined()
    }

    /// Whether `text` has the form of a submission id.
    public static func isID(_ text: String) -> Bool {
        text.count == 24 && text.hasPrefix("sub_") && text.dropFirst(4).allSatisfy { $0.isHexDigit && !$0.isUppercase }
    }
}

extension String {
    fileprivate func leftPadded(to length: Int) -> String { String(repeating: "0", count: max(0, length - count)) + self }
}

/// Something that happened to a submission: a comment, a decision, a change of state.
public struct ReviewEvent: Sendable, Equatable, Codable {
    public enum Kind: String, Sendable, Codable, CaseIterable {
        case comment, approve, reject
        case requestChanges = "request-changes"
        case withdraw
        /// A change made by the registry itself (checks finished, published).
        case state
    }

    public var id: Int
    public var submission: String
    public var at: Date
    public var actor: String
    public var kind: Kind
    public var message: String?
    /// For comments on a file of the package, and a line of it.
    public var file: String?
    public var line: Int?
    /// Check ids of warnings the reviewer acknowledged with an approval.
    public var acknowledged: [String]
    /// The submission's state once this happened (set by the store).
    public var state: SubmissionState?

    public init(id: Int = 0, submission: String, at: Date, actor: String, kind: Kind, message: String? = nil, file: String? = nil,
                line: Int? = nil, acknowledged: [String] = [], state: SubmissionState? = nil) {
        self.state = state
        self.id = id
        self.submission = submission
        self.at = at
        self.actor = actor
        self.kind = kind
        self.message = message
        self.file = file
        self.line = line
        self.acknowledged = acknowledged
    }
}

/// One automated check of one submission, run in the background: claimed by a worker for a
/// while (its lease), completed once.
public struct CheckJob: Sendable, Equatable {
    /// The check id of build jobs: taken by build workers only, and the submission's other
    /// checks wait until it is done.
    public static let buildCheck = "build"

    public enum State: String, Sendable, Codable {
        case queued, running, done
        /// Its submission closed before it ran.
        case cancelled
    }

    public var id: Int
    public var submission: String
    /// The check's id (`inspection`, `verifier`, `sources`, `scanner.NAME`).
    public var check: String
    public var state: State
    /// Times a worker took it; a completion counts only from the attempt that holds it.
    public var attempts: Int
    public var leaseUntil: Date?
    public var result: CheckResult?
    public var createdAt: Date
    public var finishedAt: Date?

    public init(id: Int, submission: String, check: String, state: State, attempts: Int, leaseUntil: Date? = nil,
                result: CheckResult? = nil, createdAt: Date, finishedAt: Date? = nil) {
        self.id = id
        self.submission = submission
        self.check = check
        self.state = state
        self.attempts = attempts
        self.leaseUntil = leaseUntil
        self.result = result
        self.createdAt = createdAt
        self.finishedAt = finishedAt
    }
}

/// What a submission's finished checks lead to, decided by the registry: the next state and
/// why.
public struct CheckVerdict: Sendable, Equatable {
    public var state: SubmissionState
    public var reason: String
    public init(state: SubmissionState, reason: String) {
        self.state = state
        self.reason = reason
    }
}

/// What the submission store refuses.
public enum SubmissionStoreError: Error, Equatable, Sendable {
    case notFound(String)
    /// The submission is not in a state that allows this.
    case wrongState(id: String, state: SubmissionState)
}

/// Submissions, their review and their background checks. Lives with the metadata (one
/// transaction publishes a version and closes its submission).
public protocol SubmissionStore: Sendable {
    /// Records a submission with its check jobs, creating its package on first upload, in one
    /// transaction. Refuses (``MetadataStoreError/versionExists(package:version:)``) when the
    /// version is published or another submission of it is open; checks ownership as
    /// ``MetadataStore/insertVersion(_:packageName:canonical:description:ownership:commitBlob:)``
    /// does. `done` are results known already (the upload's inspection), stored as completed
    /// jobs; `queued` are the checks still to run. A submission born `published` (no checks,
    /// no review) publishes its version in the same transaction. `commitBlob` runs last.
    func insertSubmission(_ submission: SubmissionRecord, packageName: String, description: String, ownership: PublishOwnership,
                          done: [String: CheckResult], queued: [String], commitBlob: @Sendable () async throws -> Void) async throws

    func submission(id: String) async throws -> SubmissionRecord?
    /// Newest first; filtered by state, package (canonical) and publisher when given.
    func submissions(states: Set<SubmissionState>, canonical: String?, publisher: String?, offset: Int, limit: Int) async throws
        -> Page<SubmissionRecord>

    /// Adds a comment (any state).
    func addComment(_ event: ReviewEvent) async throws -> ReviewEvent
    func events(submission: String) async throws -> [ReviewEvent]
    /// Every submission's events after the one numbered `id`, oldest first (for notifications).
    func events(after id: Int, limit: Int) async throws -> [ReviewEvent]
    /// The number of the newest event, 0 when there is none.
    func lastEventID() async throws -> Int

    /// Moves an open submission to `to` (a reviewer's rejection or request for changes, the
    /// author's withdrawal), recording `event`, in one transaction; refuses when its state is
    /// not in `from`. Its checks not yet done are cancelled.
    func transition(id: String, from: Set<SubmissionState>, to: SubmissionState, event: ReviewEvent) async throws -> SubmissionRecord

    /// Records an approval of a submission awaiting review and, when approvals by distinct
    /// reviewers reach the number required, publishes it, in one transaction. Publishing
    /// refuses (``AccountStoreError/notOwner(user:package:)``) when the publisher no longer owns
    /// the package and is not an admin.
    func approve(id: String, event: ReviewEvent) async throws -> SubmissionRecord

    // MARK: Check jobs

    /// Takes the oldest job that is queued (or whose lease ran out) of a submission still being
    /// checked, for `lease` seconds, counting an attempt, and marks its submission `checking`.
    func claimJob(lease: TimeInterval) async throws -> CheckJob?
    /// Completes a job with its result, only if attempt `attempt` still holds it (so a job
    /// completes once even when two workers ran it). When it was its submission's last
    /// unfinished job, moves the submission on in the same transaction, to the state `verdict`
    /// gives from every result of the submission and whether its publisher auto-publishes
    /// (changes requested, awaiting review, or published). Returns whether this completion
    /// counted.
    func completeJob(id: Int, attempt: Int, result: CheckResult,
                     verdict: @Sendable (_ results: [CheckResult], _ autoPublish: Bool) -> CheckVerdict) async throws -> Bool
    /// Puts a job that failed to run back in the queue, to be taken again after `retryAt`.
    /// Takes the oldest build job for a lease (build workers only); the submission's other
    /// checks are not taken by ``claimJob(lease:)`` until its build is done.
    func claimBuildJob(lease: TimeInterval) async throws -> CheckJob?
    /// Completes a build job held by `attempt`: when the submission was of sources, its archive
    /// becomes the built one (`commitBlob` stores it, in the same transaction); then decides as
    /// ``completeJob(id:attempt:result:verdict:)`` does. False when the attempt no longer holds the job.
    func completeBuildJob(id: Int, attempt: Int, result: CheckResult, rebuilt: RebuiltArchive?, commitBlob: @Sendable () async throws -> Void,
                          verdict: @Sendable ([CheckResult], Bool) -> CheckVerdict) async throws -> Bool
    func releaseJob(id: Int, attempt: Int, retryAt: Date) async throws
    /// Puts every running job back in the queue: at start, when this process is the only worker.
    func requeueRunningJobs() async throws -> Int
    func jobs(submission: String) async throws -> [CheckJob]

    // MARK: Auto-publishing

    /// Users whose submissions are published once their checks pass, without review.
    func autoPublishers() async throws -> [String]
    func setAutoPublish(user: String, enabled: Bool) async throws
}

/// The archive a build worker built for a submission of sources.
public struct RebuiltArchive: Sendable, Equatable {
    public var digest: SHA256Digest
    public var size: Int64
    public var report: Data
    /// The inspection's result for the built archive, which replaces the submitted one's.
    public var inspection: Data

    public init(digest: SHA256Digest, size: Int64, report: Data, inspection: Data) {
        self.digest = digest
        self.size = size
        self.report = report
        self.inspection = inspection
    }
}
