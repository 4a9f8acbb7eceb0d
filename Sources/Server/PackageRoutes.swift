import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import PackageFormat
import Registry
import RegistryAPI
import Storage

/// The REST API v1: publish, list and search, package and version metadata, yank and
/// deprecation, and the generated L3AFD config entry.
struct PackageRoutes: Sendable {
    let registry: RegistryService
    let configuration: ServerConfiguration
    let authenticator: Authenticator
    let metrics: ServerMetrics
    /// Whole answers for the event loops to repeat (see ``FrontCache``).
    let front: FrontCache
    /// Encoded version metadata, keyed by everything that shapes it, so nothing stale is served.
    let answers = MemoryCache<String>(capacity: 32 << 20, largestEntry: 1 << 20)

    static let acceptedUploadTypes: Set<String> = [
        "application/gzip", "application/x-gzip", "application/octet-stream", "application/vnd.epr.package+gzip",
    ]

    func add(to router: Router<RegistryRequestContext>) {
        let api = router.group("api/v1")
        api.post("packages", use: publish)
        api.get("packages", use: search)
        api.get("packages/:name", use: package)
        api.get("packages/:name/versions", use: versions)
        api.get("packages/:name/versions/:version", use: version)
        api.put("packages/:name/versions/:version/yank") { request, context in try await yank(request, context, yanked: true) }
        api.delete("packages/:name/versions/:version/yank") { request, context in try await yank(request, context, yanked: false) }
        api.put("packages/:name/versions/:version/deprecation") { request, context in try await deprecate(request, context, remove: false) }
        api.delete("packages/:name/versions/:version/deprecation") { request, context in try await deprecate(request, context, remove: true) }
        api.get("packages/:name/versions/:version/l3afd-config", use: l3afdConfig)
        api.get("packages/:name/versions/:version/signature") { _, context in
            JSON.raw(try await registry.signature(try context.parameters.require("name"), try context.parameters.require("version")))
        }
        api.get("packages/:name/versions/:version/attestation") { _, context in
            JSON.raw(try await registry.attestation(try context.parameters.require("name"), try context.parameters.require("version")))
        }
    }

    func baseURL(_ request: Request) -> String {
        configuration.publicURL ?? "http://\(request.head.authority ?? "\(configuration.host):\(configuration.port)")"
    }

    func principal(_ request: Request, _ context: RegistryRequestContext) async throws -> Principal? {
        try await authenticator.principal(request, context)
    }

    // MARK: Publish

    /// Carries the contributor's signature of an upload: the base64 of its DSSE envelope.
    static let signatureHeader = HTTPField.Name("Epr-Signature")!

    static func signature(_ header: String?) throws -> Data? {
        guard let header else { return nil }
        guard header.utf8.count <= 96 * 1024, let data = Data(base64Encoded: header.trimmingCharacters(in: .whitespaces)), !data.isEmpty else {
            throw Problem(.badRequest, "invalid-signature-header", "Epr-Signature must be the base64 of the signature file (at most 72 KiB)")
        }
        return data
    }

    @Sendable func publish(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        // Refuse before reading a byte of the body: who, what type, how large.
        let principal = try await principal(request, context)
        try await registry.authorize(.upload, principal, target: nil)
        try await registry.checkPublishRate(principal)
        let type = request.headers[.contentType]?.split(separator: ";").first.map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        guard let type, Self.acceptedUploadTypes.contains(type) else {
            throw Problem(.unsupportedMediaType, "unsupported-media-type",
                          "send the package archive as application/gzip (got \(type ?? "no Content-Type"))")
        }
        let limit = configuration.maxUploadSize
        if let length = request.headers[.contentLength].flatMap(Int64.init), length > limit {
            throw Problem(.contentTooLarge, "body-too-large", "the upload is \(length) bytes; the limit is \(limit)")
        }
        let wait = try Self.wait(request.headers[HTTPField.Name("Prefer")!])
        let signature = try Self.signature(request.headers[Self.signatureHeader])
        let upload = try registry.blobs.temporaryFile()
        do {
            try await Spool.write(request.body, to: upload.path, limit: limit)
        } catch {
            try? FileManager.default.removeItem(at: upload)
            throw error
        }
        let submission = try await registry.publish(upload: upload, signature: signature, by: principal)
        metrics.published()
        // With `Prefer: wait=N`, answer once the checks are done (or after N seconds), looking
        // at the submission's state only, and less often as time goes by. A submission waiting
        // for a build worker is answered at once: a build may take longer than anyone waits; so
        // is every submission when check workers elsewhere take the checks.
        let awaitingBuild = try await registry.submissions.jobs(submission: submission.id).contains { $0.check == RegistryService.buildCheck }
        let waiting = awaitingBuild || registry.review.workers == 0 ? 0 : wait
        let deadline = ContinuousClock.now + .seconds(waiting)
        var state = submission.state, pause = Duration.milliseconds(20)
        while waiting > 0, state == .submitted || state == .checking, ContinuousClock.now < deadline {
            try await Task.sleep(for: pause)
            pause = min(pause * 2, .seconds(1))
            state = try await registry.submissions.submission(id: submission.id)?.state ?? state
        }
        let view = try await registry.submission(submission.id, by: principal)
        return try JSON.response(SubmissionRoutes.detail(view), status: .created, headers: [.location: "/api/v1/submissions/\(submission.id)"])
    }

    /// Seconds of `Prefer: wait=N` (RFC 7240), at most 600.
    static func wait(_ header: String?) throws -> Int {
        guard let header else { return 0 }
        for preference in header.split(separator: ",") {
            let parts = preference.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2, parts[0].lowercased() == "wait" else { continue }
            guard let seconds = Int(parts[1]), seconds >= 0 else { throw Problem(.badRequest, "invalid-prefer", "Prefer: wait takes seconds") }
            return min(seconds, 600)
        }
        return 0
    }

    // MARK: Reading

    @Sendable func search(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let query = request.uri.queryParameters.get("q") ?? ""
        let page = max(1, request.uri.queryParameters.get("page", as: Int.self) ?? 1)
        guard page <= 100_000 else { throw Problem(.badRequest, "invalid-page", "page must be between 1 and 100000") }
        let perPage = min(100, max(1, request.uri.queryParameters.get("per_page", as: Int.self) ?? 20))
        guard query.count <= 200 else { throw Problem(.badRequest, "invalid-query", "the search term is longer than 200 characters") }
        let result = try await registry.search(query, page: page, perPage: perPage)
        var items: [PackageSummary] = []
        for package in result.items {
            let versions = try await registry.versions(canonical: package.canonical)
            items.append(PackageSummary(name: package.name, description: package.description,
                                        latest: VersionResolver.latest(versions, platform: nil)?.version, updated_at: package.updatedAt))
        }
        return try JSON.response(PageBody(items: items, total: result.total, page: page, per_page: perPage))
    }

    @Sendable func package(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let ticket = front.ticket(for: request.head)
        let (package, versions) = try await registry.package(named: try context.parameters.require("name"))
        let base = baseURL(request)
        return answer(ByteBuffer(bytes: try JSON.encoder.encode(PackageDetail(
            name: package.name, description: package.description, created_at: package.createdAt, updated_at: package.updatedAt,
            latest: VersionResolver.latest(versions, platform: nil)?.version, versions: versions.map { VersionSummary($0, baseURL: base) }))),
            ticket: ticket)
    }

    @Sendable func versions(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let ticket = front.ticket(for: request.head)
        let (_, versions) = try await registry.package(named: try context.parameters.require("name"))
        let base = baseURL(request)
        return answer(ByteBuffer(bytes: try JSON.encoder.encode(versions.map { VersionSummary($0, baseURL: base) })), ticket: ticket)
    }

    @Sendable func version(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let name = try context.parameters.require("name"), version = try context.parameters.require("version")
        let ticket = front.ticket(for: request.head)
        // With ?platform=, the version a download for that platform resolves to.
        let record = if let platform = request.uri.queryParameters.get("platform") {
            try await registry.resolve(name, version, platform: platform)
        } else {
            try await registry.version(name, version)
        }
        let base = baseURL(request)
        let key = [base, record.package, record.version, record.digest.hex, "\(record.yanked)", record.yankReason ?? "",
                   record.deprecation ?? "", "\(record.attestation != nil)"].joined(separator: "\u{0}")
        if let cached = answers.get(key) { return answer(cached, ticket: ticket) }
        let decoder = JSONDecoder()
        let body = ByteBuffer(bytes: try JSON.encoder.encode(VersionDetail(
            summary: VersionSummary(record, baseURL: base), manifest: try? decoder.decode(Manifest.self, from: record.manifest),
            report: try? decoder.decode(PackageReport.self, from: record.report))))
        answers.put(key, body)
        return answer(body, ticket: ticket)
    }

    /// A JSON answer, also offered to the front cache when the request allows.
    func answer(_ body: ByteBuffer, ticket: FrontCache.Ticket?) -> Response {
        front.store(ticket, headers: [.contentType: "application/json", .contentLength: String(body.readableBytes)], body: .bytes(body),
                    isDownload: false)
        return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: body))
    }

    @Sendable func l3afdConfig(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let requested = try context.parameters.require("version")
        let record = try await registry.version(try context.parameters.require("name"), requested)
        let manifest = try JSONDecoder().decode(Manifest.self, from: record.manifest)
        let repository = request.uri.queryParameters.get("repo_url") ?? baseURL(request)
        return try JSON.response(L3AFDConfigEntry(manifest: manifest, version: requested == "latest" ? "latest" : record.version,
                                                  repositoryURL: repository))
    }

    // MARK: Changing versions

    struct YankBody: Decodable { var reason: String? }
    struct DeprecationBody: Decodable { var message: String }

    func yank(_ request: Request, _ context: RegistryRequestContext, yanked: Bool) async throws -> Response {
        let principal = try await principal(request, context)
        var reason: String?
        if yanked {
            let body = try await request.body.collect(upTo: 64 * 1024)
            if body.readableBytes > 0 {
                do { reason = try JSONDecoder().decode(YankBody.self, from: body).reason } catch {
                    throw Problem(.badRequest, "invalid-body", "the body must be JSON like {\"reason\": \"...\"}")
                }
            }
        }
        let record = try await registry.setYanked(try context.parameters.require("name"), try context.parameters.require("version"),
                                                  yanked: yanked, reason: reason, by: principal)
        return try JSON.response(VersionSummary(record, baseURL: baseURL(request)))
    }

    func deprecate(_ request: Request, _ context: RegistryRequestContext, remove: Bool) async throws -> Response {
        let principal = try await principal(request, context)
        var message: String?
        if !remove {
            let body = try await request.body.collect(upTo: 64 * 1024)
            do { message = try JSONDecoder().decode(DeprecationBody.self, from: body).message } catch {
                throw Problem(.badRequest, "invalid-body", "the body must be JSON like {\"message\": \"use 2.x\"}")
            }
            guard let text = message, !text.isEmpty, text.count <= 1000 else {
                throw Problem(.badRequest, "invalid-body", "the deprecation message must be 1 to 1000 characters")
            }
        }
        let record = try await registry.setDeprecation(try context.parameters.require("name"), try context.parameters.require("version"),
                                                       message: message, by: principal)
        return try JSON.response(VersionSummary(record, baseURL: baseURL(request)))
    }
}

/// Streams a request body into a file, refusing it (413) as soon as it exceeds `limit`.
enum Spool {
    static func write(_ body: RequestBody, to path: String, limit: Int64) async throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw Problem(.internalServerError, "internal-error", "cannot spool the upload") }
        defer { close(fd) }
        var total: Int64 = 0
        for try await buffer in body {
            total += Int64(buffer.readableBytes)
            guard total <= limit else {
                throw Problem(.contentTooLarge, "body-too-large", "the upload is larger than the limit of \(limit) bytes")
            }
            try buffer.withUnsafeReadableBytes { bytes in
                var offset = 0
                while offset < bytes.count {
                    let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                    if n < 0, errno == EINTR { continue }
                    guard n > 0 else { throw Problem(.init(code: 507), "storage-full", "the upload could not be stored") }
                    offset += n
                }
            }
        }
    }
}
