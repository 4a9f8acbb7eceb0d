import Foundation
import Hummingbird
import NIOCore
import PackageFormat
import Registry
import RegistryAPI

/// Build workers in the REST API v1: a worker (a token with the build scope) takes the oldest
/// build job and reports its result, with the log and the built archive.
struct BuildRoutes: Sendable {
    let registry: RegistryService
    let authenticator: Authenticator
    let configuration: ServerConfiguration

    func add(to router: Router<RegistryRequestContext>) {
        let api = router.group("api/v1")
        api.post("builds/claim") { request, context in
            let principal = try await authenticator.principal(request, context)
            guard let assignment = try await registry.claimBuild(by: principal) else { return Response(status: .noContent) }
            let version = assignment.submission.version
            return try JSON.response(BuildJobBody(
                job: assignment.job.id, attempt: assignment.job.attempts, submission: assignment.submission.id, name: version.package,
                version: version.version, archive_url: "/api/v1/submissions/\(assignment.submission.id)/archive", sha256: version.digest.description,
                sources_only: assignment.sourcesOnly, lease_seconds: Int(assignment.lease)))
        }
        api.post("builds/:job/result") { request, context in
            let principal = try await authenticator.principal(request, context)
            // Before the body (which may hold an archive) is read.
            try await registry.authorize(.build, principal, target: nil)
            guard let job = Int(try context.parameters.require("job")) else { throw Problem(.notFound, "build-job-not-found", "no such build job") }
            guard request.headers[.contentType]?.lowercased().hasPrefix("application/json") == true else {
                throw Problem(.unsupportedMediaType, "unsupported-media-type", "the body must be application/json")
            }
            // The archive travels as base64: a third more than its size.
            let limit = Int(min(configuration.maxUploadSize, 1 << 30)) / 3 * 4 + (1 << 20)
            let buffer = try await request.body.collect(upTo: limit)
            let body: BuildResultRequest
            do { body = try JSONDecoder().decode(BuildResultRequest.self, from: buffer) } catch {
                throw Problem(.badRequest, "invalid-body", #"the body must be JSON like {"submission": "sub_...", "attempt": 1, "outcome": "built", "log": "...", "archive": "<base64>"}"#)
            }
            let outcome: BuildOutcome
            switch body.outcome {
            case "built":
                guard let text = body.archive, let data = Data(base64Encoded: text) else {
                    throw Problem(.badRequest, "invalid-body", "a built outcome carries the archive, base64")
                }
                let file = try registry.blobs.temporaryFile()
                try data.write(to: file)
                outcome = .built(archive: file)
            case "failed":
                outcome = .failed(check: body.check ?? "build.failed", message: body.message ?? "the build failed")
            default:
                throw Problem(.badRequest, "invalid-body", "outcome is built or failed")
            }
            let (counted, result) = try await registry.reportBuild(job: job, attempt: body.attempt, submission: body.submission, outcome: outcome,
                                                                   log: body.log, by: principal)
            guard counted else {
                throw Problem(.conflict, "build-job-lost", "this attempt no longer holds the build job (its lease ran out, or the submission moved on)")
            }
            return try JSON.response(BuildResultBody(outcome: result.outcome.rawValue, findings: result.findings.map {
                FindingBody(severity: $0.severity.rawValue, check: $0.check, message: $0.message, location: $0.location)
            }))
        }
    }
}
