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
                guard let assignment = try await registry.takeCheck() else {
                    await registry.jobs.wait(after: generation, upTo: .seconds(5))
                    continue
                }
                await process(assignment)
            } catch where !Task.isCancelled {
                logger.error("check worker failed", metadata: ["error": "\(error)"])
                try? await Task.sleep(for: .seconds(1))
            } catch {}
        }
    }

    func process(_ assignment: CheckAssignment) async {
        let job = assignment.job, submission = assignment.submission, store = registry.submissions
        let started = ContinuousClock.now
        let result: CheckResult
        do {
            result = try await run(assignment)
        } catch {
            if Task.isCancelled { return }
            logger.warning("check could not run", metadata: ["submission": "\(job.submission)", "check": "\(job.check)",
                                                            "attempt": "\(job.attempts)", "error": "\(error)"])
            if job.attempts >= registry.review.maxAttempts {
                let result = CheckResult(findings: [Finding(.warning, "\(job.check).not-run",
                                                            "the check \(job.check) did not run after \(job.attempts) attempts: \(error)")],
                                         ranFully: false)
                _ = try? await registry.recordCheck(job: job.id, attempt: job.attempts, submission: submission, result: result)
            } else {
                let delay = pow(4, Double(job.attempts))
                try? await store.releaseJob(id: job.id, attempt: job.attempts, retryAt: Date().addingTimeInterval(delay))
            }
            return
        }
        do {
            if try await registry.recordCheck(job: job.id, attempt: job.attempts, submission: submission, result: result) {
                logger.info("check finished", metadata: ["submission": "\(job.submission)", "check": "\(job.check)", "outcome": "\(result.outcome.rawValue)",
                                                         "attempt": "\(job.attempts)", "duration": "\(ContinuousClock.now - started)"])
            } else {
                logger.notice("a check's result came too late: another attempt holds the job",
                              metadata: ["submission": "\(job.submission)", "check": "\(job.check)", "attempt": "\(job.attempts)"])
            }
        } catch {
            // Recording failed (the check itself ran): the job is taken again when its lease
            // runs out, or at the next start.
            if !Task.isCancelled { logger.error("check result not recorded", metadata: ["submission": "\(job.submission)", "error": "\(error)"]) }
        }
    }

    /// Runs a job's check in a check worker process, waiting on the runner's threads; a
    /// shutdown stops the worker and everything it started.
    func run(_ assignment: CheckAssignment) async throws -> CheckResult {
        let task = assignment.task
        if task.check == CheckSuite.inspection { return CheckSuite.inspectionResult(task.report) }
        let (archive, temporary) = try await registry.localFile(of: assignment.submission.version.digest)
        defer { if temporary { try? FileManager.default.removeItem(atPath: archive) } }
        let worker = registry.checkProcess, scratch = registry.scratch, cancellation = Cancellation()
        return try await withTaskCancellationHandler {
            try await threads.runIfActive {
                try worker.run(task, archive: archive, scratch: scratch, cancellation: cancellation).bounded(check: task.check)
            }
        } onCancel: {
            cancellation.cancel()
        }
    }
}
