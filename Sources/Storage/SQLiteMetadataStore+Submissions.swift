import Foundation
import NIOCore
import PackageFormat
import SQLiteNIO

extension SQLiteMetadataStore: SubmissionStore {
    static let submissionsMigration = [
        """
        CREATE TABLE submissions (id TEXT PRIMARY KEY, canonical TEXT NOT NULL REFERENCES packages(canonical),
            version TEXT NOT NULL, version_key TEXT NOT NULL, artifact TEXT NOT NULL, platforms TEXT NOT NULL, digest TEXT NOT NULL,
            size INTEGER NOT NULL, manifest BLOB NOT NULL, report BLOB NOT NULL, description TEXT NOT NULL, keywords TEXT NOT NULL,
            publisher TEXT NOT NULL, state TEXT NOT NULL,
            reason TEXT, approvals_required INTEGER NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL)
        """,
        // One open submission per version: the version number is held while it is on its way.
        """
        CREATE UNIQUE INDEX submissions_open ON submissions(canonical, version_key)
        WHERE state IN ('submitted', 'checking', 'awaiting-review')
        """,
        "CREATE INDEX submissions_state ON submissions(state, created_at)",
        "CREATE INDEX submissions_package ON submissions(canonical, created_at)",
        """
        CREATE TABLE review_events (id INTEGER PRIMARY KEY AUTOINCREMENT, submission TEXT NOT NULL REFERENCES submissions(id),
            at REAL NOT NULL, actor TEXT NOT NULL, kind TEXT NOT NULL, message TEXT, file TEXT, line INTEGER,
            acknowledged TEXT NOT NULL DEFAULT '')
        """,
        "CREATE INDEX review_events_submission ON review_events(submission, id)",
        """
        CREATE TABLE check_jobs (id INTEGER PRIMARY KEY AUTOINCREMENT, submission TEXT NOT NULL REFERENCES submissions(id),
            check_id TEXT NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0, lease_until REAL, result BLOB,
            created_at REAL NOT NULL, finished_at REAL, UNIQUE (submission, check_id))
        """,
        "CREATE INDEX check_jobs_queue ON check_jobs(state, id)",
        "ALTER TABLE users ADD COLUMN auto_publish INTEGER NOT NULL DEFAULT 0",
        "ALTER TABLE versions ADD COLUMN submission TEXT",
    ]

    /// Each event's resulting state (events recorded before it are taken to have left the
    /// submission as it is now), and webhooks' progress.
    static let eventsMigration = [
        "ALTER TABLE review_events ADD COLUMN state TEXT NOT NULL DEFAULT ''",
        "UPDATE review_events SET state = (SELECT s.state FROM submissions s WHERE s.id = review_events.submission)",
        webhooksTable,
    ]

    public func insertSubmission(_ submission: SubmissionRecord, packageName: String, description: String, ownership: PublishOwnership,
                                 done: [String: CheckResult], queued: [String], commitBlob: @Sendable () async throws -> Void) async throws {
        try await transaction { writer in
            let version = submission.version, canonical = submission.canonical
            let key = Self.versionKey(version.version)
            let taken = try await writer.query("""
                SELECT 1 FROM versions WHERE canonical = ?1 AND version_key = ?2
                UNION ALL SELECT 1 FROM submissions WHERE canonical = ?1 AND version_key = ?2
                AND state IN ('submitted', 'checking', 'awaiting-review')
                """, [.text(canonical), .text(key)])
            guard taken.isEmpty else { throw MetadataStoreError.versionExists(package: packageName, version: version.version) }
            let isNew = try await writer.query("SELECT 1 FROM packages WHERE canonical = ?", [.text(canonical)]).isEmpty
            if !isNew, ownership == .owners {
                let owns = try await writer.query(Self.ownsQuery, [.text(canonical), .text(version.publisher)])
                guard !owns.isEmpty else { throw AccountStoreError.notOwner(user: version.publisher, package: packageName) }
            }
            // A new name in an organisation's namespace (`org` or `org-...`) is the
            // organisation's, and only its members may take it.
            let namespace = isNew ? try await Self.namespace(of: canonical, writer) : nil
            if let namespace, ownership == .owners {
                let member = try await writer.query("SELECT 1 FROM org_members WHERE org = ? AND user = ?",
                                                    [.text(namespace), .text(version.publisher)])
                guard !member.isEmpty else { throw AccountStoreError.namespaceTaken(package: packageName, org: namespace) }
            }
            let now = submission.createdAt.timeIntervalSince1970
            let keywords = (try? JSONDecoder().decode(Manifest.self, from: version.manifest))?.keywords.joined(separator: " ") ?? ""
            if isNew {
                _ = try await writer.query("""
                    INSERT INTO packages (canonical, name, description, keywords, created_at, updated_at) VALUES (?, ?, ?, '', ?, ?)
                    """, [.text(canonical), .text(packageName), .text(description), .float(now), .float(now)])
                _ = try await writer.query("INSERT INTO owners (canonical, user, added_at) SELECT ?, name, ? FROM users WHERE name = ?",
                                           [.text(canonical), .float(now), .text(version.publisher)])
                if let namespace {
                    _ = try await writer.query("INSERT INTO package_orgs (canonical, org, since) VALUES (?, ?, ?)",
                                               [.text(canonical), .text(namespace), .float(now)])
                }
            }
            _ = try await writer.query("""
                INSERT INTO submissions (id, canonical, version, version_key, artifact, platforms, digest, size, manifest, report,
                description, keywords, publisher, state, reason, approvals_required, created_at, updated_at,
                signature, signer, signer_key_id, signature_checked_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, [.text(submission.id), .text(canonical), .text(version.version), .text(key), .text(version.artifact),
                      .text(version.platforms.joined(separator: ",")), .text(version.digest.hex), .integer(Int(version.size)),
                      .blob(ByteBuffer(bytes: version.manifest)), .blob(ByteBuffer(bytes: version.report)), .text(description),
                      .text(keywords), .text(version.publisher),
                      .text(submission.state.rawValue), Self.optional(submission.reason), .integer(submission.approvalsRequired),
                      .float(now), .float(submission.updatedAt.timeIntervalSince1970),
                      version.signature.map { .blob(ByteBuffer(bytes: $0.envelope)) } ?? .null, Self.optional(version.signature?.signer),
                      Self.optional(version.signature?.keyID), version.signature.map { .float($0.checkedAt.timeIntervalSince1970) } ?? .null])
            for (check, result) in done.sorted(by: { $0.key < $1.key }) {
                _ = try await writer.query("""
                    INSERT INTO check_jobs (submission, check_id, state, attempts, result, created_at, finished_at)
                    VALUES (?, ?, 'done', 1, ?, ?, ?)
                    """, [.text(submission.id), .text(check), .blob(ByteBuffer(bytes: try JSONEncoder().encode(result))), .float(now), .float(now)])
            }
            for check in queued {
                _ = try await writer.query("INSERT INTO check_jobs (submission, check_id, state, created_at) VALUES (?, ?, 'queued', ?)",
                                           [.text(submission.id), .text(check), .float(now)])
            }
            _ = try await Self.insertEvent(ReviewEvent(submission: submission.id, at: submission.createdAt, actor: version.publisher,
                                                       kind: .state, message: "submitted"), state: .submitted, writer)
            if submission.state != .submitted {
                // Decided at once (nothing left to check): say so, as the checks would have.
                _ = try await Self.insertEvent(ReviewEvent(submission: submission.id, at: submission.createdAt, actor: "epr", kind: .state,
                                                           message: submission.reason), state: submission.state, writer)
            }
            // Born published: ownership was checked just above. A version that went through
            // checks (an upload, decided at once) is attested; one inserted directly is not.
            if submission.state == .published {
                try await Self.publish(submission.id, at: now, recheckOwnership: false, attest: !done.isEmpty || !queued.isEmpty, writer)
            }
            // Last before COMMIT: a failed insert never leaves a blob behind.
            try await commitBlob()
        }
    }

    public func insertVersion(_ version: VersionRecord, packageName: String, canonical: String, description: String,
                              ownership: PublishOwnership, commitBlob: @Sendable () async throws -> Void) async throws {
        let submission = SubmissionRecord(id: SubmissionRecord.newID(), canonical: canonical, version: version, state: .published,
                                          reason: "published directly, without checks or review", approvalsRequired: 0,
                                          createdAt: version.publishedAt, updatedAt: version.publishedAt)
        try await insertSubmission(submission, packageName: packageName, description: description, ownership: ownership,
                                   done: [:], queued: [], commitBlob: commitBlob)
    }

    /// Publishes a submission's version and brings its package's description and keywords up to
    /// date (binds: the submission id).
    /// `attest`: the repository is to attest the version (it went through checks and review).
    static func publish(_ id: String, at now: Double, recheckOwnership: Bool = true, attest: Bool = true, _ writer: SQLiteConnection) async throws {
        // Whoever submitted it must still own the package (or be an admin): ownership may have
        // moved on while it was in review.
        guard let row = try await writer.query("SELECT canonical, publisher FROM submissions WHERE id = ?", [.text(id)]).first,
              let canonical = row.column("canonical")?.string, let publisher = row.column("publisher")?.string else {
            throw SubmissionStoreError.notFound(id)
        }
        if recheckOwnership {
            let owns = try await writer.query(ownsQuery + " UNION ALL SELECT 1 FROM users WHERE name = ?2 AND role = 'admin'",
                                              [.text(canonical), .text(publisher)])
            guard !owns.isEmpty else { throw AccountStoreError.notOwner(user: publisher, package: canonical) }
        }
        _ = try await writer.query("""
            INSERT INTO versions (canonical, version, version_key, artifact, platforms, digest, size, manifest, report, publisher,
            published_at, submission, signature, signer, signer_key_id, signature_checked_at, attestation_pending)
            SELECT canonical, version, version_key, artifact, platforms, digest, size, manifest, report,
            publisher, ?, id, signature, signer, signer_key_id, signature_checked_at, ? FROM submissions WHERE id = ?
            """, [.float(now), .integer(attest ? 1 : 0), .text(id)])
        _ = try await writer.query("UPDATE submissions SET state = 'published', updated_at = ? WHERE id = ?", [.float(now), .text(id)])
        _ = try await writer.query("""
            UPDATE packages SET description = s.description, keywords = s.keywords, updated_at = ?
            FROM (SELECT canonical, description, keywords FROM submissions WHERE id = ?) AS s WHERE packages.canonical = s.canonical
            """, [.float(now), .text(id)])
    }

    public func submission(id: String) async throws -> SubmissionRecord? {
        try await reader.query(Self.submissionSelect + " WHERE s.id = ?", [.text(id)]).first.map(Self.submission)
    }

    public func submissions(states: Set<SubmissionState>, canonical: String?, publisher: String?, offset: Int, limit: Int) async throws
        -> Page<SubmissionRecord> {
        var conditions: [String] = [], binds: [SQLiteData] = []
        if !states.isEmpty {
            conditions.append("s.state IN (" + states.map { _ in "?" }.joined(separator: ", ") + ")")
            binds += states.sorted { $0.rawValue < $1.rawValue }.map { .text($0.rawValue) }
        }
        if let canonical { conditions.append("s.canonical = ?"); binds.append(.text(canonical)) }
        if let publisher { conditions.append("s.publisher = ?"); binds.append(.text(publisher)) }
        let filter = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        let total = try await reader.query("SELECT COUNT(*) AS n FROM submissions s" + filter, binds).first?.column("n")?.integer ?? 0
        let rows = try await reader.query(Self.submissionSelect + filter + " ORDER BY s.created_at DESC, s.id LIMIT ? OFFSET ?",
                                          binds + [.integer(limit), .integer(offset)])
        return Page(items: rows.map(Self.submission), total: total)
    }

    public func addComment(_ event: ReviewEvent) async throws -> ReviewEvent {
        try await transaction { writer in
            return try await Self.insertEvent(event, state: try await Self.state(of: event.submission, writer), writer)
        }
    }

    public func events(submission: String) async throws -> [ReviewEvent] {
        try await reader.query("SELECT * FROM review_events WHERE submission = ? ORDER BY id", [.text(submission)]).map(Self.event)
    }

    public func events(after id: Int, limit: Int) async throws -> [ReviewEvent] {
        try await reader.query("SELECT * FROM review_events WHERE id > ? ORDER BY id LIMIT ?", [.integer(id), .integer(limit)]).map(Self.event)
    }

    public func lastEventID() async throws -> Int {
        try await reader.query("SELECT COALESCE(MAX(id), 0) AS n FROM review_events").first?.column("n")?.integer ?? 0
    }

    public func transition(id: String, from: Set<SubmissionState>, to: SubmissionState, event: ReviewEvent) async throws -> SubmissionRecord {
        try await transaction { writer in
            let state = try await Self.state(of: id, writer)
            guard from.contains(state) else { throw SubmissionStoreError.wrongState(id: id, state: state) }
            _ = try await Self.insertEvent(event, state: to, writer)
            if !to.isOpen {
                _ = try await writer.query("UPDATE check_jobs SET state = 'cancelled', lease_until = NULL WHERE submission = ? AND state IN ('queued', 'running')",
                                           [.text(id)])
            }
            if to == .published {
                try await Self.publish(id, at: event.at.timeIntervalSince1970, writer)
            } else {
                _ = try await writer.query("UPDATE submissions SET state = ?, reason = ?, updated_at = ? WHERE id = ?",
                                           [.text(to.rawValue), Self.optional(event.message), .float(event.at.timeIntervalSince1970), .text(id)])
            }
            return try await Self.submission(id, writer)
        }
    }

    public func approve(id: String, event: ReviewEvent) async throws -> SubmissionRecord {
        try await transaction { writer in
            let state = try await Self.state(of: id, writer)
            guard state == .awaitingReview else { throw SubmissionStoreError.wrongState(id: id, state: state) }
            let approval = try await Self.insertEvent(event, state: .awaitingReview, writer)
            let row = try await writer.query("""
                SELECT s.approvals_required AS required, (SELECT COUNT(DISTINCT actor) FROM review_events e
                WHERE e.submission = s.id AND e.kind = 'approve' AND e.actor <> s.publisher) AS approvals FROM submissions s WHERE s.id = ?
                """, [.text(id)]).first
            if let row, (row.column("approvals")?.integer ?? 0) >= (row.column("required")?.integer ?? 1) {
                try await Self.publish(id, at: event.at.timeIntervalSince1970, writer)
                _ = try await writer.query("UPDATE review_events SET state = 'published' WHERE id = ?", [.integer(approval.id)])
            } else {
                _ = try await writer.query("UPDATE submissions SET updated_at = ? WHERE id = ?", [.float(event.at.timeIntervalSince1970), .text(id)])
            }
            return try await Self.submission(id, writer)
        }
    }

    // MARK: Check jobs

    public func claimJob(lease: TimeInterval) async throws -> CheckJob? {
        try await claim(lease: lease, build: false)
    }

    func claim(lease: TimeInterval, build: Bool) async throws -> CheckJob? {
        try await transaction { writer in
            let now = Date().timeIntervalSince1970
            guard let row = try await writer.query("""
                UPDATE check_jobs SET state = 'running', attempts = attempts + 1, lease_until = ?1
                WHERE id = (SELECT j.id FROM check_jobs j JOIN submissions s ON s.id = j.submission
                    WHERE s.state IN ('submitted', 'checking')
                    AND (j.state = 'queued' AND (j.lease_until IS NULL OR j.lease_until <= ?2) OR j.state = 'running' AND j.lease_until <= ?2)
                    AND (CASE WHEN ?3 THEN j.check_id = '\(Self.buildCheck)' ELSE j.check_id != '\(Self.buildCheck)' AND NOT EXISTS
                        (SELECT 1 FROM check_jobs b WHERE b.submission = j.submission AND b.check_id = '\(Self.buildCheck)' AND b.state != 'done') END)
                    ORDER BY j.id LIMIT 1)
                RETURNING *
                """, [.float(now + lease), .float(now), .integer(build ? 1 : 0)]).first else { return nil }
            let job = Self.job(row)
            _ = try await writer.query("UPDATE submissions SET state = 'checking', updated_at = ? WHERE id = ? AND state = 'submitted'",
                                       [.float(now), .text(job.submission)])
            return job
        }
    }

    public func completeJob(id: Int, attempt: Int, result: CheckResult,
                            verdict: @Sendable ([CheckResult], Bool) -> CheckVerdict) async throws -> Bool {
        try await transaction { writer in
            let now = Date().timeIntervalSince1970
            _ = try await writer.query("""
                UPDATE check_jobs SET state = 'done', result = ?, finished_at = ?, lease_until = NULL
                WHERE id = ? AND state = 'running' AND attempts = ?
                """, [.blob(ByteBuffer(bytes: try JSONEncoder().encode(result))), .float(now), .integer(id), .integer(attempt)])
            guard try await Self.changes(writer) == 1 else { return false }
            guard let submission = try await writer.query("SELECT submission FROM check_jobs WHERE id = ?", [.integer(id)])
                .first?.column("submission")?.string else { return true }
            try await Self.decideIfChecked(submission, at: now, verdict: verdict, writer)
            return true
        }
    }

    /// Once every check of a submission is done, decides where it goes (publishing it when the
    /// verdict says so), in the caller's transaction.
    static func decideIfChecked(_ submission: String, at now: Double, verdict: @Sendable ([CheckResult], Bool) -> CheckVerdict,
                                _ writer: SQLiteConnection) async throws {
        let jobs = try await writer.query("SELECT * FROM check_jobs WHERE submission = ?", [.text(submission)]).map(Self.job)
        guard jobs.allSatisfy({ $0.state == .done }) else { return }
        let state = try await Self.state(of: submission, writer)
        guard state == .submitted || state == .checking else { return }
        do {
            let auto = try await writer.query("""
                SELECT u.auto_publish AS auto FROM submissions s JOIN users u ON u.name = s.publisher WHERE s.id = ?
                """, [.text(submission)]).first?.column("auto")?.integer == 1
            // A result that cannot be read is a check that did not run, never a pass.
            let results = jobs.map { $0.result ?? CheckResult(findings: [Finding(.warning, "\($0.check).not-run", "the result of \($0.check) cannot be read")],
                                                              ranFully: false) }
            var decision = verdict(results, auto)
            if decision.state == .published {
                _ = try await writer.query("SAVEPOINT publishing")
                do {
                    try await Self.publish(submission, at: now, writer)
                    _ = try await writer.query("RELEASE publishing")
                } catch let AccountStoreError.notOwner(user, package) {
                    _ = try await writer.query("ROLLBACK TO publishing")
                    decision = CheckVerdict(state: .changesRequested, reason: "\(user) no longer owns \(package)")
                }
            }
            _ = try await Self.insertEvent(ReviewEvent(submission: submission, at: Date(timeIntervalSince1970: now), actor: "epr",
                                                       kind: .state, message: decision.reason), state: decision.state, writer)
            _ = try await writer.query("UPDATE submissions SET state = ?, reason = ?, updated_at = ? WHERE id = ?",
                                       [.text(decision.state.rawValue), .text(decision.reason), .float(now), .text(submission)])
        }
    }

    public func releaseJob(id: Int, attempt: Int, retryAt: Date) async throws {
        try await execute("UPDATE check_jobs SET state = 'queued', lease_until = ? WHERE id = ? AND state = 'running' AND attempts = ?",
                          [.float(retryAt.timeIntervalSince1970), .integer(id), .integer(attempt)])
    }

    public func requeueRunningJobs() async throws -> Int {
        try await transaction { writer in
            // Build jobs are held by workers of their own, which a restart of the server does not stop.
            _ = try await writer.query("UPDATE check_jobs SET state = 'queued', lease_until = NULL WHERE state = 'running' AND check_id != '\(Self.buildCheck)'")
            return try await Self.changes(writer)
        }
    }

    public func jobs(submission: String) async throws -> [CheckJob] {
        try await reader.query("SELECT * FROM check_jobs WHERE submission = ? ORDER BY id", [.text(submission)]).map(Self.job)
    }

    public func autoPublishers() async throws -> [String] {
        try await reader.query("SELECT name FROM users WHERE auto_publish = 1 ORDER BY name").compactMap { $0.column("name")?.string }
    }

    public func setAutoPublish(user: String, enabled: Bool) async throws {
        try await transaction { writer in
            _ = try await writer.query("UPDATE users SET auto_publish = ? WHERE name = ?", [.integer(enabled ? 1 : 0), .text(user)])
            guard try await Self.changes(writer) == 1 else { throw AccountStoreError.userNotFound(user) }
        }
    }

    // MARK: Rows

    static let submissionSelect = "SELECT s.*, p.name AS package_name FROM submissions s JOIN packages p ON p.canonical = s.canonical"

    static func state(of id: String, _ connection: SQLiteConnection) async throws -> SubmissionState {
        guard let text = try await connection.query("SELECT state FROM submissions WHERE id = ?", [.text(id)]).first?.column("state")?.string,
              let state = SubmissionState(rawValue: text) else { throw SubmissionStoreError.notFound(id) }
        return state
    }

    static func submission(_ id: String, _ connection: SQLiteConnection) async throws -> SubmissionRecord {
        guard let row = try await connection.query(submissionSelect + " WHERE s.id = ?", [.text(id)]).first else {
            throw SubmissionStoreError.notFound(id)
        }
        return submission(row)
    }

    static func insertEvent(_ event: ReviewEvent, state: SubmissionState, _ writer: SQLiteConnection) async throws -> ReviewEvent {
        let row = try await writer.query("""
            INSERT INTO review_events (submission, at, actor, kind, message, file, line, acknowledged, state)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id
            """, [.text(event.submission), .float(event.at.timeIntervalSince1970), .text(event.actor), .text(event.kind.rawValue),
                  optional(event.message), optional(event.file), event.line.map { .integer($0) } ?? .null,
                  .text(event.acknowledged.joined(separator: ",")), .text(state.rawValue)]).first
        var stored = event
        stored.id = row?.column("id")?.integer ?? 0
        stored.state = state
        return stored
    }

    static func optional(_ value: String?) -> SQLiteData { value.map(SQLiteData.text) ?? .null }

    static func submission(_ row: SQLiteRow) -> SubmissionRecord {
        func data(_ name: String) -> Data { row.column(name)?.blob.map { Data($0.readableBytesView) } ?? Data() }
        func date(_ name: String) -> Date { Date(timeIntervalSince1970: row.column(name)?.double ?? 0) }
        let version = VersionRecord(
            package: row.column("package_name")?.string ?? "", version: row.column("version")?.string ?? "",
            artifact: row.column("artifact")?.string ?? "",
            platforms: (row.column("platforms")?.string ?? "").split(separator: ",").map(String.init),
            digest: SHA256Digest(hex: row.column("digest")?.string ?? ""), size: Int64(row.column("size")?.integer ?? 0),
            manifest: data("manifest"), report: data("report"), publisher: row.column("publisher")?.string ?? "",
            publishedAt: date("updated_at"), signature: signature(row))
        return SubmissionRecord(id: row.column("id")?.string ?? "", canonical: row.column("canonical")?.string ?? "", version: version,
                                state: SubmissionState(rawValue: row.column("state")?.string ?? "") ?? .submitted,
                                reason: row.column("reason")?.string, approvalsRequired: row.column("approvals_required")?.integer ?? 1,
                                createdAt: date("created_at"), updatedAt: date("updated_at"))
    }

    static func event(_ row: SQLiteRow) -> ReviewEvent {
        ReviewEvent(id: row.column("id")?.integer ?? 0, submission: row.column("submission")?.string ?? "",
                    at: Date(timeIntervalSince1970: row.column("at")?.double ?? 0), actor: row.column("actor")?.string ?? "",
                    kind: ReviewEvent.Kind(rawValue: row.column("kind")?.string ?? "") ?? .comment, message: row.column("message")?.string,
                    file: row.column("file")?.string, line: row.column("line")?.integer,
                    acknowledged: (row.column("acknowledged")?.string ?? "").split(separator: ",").map(String.init),
                    state: row.column("state")?.string.flatMap(SubmissionState.init(rawValue:)))
    }

    static func job(_ row: SQLiteRow) -> CheckJob {
        CheckJob(id: row.column("id")?.integer ?? 0, submission: row.column("submission")?.string ?? "",
                 check: row.column("check_id")?.string ?? "", state: CheckJob.State(rawValue: row.column("state")?.string ?? "") ?? .queued,
                 attempts: row.column("attempts")?.integer ?? 0, leaseUntil: row.column("lease_until")?.double.map(Date.init(timeIntervalSince1970:)),
                 result: row.column("result")?.blob.flatMap { try? JSONDecoder().decode(CheckResult.self, from: Data($0.readableBytesView)) },
                 createdAt: Date(timeIntervalSince1970: row.column("created_at")?.double ?? 0),
                 finishedAt: row.column("finished_at")?.double.map(Date.init(timeIntervalSince1970:)))
    }
}
