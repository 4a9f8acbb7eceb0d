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
                  download_url: "\(baseURL)/api/v1/packages/\(record.package)/versions/\(record.version)/download")
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

enum JSON {
    static var encoder: JSONEncoder { APICoding.encoder }

    static func response(_ value: some Encodable, status: HTTPResponse.Status = .ok, headers: HTTPFields = [:]) throws -> Response {
        var fields = headers
        fields[.contentType] = "application/json"
        return Response(status: status, headers: fields, body: .init(byteBuffer: ByteBuffer(bytes: try encoder.encode(value))))
    }
}
