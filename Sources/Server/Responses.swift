import Foundation
import HTTPTypes
import Hummingbird
import PackageFormat
import Registry
import Storage

/// JSON bodies of the REST API. Key names are part of the API (docs/api.md, /openapi.json).
struct PackageSummary: Encodable {
    var name: String
    var description: String
    var latest: String?
    var updated_at: Date
}

struct VersionSummary: Encodable {
    var name: String
    var version: String
    var artifact: String
    var platforms: [String]
    var sha256: String
    var size: Int64
    var publisher: String
    var published_at: Date
    var yanked: Bool
    var yank_reason: String?
    var deprecated: String?
    var download_url: String

    init(_ record: VersionRecord, baseURL: String) {
        name = record.package
        version = record.version
        artifact = record.artifact
        platforms = record.platforms
        sha256 = record.digest.description
        size = record.size
        publisher = record.publisher
        published_at = record.publishedAt
        yanked = record.yanked
        yank_reason = record.yankReason
        deprecated = record.deprecation
        download_url = "\(baseURL)/api/v1/packages/\(record.package)/versions/\(record.version)/download"
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

struct PackageDetail: Encodable {
    var name: String
    var description: String
    var created_at: Date
    var updated_at: Date
    var latest: String?
    var versions: [VersionSummary]
}

struct PageBody<Item: Encodable>: Encodable {
    var items: [Item]
    var total: Int
    var page: Int
    var per_page: Int
}

enum JSON {
    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }()

    static func response(_ value: some Encodable, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) throws -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }
}
