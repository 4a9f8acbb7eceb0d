import Foundation
import HTTPTypes
import Hummingbird
import PackageFormat
import Registry
import Storage

/// An RFC 9457 problem document: what every error response carries, as
/// `application/problem+json`, with a stable `code`.
struct Problem: Error, Encodable, Sendable {
    var status: HTTPResponse.Status
    var code: String
    var title: String
    var detail: String
    var findings: [Finding]?
    /// Seconds to wait before trying again (429), sent as Retry-After.
    var retryAfter: Int?

    enum CodingKeys: String, CodingKey { case type, title, status, detail, code, findings }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode("urn:epr:problem:\(code)", forKey: .type)
        try container.encode(title, forKey: .title)
        try container.encode(status.code, forKey: .status)
        try container.encode(detail, forKey: .detail)
        try container.encode(code, forKey: .code)
        try container.encodeIfPresent(findings, forKey: .findings)
    }

    init(_ status: HTTPResponse.Status, _ code: String, _ detail: String, findings: [Finding]? = nil) {
        self.status = status
        self.code = code
        self.title = status.reasonPhrase
        self.detail = detail
        self.findings = findings
    }

    init(_ error: RegistryError) {
        let status: HTTPResponse.Status = switch error {
        case .invalidName, .invalidVersion, .invalidPlatform, .invalidDigest, .invalidUserName, .invalidToken, .invalidRequest: .badRequest
        case .packageNotFound, .versionNotFound, .noPublishedVersion, .noBuildForPlatform, .artifactMismatch, .blobNotFound,
             .userNotFound, .tokenNotFound, .invitationNotFound, .sessionNotFound, .organisationNotFound, .submissionNotFound,
             .signingKeyNotFound, .signingGrantNotFound, .signatureNotFound, .attestationNotFound: .notFound
        case .versionExists, .userExists, .ownerConflict, .organisationConflict, .submissionState, .signingNotConfigured, .signingKeyRevoked: .conflict
        case .invalidPackage, .archiveRefused, .invalidPassword, .acknowledgementRequired, .signatureRefused, .signatureRequired: .unprocessableContent
        case .unauthenticated, .signInFailed, .secondFactorRequired, .externalSignInFailed: .unauthorized
        case .forbidden, .registrationClosed, .signupInvitationInvalid, .signingNotGranted: .forbidden
        case .rateLimited: .tooManyRequests
        }
        var findings: [Finding]?
        if case let .invalidPackage(list) = error { findings = list }
        self.init(status, error.code, error.detail, findings: findings)
        if case let .rateLimited(seconds, _) = error { retryAfter = seconds }
    }

    func response() -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let body = (try? encoder.encode(self)) ?? Data("{}".utf8)
        var headers: HTTPFields = [.contentType: "application/problem+json"]
        if status == .unauthorized { headers[.wwwAuthenticate] = "Bearer realm=\"epr\"" }
        if let retryAfter { headers[.retryAfter] = String(retryAfter) }
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: body)))
    }
}

/// Maps every error a handler throws to a problem document, in one place, without leaking internals.
struct ProblemMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let problem as Problem {
            return problem.response()
        } catch let error as RegistryError {
            return Problem(error).response()
        } catch let error as HTTPError {
            let code = switch error.status {
            case .notFound: "not-found"
            case .methodNotAllowed: "method-not-allowed"
            case .contentTooLarge: "body-too-large"
            default: "http-\(error.status.code)"
            }
            return Problem(error.status, code, error.body ?? error.status.reasonPhrase).response()
        } catch {
            context.logger.error("request failed", metadata: ["error": "\(String(reflecting: error))"])
            return Problem(.internalServerError, "internal-error", "the server could not complete the request").response()
        }
    }
}
