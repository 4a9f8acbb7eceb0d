import Foundation
import Logging
import PackageFormat
import Storage
import TestSupport
import Testing

/// The contract every submission store keeps: a version number held while a submission is open,
/// decisions that check the state they leave, approvals counted once per reviewer, and check jobs
/// that complete exactly once.
@Suite struct SubmissionStoreContractTests {
    typealias Kind = MetadataStoreContractTests.Kind
    typealias Store = any MetadataStore & AccountStore & SubmissionStore

    static func makeStore(_ kind: Kind) async throws -> (Store, @Sendable () async -> Void) {
        switch kind {
        case .sqlite:
            let directory = try Fixtures.temporaryDirectory()
            let store = try await SQLiteMetadataStore.open(path: directory.appendingPathComponent("epr.sqlite").path, logger: Logger(label: "test"))
            try await store.migrate()
            for name in ["alice", "rev1", "rev2"] {
                try await store.insertUser(UserRecord(name: name, role: name == "alice" ? "publisher" : "reviewer", createdAt: Date()))
            }
            return (store, {
                try? await store.close()
                try? FileManager.default.removeItem(at: directory)
            })
        }
    }

    static func submission(_ version: String, state: SubmissionState = .submitted, approvals: Int = 1) -> SubmissionRecord {
        let record = MetadataStoreContractTests.record(version)
        var published = record
        published.publisher = "alice"
        return SubmissionRecord(id: SubmissionRecord.newID(), canonical: "xdp-filter", version: published, state: state,
                                approvalsRequired: approvals, createdAt: Date(), updatedAt: Date())
    }

    static func insert(_ store: Store, _ submission: SubmissionRecord, queued: [String] = ["verifier"]) async throws {
        try await store.insertSubmission(submission, packageName: "xdp-filter", description: "d", ownership: .owners,
                                         done: ["inspection": CheckResult(findings: [])], queued: queued) {}
    }

    static func event(_ id: String, _ actor: String, _ kind: ReviewEvent.Kind, _ message: String? = nil) -> ReviewEvent {
        ReviewEvent(submission: id, at: Date(), actor: actor, kind: kind, message: message)
    }

    @Test(arguments: Kind.allCases)
    func anOpenSubmissionHoldsItsVersionUntilItCloses(kind: Kind) async throws {
        let (store, cleanup) = try await Self.makeStore(kind)
        defer { Task { await cleanup() } }
        let first = Self.submission("1.0.0")
        try await Self.insert(store, first)
        await #expect(throws: MetadataStoreError.versionExists(package: "xdp-filter", version: "1.0.0")) {
            try await Self.insert(store, Self.submission("1.0.0"))
        }
        #expect(try await store.versions(canonical: "xdp-filter").isEmpty, "nothing is published before review")
        #expect(try await store.searchPackages(query: "", offset: 0, limit: 10).total == 0, "nor listed")
        #expect(try await store.referencedDigests().contains(first.version.digest), "its archive is kept")

        let withdrawn = try await store.transition(id: first.id, from: [.submitted, .checking, .awaitingReview], to: .withdrawn,
                                                   event: Self.event(first.id, "alice", .withdraw))
        #expect(withdrawn.state == .withdrawn)
        await #expect(throws: SubmissionStoreError.wrongState(id: first.id, state: .withdrawn)) {
            _ = try await store.transition(id: first.id, from: [.awaitingReview], to: .rejected, event: Self.event(first.id, "rev1", .reject, "no"))
        }
        #expect(try await !store.referencedDigests().contains(first.version.digest), "a withdrawn submission lets its archive go")
        // The number is free again.
        try await Self.insert(store, Self.submission("1.0.0"))
        #expect(try await store.submissions(states: [], canonical: "xdp-filter", publisher: nil, offset: 0, limit: 10).total == 2)
        #expect(try await store.submissions(states: [.withdrawn], canonical: nil, publisher: "alice", offset: 0, limit: 10).items.map(\.id)
                == [first.id])
    }

    @Test(arguments: Kind.allCases)
    func approvalsByDistinctReviewersPublish(kind: Kind) async throws {
        let (store, cleanup) = try await Self.makeStore(kind)
        defer { Task { await cleanup() } }
        let submission = Self.submission("1.0.0", state: .awaitingReview, approvals: 2)
        try await Self.insert(store, submission, queued: [])
        #expect(try await store.approve(id: submission.id, event: Self.event(submission.id, "rev1", .approve)).state == .awaitingReview)
        #expect(try await store.approve(id: submission.id, event: Self.event(submission.id, "rev1", .approve)).state == .awaitingReview,
                "the same reviewer twice is one approval")
        let published = try await store.approve(id: submission.id, event: Self.event(submission.id, "rev2", .approve))
        #expect(published.state == .published)
        let versions = try await store.versions(canonical: "xdp-filter")
        #expect(versions.map(\.version) == ["1.0.0"] && versions.first?.digest == submission.version.digest)
        #expect(try await store.searchPackages(query: "", offset: 0, limit: 10).items.map(\.canonical) == ["xdp-filter"])
        await #expect(throws: SubmissionStoreError.wrongState(id: submission.id, state: .published)) {
            _ = try await store.approve(id: submission.id, event: Self.event(submission.id, "rev1", .approve))
        }
        await #expect(throws: MetadataStoreError.versionExists(package: "xdp-filter", version: "1.0.0")) {
            try await Self.insert(store, Self.submission("1.0.0"))
        }
        #expect(try await store.events(submission: submission.id).filter { $0.kind == .approve }.count == 3)
    }

    @Test(arguments: Kind.allCases)
    func publishingChecksOwnershipAgainAndClosingCancelsChecks(kind: Kind) async throws {
        let (store, cleanup) = try await Self.makeStore(kind)
        defer { Task { await cleanup() } }
        try await store.insertUser(UserRecord(name: "bob", role: "publisher", createdAt: Date()))
        let submission = Self.submission("1.0.0", state: .awaitingReview)
        try await Self.insert(store, submission, queued: [])
        #expect(try await store.owners(package: "xdp-filter") == ["alice"])
        // The package changes hands while the submission waits.
        try await store.invite(OwnerInvitation(package: "xdp-filter", user: "bob", invitedBy: "alice", createdAt: Date()))
        #expect(try await store.answerInvitation(package: "xdp-filter", user: "bob", accept: true))
        try await store.removeOwner(package: "xdp-filter", user: "alice")
        await #expect(throws: AccountStoreError.notOwner(user: "alice", package: "xdp-filter")) {
            _ = try await store.approve(id: submission.id, event: Self.event(submission.id, "rev1", .approve))
        }
        #expect(try await store.submission(id: submission.id)?.state == .awaitingReview, "nothing changed")
        #expect(try await store.versions(canonical: "xdp-filter").isEmpty)

        // Closing a submission cancels its checks: no worker takes them.
        let next = Self.submission("1.1.0")
        try await store.insertSubmission(next, packageName: "xdp-filter", description: "d", ownership: .anyone,
                                         done: [:], queued: ["verifier", "sources"]) {}
        _ = try await store.transition(id: next.id, from: [.submitted], to: .withdrawn, event: Self.event(next.id, "alice", .withdraw))
        #expect(try await store.claimJob(lease: 60) == nil)
        #expect(try await store.jobs(submission: next.id).map(\.state) == [.cancelled, .cancelled])
    }

    @Test(arguments: Kind.allCases)
    func aJobCompletesOnceWhateverRanIt(kind: Kind) async throws {
        let (store, cleanup) = try await Self.makeStore(kind)
        defer { Task { await cleanup() } }
        let submission = Self.submission("1.0.0")
        try await Self.insert(store, submission, queued: ["verifier", "scanner.x"])
        let verdicts = VerdictCounter()
        let decide: @Sendable ([CheckResult], Bool) -> CheckVerdict = { results, auto in
            verdicts.add()
            return CheckVerdict(state: results.contains { $0.errors > 0 } ? .changesRequested : .awaitingReview, reason: "\(results.count)")
        }
        let first = try #require(try await store.claimJob(lease: 3))
        #expect(first.check == "verifier" && first.attempts == 1)
        #expect(try await store.submission(id: submission.id)?.state == .checking)
        let second = try #require(try await store.claimJob(lease: 60))
        #expect(second.check == "scanner.x")
        #expect(try await store.claimJob(lease: 60) == nil, "both are held")
        // The first worker's lease runs out; another takes the job over.
        try await Task.sleep(for: .milliseconds(3100))
        let retaken = try #require(try await store.claimJob(lease: 60))
        #expect(retaken.id == first.id && retaken.attempts == 2)
        let pass = CheckResult(findings: [Finding(.info, "verifier.accepted", "ok")])
        #expect(try await !store.completeJob(id: first.id, attempt: 1, result: pass, verdict: decide), "the stale attempt does not count")
        #expect(try await store.completeJob(id: retaken.id, attempt: 2, result: pass, verdict: decide))
        #expect(try await !store.completeJob(id: retaken.id, attempt: 2, result: pass, verdict: decide), "nor does a second completion")
        #expect(verdicts.value == 0, "one job is still running")
        #expect(try await store.submission(id: submission.id)?.state == .checking)

        let failed = CheckResult(findings: [Finding(.error, "scanner.x.bad", "bad")])
        #expect(try await store.completeJob(id: second.id, attempt: 1, result: failed, verdict: decide))
        #expect(verdicts.value == 1)
        let done = try #require(try await store.submission(id: submission.id))
        #expect(done.state == .changesRequested && done.reason == "3", "the verdict saw the inspection and both checks")
        let jobs = try await store.jobs(submission: submission.id)
        #expect(jobs.map(\.state) == [.done, .done, .done] && jobs.map { $0.result?.outcome } == [.passed, .passed, .failed])
        let states = try await store.events(submission: submission.id).filter { $0.kind == .state }.map(\.state)
        #expect(states == [.submitted, .changesRequested], "submitted, then moved on once")
        #expect(try await store.lastEventID() == store.events(after: 0, limit: 100).last?.id)
    }

    @Test(arguments: Kind.allCases)
    func releasedAndInterruptedJobsRunAgain(kind: Kind) async throws {
        let (store, cleanup) = try await Self.makeStore(kind)
        defer { Task { await cleanup() } }
        try await Self.insert(store, Self.submission("1.0.0"))
        let job = try #require(try await store.claimJob(lease: 600))
        try await store.releaseJob(id: job.id, attempt: job.attempts, retryAt: Date().addingTimeInterval(0.3))
        #expect(try await store.claimJob(lease: 600) == nil, "not before its retry time")
        try await Task.sleep(for: .milliseconds(400))
        let again = try #require(try await store.claimJob(lease: 600))
        #expect(again.attempts == 2)
        #expect(try await store.requeueRunningJobs() == 1)
        #expect(try await store.claimJob(lease: 600)?.attempts == 3)
    }

    @Test(arguments: Kind.allCases)
    func autoPublishersAndComments(kind: Kind) async throws {
        let (store, cleanup) = try await Self.makeStore(kind)
        defer { Task { await cleanup() } }
        try await store.setAutoPublish(user: "alice", enabled: true)
        #expect(try await store.autoPublishers() == ["alice"])
        await #expect(throws: AccountStoreError.userNotFound("nobody")) { try await store.setAutoPublish(user: "nobody", enabled: true) }
        let submission = Self.submission("1.0.0")
        try await Self.insert(store, submission)
        let job = try #require(try await store.claimJob(lease: 60))
        _ = try await store.completeJob(id: job.id, attempt: job.attempts, result: CheckResult(findings: [])) { _, auto in
            CheckVerdict(state: auto ? .published : .awaitingReview, reason: "auto \(auto)")
        }
        #expect(try await store.submission(id: submission.id)?.state == .published, "the store told the verdict alice auto-publishes")
        let comment = try await store.addComment(ReviewEvent(submission: submission.id, at: Date(), actor: "rev1", kind: .comment,
                                                             message: "looks fine", file: "src/x.c", line: 3))
        #expect(comment.id > 0)
        let events = try await store.events(submission: submission.id)
        #expect(events.last?.id == comment.id && events.last?.message == "looks fine" && events.last?.file == "src/x.c" && events.last?.line == 3)
        await #expect(throws: SubmissionStoreError.notFound("sub_00000000000000000000")) {
            _ = try await store.addComment(ReviewEvent(submission: "sub_00000000000000000000", at: Date(), actor: "x", kind: .comment))
        }
    }
}

/// Counts verdicts (called under the store's write lock).
final class VerdictCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    func add() { lock.withLock { count += 1 } }
    var value: Int { lock.withLock { count } }
}
