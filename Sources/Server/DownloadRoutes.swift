import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import PackageFormat
import Registry
import Storage

/// Downloads: L3AFD's `/{name}/{version}/{platform}/{artifact}`, by version through the API,
/// and by digest. All with Content-Length, a strong ETag from the digest (If-None-Match gives
/// 304), single byte ranges, the SHA-256 digest headers and cache headers.
struct DownloadRoutes: Sendable {
    let registry: RegistryService
    let metrics: ServerMetrics
    let fileIO = FileIO()
    /// Small archives served from memory; they never change, being addressed by digest.
    let blobCache: MemoryCache<SHA256Digest>
    /// Whole answers for the event loops to repeat (see ``FrontCache``).
    let front: FrontCache

    func add(to router: Router<RegistryRequestContext>) {
        router.get("api/v1/packages/:name/versions/:version/download", use: downloadVersion)
        router.head("api/v1/packages/:name/versions/:version/download", use: downloadVersion)
        router.get("api/v1/blobs/:digest", use: downloadBlob)
        router.head("api/v1/blobs/:digest", use: downloadBlob)
        router.get(":name/:version/:platform/:artifact", use: l3afd)
        router.head(":name/:version/:platform/:artifact", use: l3afd)
    }

    @Sendable func l3afd(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let name = try context.parameters.require("name"), version = try context.parameters.require("version")
        let platform = try context.parameters.require("platform"), artifact = try context.parameters.require("artifact")
        let ticket = front.ticket(for: request.head)
        let record = try await registry.resolve(name, version, platform: platform)
        guard artifact == record.artifact else { throw RegistryError.artifactMismatch(expected: record.artifact, requested: artifact) }
        return try await serve(record, request: request, context: context, mutable: version == "latest", ticket: ticket)
    }

    @Sendable func downloadVersion(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let version = try context.parameters.require("version")
        let ticket = front.ticket(for: request.head)
        let record = try await registry.version(try context.parameters.require("name"), version)
        return try await serve(record, request: request, context: context, mutable: version == "latest", ticket: ticket)
    }

    @Sendable func downloadBlob(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let text = try context.parameters.require("digest")
        let hex = text.hasPrefix("sha256:") ? String(text.dropFirst(7)) : text
        guard hex.count == 64, hex.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else {
            throw RegistryError.invalidDigest(text)
        }
        let digest = SHA256Digest(hex: hex)
        let ticket = front.ticket(for: request.head)
        guard try await registry.metadata.isReferenced(digest), let size = try await registry.blobs.size(of: digest) else {
            throw RegistryError.blobNotFound(digest.description)
        }
        return try await serve(digest: digest, size: size, filename: nil, request: request, context: context, mutable: false, ticket: ticket)
    }

    private func serve(_ record: VersionRecord, request: Request, context: RegistryRequestContext, mutable: Bool,
                       ticket: FrontCache.Ticket?) async throws -> Response {
        // An archive held in memory needs no look at the disk: the version records its size.
        let size: Int64
        if blobCache.get(record.digest) != nil {
            size = record.size
        } else {
            guard let stored = try await registry.blobs.size(of: record.digest) else { throw RegistryError.blobNotFound(record.digest.description) }
            size = stored
        }
        return try await serve(digest: record.digest, size: size, filename: record.artifact, request: request, context: context,
                               mutable: mutable, ticket: ticket)
    }

    /// A blob's bytes with the download headers; `extraHeaders` are added to every answer.
    func serve(digest: SHA256Digest, size: Int64, filename: String?, request: Request, context: RegistryRequestContext,
               mutable: Bool, ticket: FrontCache.Ticket?, contentType: String = "application/gzip",
               extraHeaders: HTTPFields = [:], cacheControl: String? = nil) async throws -> Response {
        var headers: HTTPFields = [
            .eTag: "\"\(digest)\"",
            .cacheControl: cacheControl ?? (mutable ? "public, max-age=60" : "public, max-age=31536000, immutable"),
            .acceptRanges: "bytes",
        ]
        headers.append(contentsOf: extraHeaders)
        let digestBase64 = Data(Self.bytes(hex: digest.hex)).base64EncodedString()
        headers[HTTPField.Name("Digest")!] = "sha-256=\(digestBase64)"
        headers[HTTPField.Name("Repr-Digest")!] = "sha-256=:\(digestBase64):"
        if let filename { headers[.contentDisposition] = "attachment; filename=\"\(filename)\"" }

        if let match = request.headers[.ifNoneMatch], Self.etagMatches(match, digest: digest) {
            return Response(status: .notModified, headers: headers)
        }
        headers[.contentType] = contentType

        var range: ClosedRange<Int64>?
        // If-Range needs a strong validator: the exact ETag.
        if let header = request.headers[.range], request.headers[.ifRange].map({ $0 == "\"\(digest)\"" }) ?? true {
            switch Self.parseRange(header, size: size) {
            case let .range(value): range = value
            case .unsatisfiable:
                let problem = Problem(.rangeNotSatisfiable, "range-not-satisfiable", "the range \(header) is outside the \(size) bytes")
                var response = problem.response()
                response.headers[.contentRange] = "bytes */\(size)"
                return response
            case .ignore: break
            }
        }
        let status: HTTPResponse.Status = range == nil ? .ok : .partialContent
        let length = range.map { $0.upperBound - $0.lowerBound + 1 } ?? size
        if let range { headers[.contentRange] = "bytes \(range.lowerBound)-\(range.upperBound)/\(size)" }
        headers[.contentLength] = String(length)
        if request.method == .head || length == 0 {
            return Response(status: status, headers: headers, body: .init())
        }
        metrics.downloaded(bytes: length)
        let cached = try await cachedBlob(digest, size: size)
        if range == nil {
            // Repeats of this request are sent from memory when the archive is held there (one
            // write, no file to open), else from the blob's file.
            if let cached {
                front.store(ticket, headers: headers, body: .bytes(cached), isDownload: true)
            } else if let path = registry.blobs.localPath(of: digest) {
                front.store(ticket, headers: headers, body: .file(path: path, length: size), isDownload: true)
            }
        }
        let body: ResponseBody
        if let cached {
            let bounds = range ?? 0...(size - 1)
            body = ResponseBody(byteBuffer: cached.getSlice(at: Int(bounds.lowerBound), length: Int(length)) ?? cached)
        } else if let path = registry.blobs.localPath(of: digest) {
            let bounds = range ?? 0...(size - 1)
            body = try await fileIO.loadFile(path: path, range: Int(bounds.lowerBound)...Int(bounds.upperBound), context: context)
        } else {
            let chunks = try await registry.blobs.read(digest, range: range)
            body = ResponseBody(contentLength: Int(length)) { writer in
                try await writer.write(chunks)
                try await writer.finish(nil)
            }
        }
        return Response(status: status, headers: headers, body: body)
    }

    /// The whole archive from memory, loading it on first use when it is small enough.
    private func cachedBlob(_ digest: SHA256Digest, size: Int64) async throws -> ByteBuffer? {
        if let buffer = blobCache.get(digest) { return buffer }
        guard size <= Int64(blobCache.largestEntry) else { return nil }
        var buffer = ByteBufferAllocator().buffer(capacity: Int(size))
        for try await chunk in try await registry.blobs.read(digest, range: nil) { buffer.writeImmutableBuffer(chunk) }
        guard buffer.readableBytes == Int(size) else { return nil }
        blobCache.put(digest, buffer)
        return buffer
    }

    static func etagMatches(_ header: String, digest: SHA256Digest) -> Bool {
        header.split(separator: ",").contains { candidate in
            let tag = candidate.trimmingCharacters(in: .whitespaces)
            return tag == "*" || tag == "\"\(digest)\"" || tag == "W/\"\(digest)\""
        }
    }

    enum RangeRequest: Equatable { case range(ClosedRange<Int64>), unsatisfiable, ignore }

    /// One `bytes=` range; several ranges, or other units, are ignored (the whole body is sent).
    static func parseRange(_ header: String, size: Int64) -> RangeRequest {
        guard header.hasPrefix("bytes="), !header.contains(",") else { return .ignore }
        let spec = header.dropFirst(6).trimmingCharacters(in: .whitespaces)
        let parts = spec.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return .ignore }
        if parts[0].isEmpty {
            guard let suffix = Int64(parts[1]) else { return .ignore }
            guard suffix > 0 else { return .unsatisfiable }
            guard size > 0 else { return .unsatisfiable }
            return .range(max(0, size - suffix)...(size - 1))
        }
        guard let start = Int64(parts[0]), start >= 0 else { return .ignore }
        let end: Int64
        if parts[1].isEmpty { end = size - 1 } else {
            guard let value = Int64(parts[1]), value >= start else { return .ignore }
            end = min(value, size - 1)
        }
        guard start < size else { return .unsatisfiable }
        return .range(start...end)
    }

    static func bytes(hex: String) -> [UInt8] {
        var bytes: [UInt8] = []
        var iterator = hex.utf8.makeIterator()
        while let high = iterator.next(), let low = iterator.next() {
            func value(_ c: UInt8) -> UInt8 { c <= 0x39 ? c - 0x30 : c - 0x57 }
            bytes.append(value(high) << 4 | value(low))
        }
        return bytes
    }
}
