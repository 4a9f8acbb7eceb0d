import Foundation

/// A finding of a check, as the API shows it.
public struct FindingBody: Codable, Sendable, Equatable {
    public var severity: String
    public var check: String
    public var message: String
    public var location: String?

    public init(severity: String, check: String, message: String, location: String?) {
        self.severity = severity
        self.check = check
        self.message = message
        self.location = location
    }
}

/// One automated check of a submission.
public struct CheckBody: Codable, Sendable, Equatable {
    public var check: String
    /// queued, running or done.
    public var state: String
    public var attempts: Int
    /// passed, warnings, failed or not-run, once done.
    public var outcome: String?
    public var findings: [FindingBody]
    /// Figures and logs the check recorded (the verifier's instruction counts and log tail).
    public var details: [String: String]
    public var finished_at: Date?

    public init(check: String, state: String, attempts: Int, outcome: String?, findings: [FindingBody], details: [String: String],
                finished_at: Date?) {
        self.check = check
        self.state = state
        self.attempts = attempts
        self.outcome = outcome
        self.findings = findings
        self.details = details
        self.finished_at = finished_at
    }
}

/// A comment, decision or change of state of a submission.
public struct ReviewEventBody: Codable, Sendable, Equatable {
    public var id: Int
    public var at: Date
    public var actor: String
    /// comment, approve, reject, request-changes, withdraw, or state (the registry's own).
    public var kind: String
    public var message: String?
    public var file: String?
    public var line: Int?
    public var acknowledged: [String]
    /// The submission's state once this happened.
    public var state: String?

    public init(id: Int, at: Date, actor: String, kind: String, message: String?, file: String?, line: Int?, acknowledged: [String],
                state: String? = nil) {
        self.state = state
        self.id = id
        self.at = at
        self.actor = actor
        self.kind = kind
        self.message = message
        self.file = file
        self.line = line
        self.acknowledged = acknowledged
    }
}

/// A submission in lists, and at the head of its own page.
public struct SubmissionSummary: Codable, Sendable, Equatable {
    public var id: String
    public var name: String
    public var version: String
    /// submitted, checking, awaiting-review, changes-requested, rejected, withdrawn or published.
    public var state: String
    public var reason: String?
    public var publisher: String
    public var sha256: String
    public var size: Int64
    public var approvals_required: Int
    public var created_at: Date
    public var updated_at: Date
    /// Where reviewers download the archive.
    public var archive_url: String

    public init(id: String, name: String, version: String, state: String, reason: String?, publisher: String, sha256: String, size: Int64,
                approvals_required: Int, created_at: Date, updated_at: Date, archive_url: String) {
        self.id = id
        self.name = name
        self.version = version
        self.state = state
        self.reason = reason
        self.publisher = publisher
        self.sha256 = sha256
        self.size = size
        self.approvals_required = approvals_required
        self.created_at = created_at
        self.updated_at = updated_at
        self.archive_url = archive_url
    }
}

/// Everything a reviewer looks at.
public struct SubmissionDetail: Codable, Sendable, Equatable {
    public var submission: SubmissionSummary
    public var checks: [CheckBody]
    public var events: [ReviewEventBody]
    public var approvals: [String]
    /// Check ids of warnings an approval has to acknowledge.
    public var needs_acknowledgement: [String]

    public init(submission: SubmissionSummary, checks: [CheckBody], events: [ReviewEventBody], approvals: [String],
                needs_acknowledgement: [String]) {
        self.submission = submission
        self.checks = checks
        self.events = events
        self.approvals = approvals
        self.needs_acknowledgement = needs_acknowledgement
    }
}

/// A page of submissions.
public struct SubmissionPage: Codable, Sendable, Equatable {
    public var items: [SubmissionSummary]
    public var total: Int
    public var page: Int
    public var per_page: Int

    public init(items: [SubmissionSummary], total: Int, page: Int, per_page: Int) {
        self.items = items
        self.total = total
        self.page = page
        self.per_page = per_page
    }
}

/// A reviewer's decision.
public struct DecisionRequest: Codable, Sendable, Equatable {
    /// Why (required to reject or request changes).
    public var reason: String?
    /// Check ids of warnings the approval acknowledges.
    public var acknowledge: [String]?

    public init(reason: String? = nil, acknowledge: [String]? = nil) {
        self.reason = reason
        self.acknowledge = acknowledge
    }
}

/// A comment, on the submission or on a line of one of its files.
public struct CommentRequest: Codable, Sendable, Equatable {
    public var message: String
    public var file: String?
    public var line: Int?

    public init(message: String, file: String? = nil, line: Int? = nil) {
        self.message = message
        self.file = file
        self.line = line
    }
}

/// What changed since the previous published version.
public struct SubmissionDiff: Codable, Sendable, Equatable {
    public struct FieldChange: Codable, Sendable, Equatable {
        public var field: String
        public var before: String?
        public var after: String?
        public init(field: String, before: String?, after: String?) {
            self.field = field
            self.before = before
            self.after = after
        }
    }

    public struct HelperChange: Codable, Sendable, Equatable {
        public var program: String
        public var added: [String]
        public var removed: [String]
        public init(program: String, added: [String], removed: [String]) {
            self.program = program
            self.added = added
            self.removed = removed
        }
    }

    /// The version compared against; nil for a package's first version.
    public var base: String?
    public var manifest: [FieldChange]
    public var programs_added: [String]
    public var programs_removed: [String]
    public var maps_added: [String]
    public var maps_removed: [String]
    public var helpers: [HelperChange]
    public var files_added: [String]
    public var files_removed: [String]
    public var files_changed: [String]
    /// Of the files above, those that are sources.
    public var sources_changed: [String]

    public init(base: String?, manifest: [FieldChange], programs_added: [String], programs_removed: [String], maps_added: [String],
                maps_removed: [String], helpers: [HelperChange], files_added: [String], files_removed: [String], files_changed: [String],
                sources_changed: [String]) {
        self.base = base
        self.manifest = manifest
        self.programs_added = programs_added
        self.programs_removed = programs_removed
        self.maps_added = maps_added
        self.maps_removed = maps_removed
        self.helpers = helpers
        self.files_added = files_added
        self.files_removed = files_removed
        self.files_changed = files_changed
        self.sources_changed = sources_changed
    }
}

/// What a webhook receives: one event of a submission, and the submission as it stands.
public struct WebhookPayload: Codable, Sendable, Equatable {
    /// submission.submitted, .awaiting-review, .changes-requested, .rejected, .withdrawn,
    /// .published, .approved (an approval that did not publish yet) or .commented.
    public var event: String
    /// The event's number: increasing, and the same when a delivery is repeated.
    public var delivery: Int
    public var at: Date
    public var actor: String
    public var message: String?
    public var submission: SubmissionSummary

    public init(event: String, delivery: Int, at: Date, actor: String, message: String?, submission: SubmissionSummary) {
        self.event = event
        self.delivery = delivery
        self.at = at
        self.actor = actor
        self.message = message
        self.submission = submission
    }
}

/// A webhook and how its deliveries go, for admins.
public struct WebhookStatus: Codable, Sendable, Equatable {
    public var name: String
    public var url: String
    public var events: [String]?
    public var delivered_through: Int
    public var failed_attempts: Int
    public var next_attempt_at: Date?
    public var last_error: String?
    public var last_delivered_at: Date?
    public var dropped: Int

    public init(name: String, url: String, events: [String]?, delivered_through: Int, failed_attempts: Int, next_attempt_at: Date?,
                last_error: String?, last_delivered_at: Date?, dropped: Int) {
        self.name = name
        self.url = url
        self.events = events
        self.delivered_through = delivered_through
        self.failed_attempts = failed_attempts
        self.next_attempt_at = next_attempt_at
        self.last_error = last_error
        self.last_delivered_at = last_delivered_at
        self.dropped = dropped
    }
}
