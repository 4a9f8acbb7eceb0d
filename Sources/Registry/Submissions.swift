import Checks
import Foundation
import NIOConcurrencyHelpers
import PackageFormat
import Storage

/// How submissions are reviewed.
public struct ReviewSettings: Sendable, Equatable {
    /// Approvals needed from reviewers other than the publisher (at least 1).
    public var approvalsRequired = 1
    /// Users whose submissions are published without review once every check passes, besides
    /// those an admin marked so.
    public var autoPublish: Set<String> = []
    /// Times a check job is tried before its check is reported as not run.
    public var maxAttempts = 3
    /// Check jobs run at once.
    public var workers = 1
    public init() {}
}

/// A submission with everything a reviewer looks at.
public struct SubmissionView: Sendable {
    public var submission: SubmissionRecord
    public var jobs: [CheckJob]
    public var events: [ReviewEvent]
    /// Warnings an approval has to acknowledge, by check id.
    public var needsAcknowledgement: [String]
    /// Reviewers who approved it.
    public var approvals: [String]
}

/// Wakes check workers when jobs are queued. Waiting compares a generation number, so a wake-up
/// between looking for work and waiting is never lost.
public final class JobSignal: Sendable {
    private struct State {
        var generation: UInt64 = 0
        var next: UInt64 = 0
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
    }

    private let state = NIOLockedValueBox(State())

    public init() {}

    public var generation: UInt64 { state.withLockedValue { $0.generation } }

    public func wake() {
        let waiters = state.withLockedValue { state in
            state.generation &+= 1
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns when woken after `generation`, after `timeout`, or when the task is cancelled.
    public func wait(after generation: UInt64, upTo timeout: Duration) async {
        let id = state.withLockedValue { state -> UInt64 in
            state.next &+= 1
            return state.next
        }
        let timer = Task { [state] in
            try? await Task.sleep(for: timeout)
            state.withLockedValue { $0.waiters.removeValue(forKey: id) }?.resume()
        }
        defer { timer.cancel() }
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let waiting = state.withLockedValue { state -> Bool in
                    guard state.generation == generation, !Task.isCancelled else { return false }
                    state.waiters[id] = continuation
                    return true
                }
                if !waiting { continuation.resume() }
            }
        } onCancel: { [state] in
            state.withLockedValue { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }
}

extension RegistryService {
    /// Check ids whose warnings a reviewer has to acknowledge explicitly when approving: helpers
    /// that reach beyond the program's own data, checks that could not run, and uploaded objects
    /// that differ from those rebuilt from the sources.
    public static func needsAcknowledgement(_ results: [CheckResult]) -> [String] {
        Array(Set(results.flatMap(\.findings).filter { finding in
            finding.severity == .warning
                && (finding.check == "security.sensitive-helper" || finding.check.hasSuffix("not-run") || finding.check == Self.mismatchCheck)
        }.map(\.check))).sorted()
    }

    /// Uploaded objects that differ from those rebuilt from the sources: never auto-published.
    static let mismatchCheck = "build.mismatch"

    /// Where a submission goes once every check has finished.
    public func verdict(_ results: [CheckResult], publisher: String, autoPublishFlag: Bool) -> CheckVerdict {
        let errors = results.flatMap(\.findings).filter { $0.severity == .error }
        if !errors.isEmpty {
            let checks = Array(Set(errors.map(\.check))).sorted().joined(separator: ", ")
            return CheckVerdict(state: .changesRequested, reason: "the automated checks found \(errors.count) error(s): \(checks)")
        }
        let acknowledge = Self.needsAcknowledgement(results)
        // Auto-publishing needs every check to have run and passed; the warnings it carries are
        // named in the record, with no reviewer to acknowledge them.
        if autoPublishFlag || review.autoPublish.contains(publisher), results.allSatisfy({ $0.outcome == .passed || $0.outcome == .warnings }),
           !acknowledge.contains(Self.mismatchCheck) {
            let warnings = acknowledge.isEmpty ? "" : "; warnings: " + acknowledge.joined(separator: ", ")
            return CheckVerdict(state: .published, reason: "every check passed; published without review (\(publisher) may auto-publish)\(warnings)")
        }
        let warnings = acknowledge.isEmpty ? "" : "; an approval must acknowledge: " + acknowledge.joined(separator: ", ")
        return CheckVerdict(state: .awaitingReview, reason: "the automated checks found no error\(warnings)")
    }

    // MARK: Reading

    func visibleSubmission(_ id: String, _ principal: Principal?, action: String = "read") async throws -> SubmissionRecord {
        guard SubmissionRecord.isID(id), let submission = try await submissions.submission(id: id) else {
            throw RegistryError.submissionNotFound(id)
        }
        let owners = try await organisations.effectiveOwners(package: submission.canonical)
        do {
            try policy.authorize(.readSubmission(package: submission.version.package, publisher: submission.version.publisher),
                                 for: principal, owners: owners)
        } catch .unauthenticated {
            throw RegistryError.unauthenticated
        } catch {
            // Whoever may not see it is not told that it exists.
            throw RegistryError.submissionNotFound(id)
        }
        return submission
    }

    public func submission(_ id: String, by principal: Principal?) async throws -> SubmissionView {
        let submission = try await visibleSubmission(id, principal)
        return try await view(submission)
    }

    func view(_ submission: SubmissionRecord) async throws -> SubmissionView {
        let jobs = try await submissions.jobs(submission: submission.id)
        let events = try await submissions.events(submission: submission.id)
        let approvals = Array(Set(events.filter { $0.kind == .approve }.map(\.actor))).sorted()
        return SubmissionView(submission: submission, jobs: jobs, events: events,
                              needsAcknowledgement: Self.needsAcknowledgement(jobs.compactMap(\.result)), approvals: approvals)
    }

    /// Submissions newest first. Reviewers and admins see every one; others their own.
    public func listSubmissions(states: Set<SubmissionState>, package: String?, mine: Bool, page: Int, perPage: Int,
                                by principal: Principal?) async throws -> Page<SubmissionRecord> {
        guard let principal else { throw RegistryError.unauthenticated }
        if let restriction = principal.restriction { throw RegistryError.forbidden(restriction) }
        let canonical = try package.map { try Self.canonical($0) }
        // Reviewers see the submissions their token's package patterns cover; owners those of
        // their package; everyone their own.
        let reviewer = principal.scopes.contains(.review) && (canonical.map(principal.mayTouch) ?? principal.packages.isEmpty)
        let seesAll = principal.actsAsAdmin || reviewer
        var publisher = mine || !seesAll ? principal.name : nil
        if !mine, let canonical, !seesAll, try await organisations.effectiveOwners(package: canonical).contains(principal.name) {
            publisher = nil
        }
        let (offset, overflow) = max(0, page - 1).multipliedReportingOverflow(by: perPage)
        guard !overflow else { return Page(items: [], total: 0) }
        return try await submissions.submissions(states: states, canonical: canonical, publisher: publisher, offset: offset, limit: perPage)
    }

    /// The submission whose archive a reviewer downloads, once allowed.
    public func submissionForDownload(_ id: String, by principal: Principal?) async throws -> SubmissionRecord {
        try await visibleSubmission(id, principal)
    }

    // MARK: Decisions

    public func approve(_ id: String, acknowledged: [String], message: String?, by principal: Principal?) async throws -> SubmissionView {
        let submission = try await visibleSubmission(id, principal)
        try await authorize(.review(package: submission.version.package, publisher: submission.version.publisher), principal,
                            target: submission.id)
        guard submission.state == .awaitingReview else {
            throw RegistryError.submissionState(id: id, state: submission.state.rawValue, wanted: "approved")
        }
        let needed = Self.needsAcknowledgement(try await submissions.jobs(submission: id).compactMap(\.result))
        let missing = needed.filter { !acknowledged.contains($0) }
        guard missing.isEmpty else { throw RegistryError.acknowledgementRequired(missing) }
        let event = ReviewEvent(submission: id, at: Date(), actor: principal?.name ?? "", kind: .approve, message: message,
                                acknowledged: needed)
        let updated = try await storeDecision(id, wanted: "approved") { try await submissions.approve(id: id, event: event) }
        await audit("submission.approve", principal, target: "\(submission.version.package)@\(submission.version.version)", detail: id)
        if updated.state == .published { await published(updated, by: principal?.name ?? "") }
        notices.wake()
        return try await view(updated)
    }

    public func reject(_ id: String, reason: String, by principal: Principal?) async throws -> SubmissionView {
        try await decide(id, kind: .reject, to: .rejected, from: [.submitted, .checking, .awaitingReview], message: reason, by: principal)
    }

    public func requestChanges(_ id: String, reason: String, by principal: Principal?) async throws -> SubmissionView {
        try await decide(id, kind: .requestChanges, to: .changesRequested, from: [.submitted, .checking, .awaitingReview], message: reason,
                         by: principal)
    }

    public func withdraw(_ id: String, reason: String?, by principal: Principal?) async throws -> SubmissionView {
        try await decide(id, kind: .withdraw, to: .withdrawn, from: [.submitted, .checking, .awaitingReview, .changesRequested],
                         message: reason, by: principal)
    }

    private func decide(_ id: String, kind: ReviewEvent.Kind, to state: SubmissionState, from: Set<SubmissionState>, message: String?,
                        by principal: Principal?) async throws -> SubmissionView {
        let submission = try await visibleSubmission(id, principal)
        let action: Action = kind == .withdraw
            ? .withdraw(package: submission.version.package, publisher: submission.version.publisher)
            : .review(package: submission.version.package, publisher: submission.version.publisher)
        try await authorize(action, principal, owners: try await organisations.effectiveOwners(package: submission.canonical),
                            target: submission.id)
        if kind != .withdraw, message?.trimmingCharacters(in: .whitespacesAndNewlines).isEmpty ?? true {
            throw RegistryError.invalidRequest("say why: a reason is required")
        }
        let event = ReviewEvent(submission: id, at: Date(), actor: principal?.name ?? "", kind: kind, message: message)
        let updated = try await storeDecision(id, wanted: state.rawValue) {
            try await submissions.transition(id: id, from: from, to: state, event: event)
        }
        await audit("submission.\(kind.rawValue)", principal, target: "\(submission.version.package)@\(submission.version.version)",
                    detail: "\(id)" + (message.map { ": \($0)" } ?? ""))
        logger.info("submission \(state.rawValue)", metadata: ["submission": "\(id)", "by": "\(principal?.name ?? "")"])
        notices.wake()
        return try await view(updated)
    }

    private func storeDecision(_ id: String, wanted: String, _ body: () async throws -> SubmissionRecord) async throws -> SubmissionRecord {
        do { return try await body() } catch let SubmissionStoreError.wrongState(_, state) {
            throw RegistryError.submissionState(id: id, state: state.rawValue, wanted: wanted)
        } catch let MetadataStoreError.versionExists(package, version) {
            throw RegistryError.versionExists(package: package, version: version)
        } catch let AccountStoreError.notOwner(user, package) {
            throw RegistryError.forbidden("\(user) no longer owns \(package): reject the submission or ask for changes")
        }
    }

    public func comment(_ id: String, message: String, file: String?, line: Int?, by principal: Principal?) async throws -> ReviewEvent {
        let submission = try await visibleSubmission(id, principal)
        guard principal?.restriction == nil else { throw RegistryError.forbidden(principal?.restriction ?? "") }
        let text = message.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty, text.count <= 10_000 else { throw RegistryError.invalidRequest("a comment is 1 to 10000 characters") }
        if let file {
            let report = try JSONDecoder().decode(PackageReport.self, from: submission.version.report)
            guard report.files.contains(where: { $0.path == file && $0.kind == .file }) else {
                throw RegistryError.invalidRequest("the package has no file \(file)")
            }
        }
        if let line, line < 1 || file == nil { throw RegistryError.invalidRequest("a line is counted from 1, in a file") }
        let event = try await submissions.addComment(ReviewEvent(submission: id, at: Date(), actor: principal?.name ?? "", kind: .comment,
                                                                 message: text, file: file, line: line))
        await audit("submission.comment", principal, target: "\(submission.version.package)@\(submission.version.version)", detail: id)
        notices.wake()
        return event
    }

    /// Marks users whose submissions are published without review once every check passes.
    public func setAutoPublish(user: String, enabled: Bool, by principal: Principal?) async throws {
        try await authorize(.manageUsers, principal, target: user)
        do { try await submissions.setAutoPublish(user: user, enabled: enabled) } catch AccountStoreError.userNotFound {
            throw RegistryError.userNotFound(user)
        }
        await audit("user.auto-publish", principal, target: user, detail: enabled ? "on" : "off")
    }

    public func autoPublishers(by principal: Principal?) async throws -> [String] {
        try await authorize(.manageUsers, principal, target: nil)
        return Array(Set(try await submissions.autoPublishers()).union(review.autoPublish)).sorted()
    }

    /// After a submission's version became visible: the repository attests it (a failure
    /// leaves it pending, attested by the background sweep).
    func published(_ submission: SubmissionRecord, by actor: String) async {
        cache.invalidate(submission.canonical)
        do { try await attestPending() } catch {
            logger.error("could not attest", metadata: ["submission": "\(submission.id)", "error": "\(error)"])
        }
        logger.info("published", metadata: ["package": "\(submission.version.package)", "version": "\(submission.version.version)",
                                            "submission": "\(submission.id)", "digest": "\(submission.version.digest)", "by": "\(actor)"])
    }
}
