import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import PackageFormat
import Registry
import RegistryAPI
import Storage

/// Submissions in the REST API v1: the review queue, a submission with its checks and
/// comments, its archive and its diff, and reviewers' decisions; which users auto-publish.
struct SubmissionRoutes: Sendable {
    let registry: RegistryService
    let authenticator: Authenticator
    let metrics: ServerMetrics
    let webhooks: WebhookDispatcher

    func add(to router: Router<RegistryRequestContext>) {
        let api = router.group("api/v1")
        api.get("submissions", use: list)
        api.get("submissions/:id", use: show)
        api.get("submissions/:id/archive", use: archive)
        api.get("submissions/:id/diff", use: diff)
        api.post("submissions/:id/approve", use: approve)
        api.post("submissions/:id/reject") { request, context in
            try await decide(request, context) { id, body, principal in
                try await registry.reject(id, reason: body.reason ?? "", by: principal)
            }
        }
        api.post("submissions/:id/request-changes") { request, context in
            try await decide(request, context) { id, body, principal in
                try await registry.requestChanges(id, reason: body.reason ?? "", by: principal)
            }
        }
        api.post("submissions/:id/withdraw") { request, context in
            try await decide(request, context) { id, body, principal in
                try await registry.withdraw(id, reason: body.reason, by: principal)
            }
        }
        api.post("submissions/:id/comments", use: comment)
        api.get("auto-publishers", use: autoPublishers)
        api.get("webhooks") { request, context in
            try await registry.authorize(.manageUsers, try await principal(request, context), target: nil)
            return try JSON.response(try await webhooks.status())
        }
        api.put("auto-publishers/:user") { request, context in try await setAutoPublish(request, context, enabled: true) }
        api.delete("auto-publishers/:user") { request, context in try await setAutoPublish(request, context, enabled: false) }
    }

    func principal(_ request: Request, _ context: RegistryRequestContext) async throws -> Principal? {
        try await authenticator.principal(request, context)
    }

    static func summary(_ submission: SubmissionRecord) -> SubmissionSummary {
        SubmissionSummary(id: submission.id, name: submission.version.package, version: submission.version.version,
                          state: submission.state.rawValue, reason: submission.reason, publisher: submission.version.publisher,
                          sha256: submission.version.digest.description, size: submission.version.size,
                          approvals_required: submission.approvalsRequired, created_at: submission.createdAt,
                          updated_at: submission.updatedAt, archive_url: "/api/v1/submissions/\(submission.id)/archive")
    }

    static func detail(_ view: SubmissionView) -> SubmissionDetail {
        SubmissionDetail(
            submission: summary(view.submission),
            checks: view.jobs.map { job in
                CheckBody(check: job.check, state: job.state.rawValue, attempts: job.attempts, outcome: job.result?.outcome.rawValue,
                          findings: (job.result?.findings ?? []).map {
                              FindingBody(severity: $0.severity.rawValue, check: $0.check, message: $0.message, location: $0.location)
                          },
                          details: job.result?.details ?? [:], finished_at: job.finishedAt)
            },
            events: view.events.map {
                ReviewEventBody(id: $0.id, at: $0.at, actor: $0.actor, kind: $0.kind.rawValue, message: $0.message, file: $0.file,
                                line: $0.line, acknowledged: $0.acknowledged, state: $0.state?.rawValue)
            },
            approvals: view.approvals, needs_acknowledgement: view.needsAcknowledgement)
    }

    @Sendable func list(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let query = request.uri.queryParameters
        var states: Set<SubmissionState> = []
        for text in (query.get("state") ?? "").split(separator: ",") {
            guard let state = SubmissionState(rawValue: String(text)) else {
                throw Problem(.badRequest, "invalid-state", "\(text) is not a submission state ("
                              + SubmissionState.allCases.map(\.rawValue).joined(separator: ", ") + ")")
            }
            states.insert(state)
        }
        let page = max(1, query.get("page", as: Int.self) ?? 1)
        guard page <= 100_000 else { throw Problem(.badRequest, "invalid-page", "page must be between 1 and 100000") }
        let perPage = min(100, max(1, query.get("per_page", as: Int.self) ?? 20))
        let result = try await registry.listSubmissions(states: states, package: query.get("package"), mine: query.get("mine") == "true",
                                                        page: page, perPage: perPage, by: try await principal(request, context))
        return try JSON.response(SubmissionPage(items: result.items.map(Self.summary), total: result.total, page: page, per_page: perPage))
    }

    @Sendable func show(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let view = try await registry.submission(try context.parameters.require("id"), by: try await principal(request, context))
        return try JSON.response(Self.detail(view))
    }

    @Sendable func diff(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        try JSON.response(try await registry.diff(try context.parameters.require("id"), by: try await principal(request, context)))
    }

    @Sendable func archive(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let submission = try await registry.submissionForDownload(try context.parameters.require("id"), by: try await principal(request, context))
        let digest = submission.version.digest
        guard let size = try await registry.blobs.size(of: digest) else {
            throw Problem(.gone, "submission-archive-gone", "the archive of \(submission.id) is no longer kept")
        }
        let headers: HTTPFields = [
            .contentType: "application/gzip", .contentLength: String(size), .eTag: "\"\(digest)\"",
            .cacheControl: "private, no-store", .contentDisposition: "attachment; filename=\"\(submission.version.artifact)\"",
        ]
        if request.method == .head { return Response(status: .ok, headers: headers) }
        metrics.downloaded(bytes: size)
        let chunks = try await registry.blobs.read(digest, range: nil)
        return Response(status: .ok, headers: headers, body: ResponseBody(contentLength: Int(size)) { writer in
            try await writer.write(chunks)
            try await writer.finish(nil)
        })
    }

    @Sendable func approve(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        try await decide(request, context) { id, body, principal in
            try await registry.approve(id, acknowledged: body.acknowledge ?? [], message: body.reason, by: principal)
        }
    }

    func decide(_ request: Request, _ context: RegistryRequestContext,
                _ action: (String, DecisionRequest, Principal?) async throws -> SubmissionView) async throws -> Response {
        let principal = try await principal(request, context)
        let id = try context.parameters.require("id")
        // No body at all is an empty decision (an approval without a note, a withdrawal).
        let buffer = try await request.body.collect(upTo: 64 * 1024)
        var body = DecisionRequest()
        if buffer.readableBytes > 0 {
            guard request.headers[.contentType]?.lowercased().hasPrefix("application/json") == true else {
                throw Problem(.unsupportedMediaType, "unsupported-media-type", "the body must be application/json")
            }
            do { body = try JSONDecoder().decode(DecisionRequest.self, from: buffer) } catch {
                throw Problem(.badRequest, "invalid-body", #"the body must be JSON like {"reason": "...", "acknowledge": ["check-id"]}"#)
            }
        }
        return try JSON.response(Self.detail(try await action(id, body, principal)))
    }

    @Sendable func comment(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let principal = try await principal(request, context)
        let body = try await JSONBody.decode(CommentRequest.self, from: request, example: #"{"message": "...", "file": "src/x.c", "line": 12}"#)
        let event = try await registry.comment(try context.parameters.require("id"), message: body.message, file: body.file, line: body.line,
                                               by: principal)
        return try JSON.response(ReviewEventBody(id: event.id, at: event.at, actor: event.actor, kind: event.kind.rawValue, message: event.message,
                                                 file: event.file, line: event.line, acknowledged: event.acknowledged,
                                                 state: event.state?.rawValue), status: .created)
    }

    @Sendable func autoPublishers(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        try JSON.response(try await registry.autoPublishers(by: try await principal(request, context)))
    }

    func setAutoPublish(_ request: Request, _ context: RegistryRequestContext, enabled: Bool) async throws -> Response {
        let user = try context.parameters.require("user")
        try await registry.setAutoPublish(user: user, enabled: enabled, by: try await principal(request, context))
        return Response(status: .noContent)
    }
}
