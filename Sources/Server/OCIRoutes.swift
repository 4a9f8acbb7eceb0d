import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import PackageFormat
import Registry
import Storage

/// The OCI Distribution API (v1.1) under `/v2/`: pulls of published versions as bpfman
/// bytecode images and package artifacts, pushes (monolithic, chunked, streamed, mounts),
/// tags, referrers, deletes when configured, and the registry token flow. Errors use the
/// specification's `{"errors": [...]}` form and codes.
struct OCIRoutes: Sendable {
    let registry: RegistryService
    let authenticator: Authenticator
    let downloads: DownloadRoutes
    let front: FrontCache
    let tokens: OCITokens
    let uploads = OCIUploads()
    let configuration: ServerConfiguration
    let tls: Bool

    static let apiVersion = HTTPField.Name("Docker-Distribution-API-Version")!
    static let contentDigest = HTTPField.Name("Docker-Content-Digest")!
    static let uploadUUID = HTTPField.Name("Docker-Upload-UUID")!
    static let ociSubject = HTTPField.Name("OCI-Subject")!
    static let filtersApplied = HTTPField.Name("OCI-Filters-Applied")!
    static let chunkMinLength = HTTPField.Name("OCI-Chunk-Min-Length")!
    static let submissionHeader = HTTPField.Name("Epr-Submission")!
    static let link = HTTPField.Name("Link")!
    /// How much of a refused body is read and dropped before the connection is closed instead.
    static let drainLimit = 64 << 20

    func add(to router: Router<RegistryRequestContext>) {
        router.get("v2", use: wrap { request, context in try await base(request, context) })
        router.get("v2/token", use: token)
        router.get("v2/:name/manifests/:reference", use: wrap(getManifest))
        router.head("v2/:name/manifests/:reference", use: wrap(getManifest))
        router.put("v2/:name/manifests/:reference", use: wrap(putManifest))
        router.delete("v2/:name/manifests/:reference", use: wrap(deleteManifest))
        router.get("v2/:name/blobs/:digest", use: wrap(getBlob))
        router.head("v2/:name/blobs/:digest", use: wrap(getBlob))
        router.delete("v2/:name/blobs/:digest", use: wrap(deleteBlob))
        router.post("v2/:name/blobs/uploads", use: wrap(startUpload))
        router.get("v2/:name/blobs/uploads/:id", use: wrap(uploadStatus))
        router.patch("v2/:name/blobs/uploads/:id", use: wrap(patchUpload))
        router.put("v2/:name/blobs/uploads/:id", use: wrap(finishUpload))
        router.delete("v2/:name/blobs/uploads/:id", use: wrap(cancelUpload))
        router.get("v2/:name/tags/list", use: wrap(tags))
        router.get("v2/:name/referrers/:digest", use: wrap(referrers))
        router.get("api/v1/oci/public-key", use: publicKey)
    }

    // MARK: Errors and authentication

    typealias Handler = @Sendable (Request, RegistryRequestContext) async throws -> Response

    /// Answers errors in the specification's form, with a Bearer challenge on 401.
    func wrap(_ handler: @escaping Handler) -> Handler {
        { request, context in
            do {
                var response = try await handler(request, context)
                response.headers[Self.apiVersion] = "registry/2.0"
                return response
            } catch let error as OCIError {
                return errorResponse(error, request: request, context: context)
            } catch let error as RegistryError {
                switch error {
                case .unauthenticated: return errorResponse(.unauthorized("authentication required"), request: request, context: context)
                case let .forbidden(reason): return errorResponse(.denied(reason), request: request, context: context)
                case let .rateLimited(seconds, reason):
                    var response = errorResponse(.tooManyRequests(reason), request: request, context: context)
                    response.headers[.retryAfter] = String(seconds)
                    return response
                default:
                    let problem = Problem(error)
                    return errorResponse(OCIError(code: problem.status.code == 404 ? "NAME_UNKNOWN" : "DENIED", status: Int(problem.status.code),
                                                  message: problem.title, detail: problem.detail), request: request, context: context)
                }
            } catch let problem as Problem {
                let code = problem.status == .contentTooLarge ? "SIZE_INVALID" : problem.status.code == 429 ? "TOOMANYREQUESTS" : "UNSUPPORTED"
                return errorResponse(OCIError(code: code, status: problem.status.code, message: problem.title, detail: problem.detail),
                                     request: request, context: context)
            }
        }
    }

    func errorResponse(_ error: OCIError, request: Request, context: RegistryRequestContext) -> Response {
        var headers: HTTPFields = [.contentType: "application/json", Self.apiVersion: "registry/2.0"]
        if error.status == 401 {
            headers[.wwwAuthenticate] = challenge(request, scope: Self.scope(for: request))
        } else if error.message == OCIError.insufficientScopeMessage {
            headers[.wwwAuthenticate] = challenge(request, scope: Self.scope(for: request)) + ",error=\"insufficient_scope\""
        }
        let body: [String: Any] = ["errors": [["code": error.code, "message": error.message, "detail": error.detail ?? ""]]]
        let data = (try? JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])) ?? Data()
        return Response(status: .init(code: error.status), headers: headers,
                        body: request.method == .head ? .init() : .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    /// The scope a client needs for a request, for the challenge.
    static func scope(for request: Request) -> String? {
        let parts = request.uri.path.split(separator: "/")
        guard parts.count >= 3, parts[0] == "v2", parts[1] != "token" else { return nil }
        let actions = [.get, .head].contains(request.method) ? "pull" : request.method == .delete ? "delete" : "pull,push"
        return "repository:\(parts[1]):\(actions)"
    }

    func baseURL(_ request: Request) -> String {
        if let url = configuration.publicURL { return url }
        return "\(tls ? "https" : "http")://\(request.head.authority ?? "\(configuration.host):\(configuration.port)")"
    }

    var service: String { configuration.repositoryName }

    func challenge(_ request: Request, scope: String?) -> String {
        var value = "Bearer realm=\"\(baseURL(request))/v2/token\",service=\"\(service)\""
        if let scope { value += ",scope=\"\(scope)\"" }
        return value
    }

    /// The caller: an OCI bearer token, an API token as bearer, or Basic with the user name
    /// and an API token; nobody without credentials.
    func caller(_ request: Request, _ context: RegistryRequestContext) async throws -> OCICaller {
        guard let header = request.headers[.authorization] else { return OCICaller(principal: nil, access: nil) }
        let address = authenticator.address(request, context)
        if header.count > 7, header.prefix(7).lowercased() == "bearer " {
            let token = header.dropFirst(7).trimmingCharacters(in: .whitespaces)
            if token.hasPrefix(OCITokens.prefix) {
                guard let claims = tokens.verify(token) else { throw OCIError.unauthorized("the token is not valid or has expired") }
                let access = claims.access.mapValues(Set.init)
                guard let hash = claims.th else { return OCICaller(principal: nil, access: access) }
                let principal = try await registry.principal(forTokenHash: hash, address: address)
                guard principal.name == claims.sub else { throw OCIError.unauthorized("the token is not valid") }
                return OCICaller(principal: principal, access: access)
            }
            return OCICaller(principal: try await registry.principal(forToken: token, address: address), access: nil)
        }
        if let (user, secret) = Self.basic(header) {
            let principal = try await registry.principal(forToken: secret, address: address)
            guard principal.name == user else { throw OCIError.unauthorized("the token does not belong to \(user)") }
            return OCICaller(principal: principal, access: nil)
        }
        throw OCIError.unauthorized("use Bearer or Basic authentication")
    }

    static func basic(_ header: String) -> (String, String)? {
        guard header.count > 6, header.prefix(6).lowercased() == "basic ",
              let decoded = Data(base64Encoded: header.dropFirst(6).trimmingCharacters(in: .whitespaces)),
              let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":") else { return nil }
        return (String(text[..<colon]), String(text[text.index(after: colon)...]))
    }

    /// The caller, when it may take `action` on the repository as its token says; a 401 with
    /// the scope to ask for when it may not.
    func caller(_ request: Request, _ context: RegistryRequestContext, may action: String, on repository: String) async throws -> OCICaller {
        let caller = try await caller(request, context)
        guard caller.allows(action, on: repository) else { throw OCIError.insufficientScope("the token does not grant \(action) on \(repository)") }
        if action != "pull", caller.principal == nil { throw OCIError.unauthorized("\(action) needs authentication") }
        return caller
    }

    // MARK: Base and token

    @Sendable func base(_ request: Request, _ context: RegistryRequestContext) async throws -> Response {
        guard request.headers[.authorization] != nil else { throw OCIError.unauthorized("authenticate to use the registry (anonymous tokens pull)") }
        _ = try await caller(request, context)
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: "{}")))
    }

    /// The token endpoint: Basic with a user name and an API token gets what the user may do
    /// of what it asks; no credentials get pulls only.
    @Sendable func token(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let requested = OCITokens.parse(scopes: request.uri.queryParameters.getAll("scope").map { String($0) })
        var subject = "", hash: String?
        var granted: [String: [String]] = [:]
        if let header = request.headers[.authorization] {
            // Basic with the user name and an API token, or the API token as a bearer.
            let presented: (user: String?, secret: String)? = if let (user, secret) = Self.basic(header) { (user, secret) } else if header.count > 7,
                header.prefix(7).lowercased() == "bearer ", case let token = header.dropFirst(7).trimmingCharacters(in: .whitespaces),
                !token.hasPrefix(OCITokens.prefix) { (nil, token) } else { nil }
            guard let (user, secret) = presented else {
                return errorResponse(.unauthorized("send the user name and an API token with Basic authentication"), request: request, context: context)
            }
            do {
                let principal = try await registry.principal(forToken: secret, address: authenticator.address(request, context))
                guard user == nil || principal.name == user else { throw RegistryError.unauthenticated }
                subject = principal.name
                hash = AccessToken.hash(secret)
            } catch {
                return errorResponse(.unauthorized("the user name or API token is wrong"), request: request, context: context)
            }
            for (name, actions) in requested { granted[name] = actions.filter { ["pull", "push", "delete", "*"].contains($0) }.sorted() }
        } else {
            for (name, actions) in requested where actions.contains("pull") { granted[name] = ["pull"] }
        }
        let now = Date()
        let token = tokens.issue(.init(sub: subject, th: hash, access: granted, exp: now.timeIntervalSince1970 + OCITokens.lifetime,
                                       iat: now.timeIntervalSince1970))
        let body: [String: Any] = ["token": token, "access_token": token, "expires_in": Int(OCITokens.lifetime),
                                   "issued_at": ISO8601DateFormatter().string(from: now)]
        let data = try JSONSerialization.data(withJSONObject: body, options: [.sortedKeys])
        return Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                        body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    @Sendable func publicKey(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        guard let signer = registry.ociSigner else { throw Problem(.notFound, "not-found", "the repository signs no OCI manifests") }
        return Response(status: .ok, headers: [.contentType: "application/x-pem-file", .cacheControl: "public, max-age=300"],
                        body: .init(byteBuffer: ByteBuffer(string: signer.publicKeyPEM)))
    }

    // MARK: Manifests

    func repository(_ context: RegistryRequestContext) throws -> String {
        try registry.ociRepository(try context.parameters.require("name"))
    }

    @Sendable func getManifest(_ request: Request, _ context: RegistryRequestContext) async throws -> Response {
        let repository = try repository(context), reference = try context.parameters.require("reference")
        let anonymous = request.headers[.authorization] == nil
        let ticket = anonymous ? front.ticket(for: request.head) : nil
        let caller = try await caller(request, context, may: "pull", on: repository)
        let record = try await registry.ociManifest(repository: repository, reference: reference, principal: caller.principal)
        let headers: HTTPFields = [
            .contentType: record.mediaType, Self.contentDigest: record.digest.description, .eTag: "\"\(record.digest)\"",
            .contentLength: String(record.content.count), Self.apiVersion: "registry/2.0",
            .cacheControl: !record.isPublic ? "private, no-store" : reference.hasPrefix("sha256:") ? "public, max-age=31536000, immutable" : "no-cache",
        ]
        if let match = request.headers[.ifNoneMatch], DownloadRoutes.etagMatches(match, digest: record.digest) {
            return Response(status: .notModified, headers: headers)
        }
        if record.isPublic { front.store(ticket, headers: headers, body: .bytes(ByteBuffer(bytes: record.content)), isDownload: false) }
        return Response(status: .ok, headers: headers, body: request.method == .head ? .init() : .init(byteBuffer: ByteBuffer(bytes: record.content)))
    }

    @Sendable func putManifest(_ request: Request, _ context: RegistryRequestContext) async throws -> Response {
        let repository = try repository(context), reference = try context.parameters.require("reference")
        let caller = try await caller(request, context, may: "push", on: repository)
        let limit = RegistryService.ociManifestLimit
        var body = ByteBuffer()
        var tooLarge = request.headers[.contentLength].flatMap(Int.init).map { $0 > limit } ?? false
        var iterator = request.body.makeAsyncIterator()
        while !tooLarge, let chunk = try await iterator.next() {
            tooLarge = body.readableBytes + chunk.readableBytes > limit
            body.writeImmutableBuffer(chunk)
        }
        if tooLarge {
            // The rest of the body is read and dropped (up to a bound) so that the client, still
            // sending, reads the answer.
            var drained = 0
            while drained < Self.drainLimit, let chunk = try await iterator.next() { drained += chunk.readableBytes }
            var response = errorResponse(.sizeInvalid("manifests are at most \(limit) bytes", status: 413), request: request, context: context)
            if drained >= Self.drainLimit { response.headers[.connection] = "close" }
            return response
        }
        let result = try await registry.ociPutManifest(repository: repository, reference: reference, content: Data(body.readableBytesView),
                                                       contentType: request.headers[.contentType], principal: caller.principal)
        var headers: HTTPFields = [
            .location: "/v2/\(repository)/manifests/\(result.manifest.digest)", Self.contentDigest: result.manifest.digest.description,
        ]
        if let subject = result.manifest.subject { headers[Self.ociSubject] = subject.description }
        if let submission = result.submission {
            headers[Self.submissionHeader] = submission.id
            headers[Self.link] = "</api/v1/submissions/\(submission.id)>; rel=\"submission\""
        }
        return Response(status: .created, headers: headers)
    }

    @Sendable func deleteManifest(_ request: Request, _ context: RegistryRequestContext) async throws -> Response {
        let repository = try repository(context), reference = try context.parameters.require("reference")
        let caller = try await caller(request, context, may: "delete", on: repository)
        guard configuration.ociDelete else { throw OCIError.unsupported("this repository does not delete through the OCI API (oci_delete)") }
        try await registry.ociDelete(repository: repository, reference: reference, principal: caller.principal)
        return Response(status: .accepted)
    }

    // MARK: Blobs

    func digest(_ text: String) throws -> SHA256Digest {
        guard let digest = SHA256Digest(oci: text) else { throw OCIError.digestInvalid("\(text) is not a sha256 digest") }
        return digest
    }

    @Sendable func getBlob(_ request: Request, _ context: RegistryRequestContext) async throws -> Response {
        let repository = try repository(context), digest = try digest(try context.parameters.require("digest"))
        let ticket = request.headers[.authorization] == nil ? front.ticket(for: request.head) : nil
        let caller = try await caller(request, context, may: "pull", on: repository)
        let link = try await registry.ociBlob(repository: repository, digest: digest, principal: caller.principal)
        guard let size = try await registry.blobs.size(of: digest) else { throw OCIError.blobUnknown(digest.description) }
        return try await downloads.serve(digest: digest, size: size, filename: nil, request: request, context: context, mutable: false,
                                         ticket: link.isPublic ? ticket : nil, contentType: "application/octet-stream",
                                         extraHeaders: [Self.contentDigest: digest.description, Self.apiVersion: "registry/2.0"],
                                         cacheControl: link.isPublic ? nil : "private, no-store")
    }

    @Sendable func deleteBlob(_ request: Request, _ context: RegistryRequestContext) async throws -> Response {
        let repository = try repository(context), digest = try digest(try context.parameters.require("digest"))
        let caller = try await caller(request, context, may: "delete", on: repository)
        guard configuration.ociDelete else { throw OCIError.unsupported("this repository does not delete through the OCI API (oci_delete)") }
        try await registry.ociDeleteBlob(repository: repository, digest: digest, principal: caller.principal)
        return Response(status: .accepted)
    }

    // MARK: Tags and referrers

    @Sendable func tags(_ request: Request, _ context: RegistryRequestContext) async throws -> Response {
        let repository = try repository(context)
        _ = try await caller(request, context, may: "pull", on: repository)
        let query = request.uri.queryParameters
        var limit = 1000
        if let text = query.get("n") {
            guard let value = Int(text), value >= 0 else { throw OCIError(code: "PAGINATION_NUMBER_INVALID", status: 400, message: "invalid number of results requested", detail: text) }
            limit = min(value, 10_000)
        }
        let last = query.get("last")
        let (tags, more) = limit == 0 ? ([], false) : try await registry.ociTags(repository: repository, last: last, limit: limit)
        var headers: HTTPFields = [.contentType: "application/json"]
        if more, let final = tags.last {
            headers[Self.link] = "</v2/\(repository)/tags/list?n=\(limit)&last=\(final)>; rel=\"next\""
        }
        let data = try JSONSerialization.data(withJSONObject: ["name": repository, "tags": tags] as [String: Any], options: [.sortedKeys])
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    @Sendable func referrers(_ request: Request, _ context: RegistryRequestContext) async throws -> Response {
        let repository = try repository(context), subject = try digest(try context.parameters.require("digest"))
        let caller = try await caller(request, context, may: "pull", on: repository)
        let artifactType = request.uri.queryParameters.get("artifactType")
        let index = try await registry.ociReferrers(repository: repository, subject: subject, artifactType: artifactType, principal: caller.principal)
        var headers: HTTPFields = [.contentType: OCIMediaType.imageIndex]
        if artifactType != nil { headers[Self.filtersApplied] = "artifactType" }
        return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: index)))
    }
}
