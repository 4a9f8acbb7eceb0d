import Checks
import Foundation
import Logging
import NIOPosix
import PackageFormat
import Storage

/// Runs the submissions' check jobs in the background. Jobs live in the metadata store: a
/// worker takes one for a lease (counting an attempt), runs its check on threads of its own, and
/// completes it only while its attempt still holds it, so a job's result is recorded once even
/// when a crash or an expired lease made it run twice. Jobs that fail to run are retried with a
/// growing delay; after the last attempt the check is reported as not run.
public final class CheckRunner: Sendable {
    let registry: RegistryService
    let threads: NIOThreadPool
    let logger: Logger

    public init(registry: RegistryService) {
        self.registry = registry
        self.threads = NIOThreadPool(numberOfThreads: max(1, registry.review.workers))
        self.logger = registry.logger
    }

    /// How long a worker holds a job before another may take it: the longest time limit of a
    /// check, and two minutes more for unpacking and recording.
    var lease: TimeInterval {
        Double(registry.checks.longestTimeout) + Double(registry.checkProcess.margin.components.seconds) + 120
    }

    /// Runs until the task is cancelled. Jobs a previous run of this process left running are
    /// queued again first (`exclusive`: this process is the only worker of its store).
    public func run(exclusive: Bool) async {
        threads.start()
        if exclusive {
            do {
                let requeued = try await registry.submissions.requeueRunningJobs()
                if requeued > 0 { logger.notice("check jobs interrupted by a stop are queued again", metadata: ["jobs": "\(requeued)"]) }
            } catch where !Task.isCancelled {
                logger.error("could not queue interrupted check jobs again", metadata: ["error": "\(error)"])
            } catch {}
        }
        try? FileManager.default.removeItem(at: registry.scratch)
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<max(1, registry.review.workers) {
                group.addTask { await self.work() }
            }
        }
        try? await threads.shutdownGracefully()
    }

    func work() async {
        while !Task.isCancelled {
            let generation = registry.jobs.generation
            do {
                guard let job = try await registry.submissions.claimJob(lease: lease) else {
                    await registry.jobs.wait(after: generation, upTo: .seconds(5))
                    continue
                }
                await process(job)
            } catch where !Task.isCancelled {
                logger.error("check worker failed", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
            } catch {}
        }
    }

    func process(_ job: CheckJob) async {
        let store = registry.submissions
        let submission: SubmissionRecord
        do {
            guard let found = try await store.submission(id: job.submission) else { return }
            submission = found
        } catch {
            // The store did not answer: give the job back rather than hold it for a lease.
            try? await store.releaseJob(id: job.id, attempt: job.attempts, retryAt: Date().addingTimeInterval(5))
            return
        }
        // A job that never finished however often it was taken (it brought the process down,
        // say) is not run again.
        if job.attempts > registry.review.maxAttempts {
            let result = CheckResult(findings: [Finding(.warning, "\(job.check).not-run",
                                                        "the check \(job.check) was interrupted \(job.attempts - 1) times and is not run again")],
                                     ranFully: false)
            try? await complete(job, submission, result)
            return
        }
        let started = ContinuousClock.now
        let result: CheckResult
        do {
            result = try await run(job, submission)
        } catch {
            if Task.isCancelled { return }
            logger.warning("check could not run", metadata: ["submission": "\(job.submission)", "check": "\(job.check)",
                                                            "attempt": "\(job.attempts)", "error": "\(error)"])
            if job.attempts >= registry.review.maxAttempts {
                let result = CheckResult(findings: [Finding(.warning, "\(job.check).not-run",
                                                            "the check \(job.check) did not run after \(job.attempts) attempts: \(error)")],
                                         ranFully: false)
                try? await complete(job, submission, result)
            } else {
                let delay = pow(4, Double(job.attempts))
                try? await store.releaseJob(id: job.id, attempt: job.attempts, retryAt: Date().addingTimeInterval(delay))
            }
            return
        }
        do {
            try await complete(job, submission, result)
            logger.info("check finished", metadata: ["submission": "\(job.submission)", "check": "\(job.check)", "outcome": "\(result.outcome.rawValue)",
                                                     "attempt": "\(job.attempts)", "duration": "\(ContinuousClock.now - started)"])
        } catch {
            // Recording failed (the check itself ran): the job is taken again when its lease
            // runs out, or at the next start.
            if !Task.isCancelled { logger.error("check result not recorded", metadata: ["submission": "\(job.submission)", "error": "\(error)"]) }
        }
    }

    /// Runs a job's check in a check worker process, waiting on the runner's threads; a
    /// shutdown stops the worker and everything it started.
    func run(_ job: CheckJob, _ submission: SubmissionRecord) async throws -> CheckResult {
        let report = try JSONDecoder().decode(PackageReport.self, from: submission.version.report)
        if job.check == CheckSuite.inspection { return CheckSuite.inspectionResult(report) }
        let (archive, temporary) = try await registry.localFile(of: submission.version.digest)
        defer { if temporary { try? FileManager.default.removeItem(atPath: archive) } }
        let task = CheckTask(check: job.check, report: report, settings: registry.checks)
        let worker = registry.checkProcess, scratch = registry.scratch, cancellation = Cancellation()
        return try await withTaskCancellationHandler {
            try await threads.runIfActive {
                try worker.run(task, archive: archive, scratch: scratch, cancellation: cancellation)
            }
        } onCancel: {
            cancellation.cancel()
        }
    }

    func complete(_ job: CheckJob, _ submission: SubmissionRecord, _ result: CheckResult) async throws {
        let registry = self.registry, publisher = submission.version.publisher
        let counted = try await registry.submissions.completeJob(id: job.id, attempt: job.attempts, result: result) { results, flag in
            registry.verdict(results, publisher: publisher, autoPublishFlag: flag)
        }
        guard counted else {
            logger.notice("a check's result came too late: another attempt holds the job",
                          metadata: ["submission": "\(job.submission)", "check": "\(job.check)", "attempt": "\(job.attempts)"])
            return
        }
        registry.notices.wake()
        if let updated = try await registry.submissions.submission(id: submission.id), updated.state != submission.state,
           !updated.state.isOpen || updated.state == .awaitingReview {
            if updated.state == .published { await registry.published(updated, by: "epr") }
            await registry.audit(AuditRecord(at: Date(), actor: nil, tokenID: nil, address: nil, action: "submission.checked",
                                             target: "\(updated.version.package)@\(updated.version.version)", outcome: "success",
                                             detail: "\(updated.id): \(updated.state.rawValue)"))
        }
    }
}
