import Checks
import Foundation
import Hummingbird
import NIOCore
import PackageFormat
import Registry

/// Check workers in the REST API v1: a worker elsewhere (a token with the build scope) takes
/// the oldest check job, with the check's settings and the package's report, and reports its
/// result. The server's own check runner takes jobs from the same queue.
struct CheckJobRoutes: Sendable {
    let registry: RegistryService
    let authenticator: Authenticator

    func add(to router: Router<RegistryRequestContext>) {
        let api = router.group("api/v1")
        api.post("checks/claim") { request, context in
            let principal = try await authenticator.principal(request, context)
            guard let assignment = try await registry.claimCheck(by: principal) else { return Response(status: .noContent) }
            let version = assignment.submission.version
            return try JSON.response(CheckJobBody(
                job: assignment.job.id, attempt: assignment.job.attempts, submission: assignment.submission.id, name: version.package,
                version: version.version, archive_url: "/api/v1/submissions/\(assignment.submission.id)/archive",
                sha256: version.digest.description, lease_seconds: Int(assignment.lease), task: assignment.task))
        }
        api.post("checks/:job/result") { request, context in
            let principal = try await authenticator.principal(request, context)
            try await registry.authorize(.build, principal, target: nil)
            guard let job = Int(try context.parameters.require("job")) else { throw Problem(.notFound, "check-job-not-found", "no such check job") }
            guard request.headers[.contentType]?.lowercased().hasPrefix("application/json") == true else {
                throw Problem(.unsupportedMediaType, "unsupported-media-type", "the body must be application/json")
            }
            let buffer = try await request.body.collect(upTo: 64 << 20)
            let body: CheckResultRequest
            do { body = try JSONDecoder().decode(CheckResultRequest.self, from: buffer) } catch {
                throw Problem(.badRequest, "invalid-body",
                              #"the body must be JSON like {"submission": "sub_...", "attempt": 1, "result": {"outcome": "passed", "findings": [], "details": {}}}"#)
            }
            guard try await registry.reportCheck(job: job, attempt: body.attempt, submission: body.submission, result: body.result, by: principal) else {
                throw Problem(.conflict, "check-job-lost", "this attempt no longer holds the check job (its lease ran out, or the submission moved on)")
            }
            return Response(status: .noContent)
        }
    }
}
