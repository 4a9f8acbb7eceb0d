import Checks
import Foundation
import PackageFormat
import Storage

/// A check job given to a worker: the job, its submission and what the worker runs.
public struct CheckAssignment: Sendable {
    public let job: CheckJob
    public let submission: SubmissionRecord
    public let task: CheckTask
    /// How long the worker holds the job.
    public let lease: TimeInterval
}

/// Check jobs, taken by the server's own check runner (which runs each in a sandboxed worker
/// process it starts) and by check workers elsewhere (`epr worker --jobs check`, through the
/// API): the same leases and attempts, so a job's result is recorded once whoever ran it.
extension RegistryService {
    /// How long a worker holds a check job before another may take it: the longest time limit
    /// of a check, the worker's margin, and two minutes more for fetching and recording.
    public var checkLease: TimeInterval {
        Double(checks.longestTimeout) + Double(checkProcess.margin.components.seconds) + 120
    }

    /// Takes the oldest check job for a worker holding the build right (workers are admins').
    public func claimCheck(by principal: Principal?) async throws -> CheckAssignment? {
        try await authorize(.build, principal, target: nil)
        let assignment = try await takeCheck()
        if let assignment {
            logger.info("check job taken", metadata: ["submission": "\(assignment.submission.id)", "check": "\(assignment.job.check)",
                                                      "worker": "\(principal?.name ?? "")", "attempt": "\(assignment.job.attempts)"])
        }
        return assignment
    }

    /// Takes the oldest check job. A job taken more often than the attempts allowed without a
    /// result (it brought its worker down, say) is recorded as not run, and the next is taken.
    func takeCheck() async throws -> CheckAssignment? {
        while true {
            guard let job = try await submissions.claimJob(lease: checkLease) else { return nil }
            guard let submission = try await submissions.submission(id: job.submission) else {
                try? await submissions.releaseJob(id: job.id, attempt: job.attempts, retryAt: Date().addingTimeInterval(5))
                return nil
            }
            if job.attempts > review.maxAttempts {
                let result = CheckResult(findings: [Finding(.warning, "\(job.check).not-run",
                                                            "the check \(job.check) was interrupted \(job.attempts - 1) times and is not run again")],
                                         ranFully: false)
                _ = try await recordCheck(job: job.id, attempt: job.attempts, submission: submission, result: result)
                continue
            }
            let report = try JSONDecoder().decode(PackageReport.self, from: submission.version.report)
            return CheckAssignment(job: job, submission: submission, task: CheckTask(check: job.check, report: report, settings: checks),
                                   lease: checkLease)
        }
    }

    /// Records a worker's result for a check job its attempt `attempt` holds. False when the
    /// attempt no longer holds it (its lease ran out, or the submission closed).
    public func reportCheck(job id: Int, attempt: Int, submission submissionID: String, result: CheckResult,
                            by principal: Principal?) async throws -> Bool {
        try await authorize(.build, principal, target: submissionID)
        guard let submission = try await submissions.submission(id: submissionID),
              let job = try await submissions.jobs(submission: submissionID).first(where: { $0.id == id && $0.check != Self.buildCheck }) else {
            throw RegistryError.submissionNotFound(submissionID)
        }
        return try await recordCheck(job: id, attempt: attempt, submission: submission, result: result.bounded(check: job.check))
    }

    /// Completes a job with its result while `attempt` holds it; when that was the
    /// submission's last check, the submission moves on (published, or waiting for review).
    func recordCheck(job id: Int, attempt: Int, submission: SubmissionRecord, result: CheckResult) async throws -> Bool {
        let publisher = submission.version.publisher, registry = self
        let counted = try await submissions.completeJob(id: id, attempt: attempt, result: result) { results, flag in
            registry.verdict(results, publisher: publisher, autoPublishFlag: flag)
        }
        guard counted else { return false }
        notices.wake()
        if let updated = try await submissions.submission(id: submission.id), updated.state != submission.state,
           !updated.state.isOpen || updated.state == .awaitingReview {
            if updated.state == .published { await published(updated, by: "epr") }
            await audit(AuditRecord(at: Date(), actor: nil, tokenID: nil, address: nil, action: "submission.checked",
                                    target: "\(updated.version.package)@\(updated.version.version)", outcome: "success",
                                    detail: "\(updated.id): \(updated.state.rawValue)"))
        }
        return true
    }
}
