import Foundation

/// The JSON bodies of the REST API v1, shared by the server that writes them and the clients
/// that read them. Key names are part of the API (docs/openapi.json).
public struct VersionSummary: Codable, Sendable, Equatable {
    public var name: String
    public var version: String
    public var artifact: String
    public var platforms: [String]
    public var sha256: String
    public var size: Int64
    public var publisher: String
    public var published_at: Date
    public var yanked: Bool
    public var yank_reason: String?
    public var deprecated: String?
    public var download_url: String
    /// Who signed the package (the name their certificate gives), when it was signed.
    public var signer: String?
    public var signature_key_id: String?
    /// Whether the repository attested the version (published through its checks and review).
    public var attested: Bool?

    public init(name: String, version: String, artifact: String, platforms: [String], sha256: String, size: Int64,
                publisher: String, published_at: Date, yanked: Bool, yank_reason: String?, deprecated: String?, download_url: String,
                signer: String? = nil, signature_key_id: String? = nil, attested: Bool? = nil) {
        self.signer = signer
        self.signature_key_id = signature_key_id
        self.attested = attested
        self.name = name
        self.version = version
        self.artifact = artifact
        self.platforms = platforms
        self.sha256 = sha256
        self.size = size
        self.publisher = publisher
        self.published_at = published_at
        self.yanked = yanked
        self.yank_reason = yank_reason
        self.deprecated = deprecated
        self.download_url = download_url
    }
}

public struct PackageSummary: Codable, Sendable, Equatable {
    public var name: String
    public var description: String
    public var latest: String?
    public var updated_at: Date

    public init(name: String, description: String, latest: String?, updated_at: Date) {
        self.name = name
        self.description = description
        self.latest = latest
        self.updated_at = updated_at
    }
}

public struct PackageDetail: Codable, Sendable, Equatable {
    public var name: String
    public var description: String
    public var created_at: Date
    public var updated_at: Date
    public var latest: String?
    public var versions: [VersionSummary]

    public init(name: String, description: String, created_at: Date, updated_at: Date, latest: String?, versions: [VersionSummary]) {
        self.name = name
        self.description = description
        self.created_at = created_at
        self.updated_at = updated_at
        self.latest = latest
        self.versions = versions
    }
}

public struct PageBody<Item: Codable & Sendable>: Codable, Sendable {
    public var items: [Item]
    public var total: Int
    public var page: Int
    public var per_page: Int

    public init(items: [Item], total: Int, page: Int, per_page: Int) {
        self.items = items
        self.total = total
        self.page = page
        self.per_page = per_page
    }
}

/// The coders the API uses: ISO 8601 dates, sorted keys.
public enum APICoding {
    public static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }()

    public static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}
