import Foundation
import HTTPTypes
import Hummingbird
import PackageFormat
import Registry
import RegistryAPI
import Storage

extension VersionSummary {
    init(_ record: VersionRecord, baseURL: String) {
        self.init(name: record.package, version: record.version, artifact: record.artifact, platforms: record.platforms,
                  sha256: record.digest.description, size: record.size, publisher: record.publisher, published_at: record.publishedAt,
                  yanked: record.yanked, yank_reason: record.yankReason, deprecated: record.deprecation,
                  download_url: "\(baseURL)/api/v1/packages/\(record.package)/versions/\(record.version)/download",
                  signer: record.signature?.signer, signature_key_id: record.signature?.keyID, attested: record.attestation != nil)
    }
}

/// A version with its manifest and inspection report.
struct VersionDetail: Encodable {
    var summary: VersionSummary
    var manifest: Manifest?
    var report: PackageReport?

    func encode(to encoder: any Encoder) throws {
        try summary.encode(to: encoder)
        var container = encoder.container(keyedBy: Keys.self)
        try container.encodeIfPresent(manifest, forKey: .manifest)
        try container.encodeIfPresent(report, forKey: .report)
    }

    enum Keys: String, CodingKey { case manifest, report }
}

/// Request bodies of the REST API: JSON of at most 64 KiB, or a problem saying what is wrong.
enum JSONBody {
    /// With `requireJSONType`, only `application/json` is taken, which a cross-site HTML form
    /// cannot send, so cookie-signed requests cannot be forged from another site.
    static func decode<T: Decodable>(_ type: T.Type, from request: Request, example: String, requireJSONType: Bool = true) async throws -> T {
        if requireJSONType {
            guard let contentType = request.headers[.contentType], contentType.lowercased().hasPrefix("application/json") else {
                throw Problem(.unsupportedMediaType, "unsupported-media-type", "the body must be application/json")
            }
        }
        let buffer = try await request.body.collect(upTo: 64 * 1024)
        do { return try JSONDecoder().decode(T.self, from: buffer) } catch {
            throw Problem(.badRequest, "invalid-body", "the body must be JSON like \(example)")
        }
    }
}

enum JSON {
    static var encoder: JSONEncoder { APICoding.encoder }

    static func response(_ value: some Encodable, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) throws -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }

    /// A JSON document stored as it is (a signed envelope: re-encoding would change nothing it
    /// signs, but it is served byte for byte all the same).
    static func raw(_ document: Data, cacheControl: String = "public, max-age=60") -> Response {
        Response(status: .ok, headers: [.contentType: "application/json", .cacheControl: cacheControl],
                 body: .init(byteBuffer: ByteBuffer(bytes: document)))
    }
}
