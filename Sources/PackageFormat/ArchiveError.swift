/// Why an archive was refused. Every case names the entry it concerns (when there is one) and
/// has a stable ``code``.
public enum ArchiveError: Error, Equatable, Sendable, CustomStringConvertible {
    case io(String)
    case notGzip
    case corruptCompression(String)
    case truncated(entry: String?)
    case trailingData
    case badHeader(entry: String?, reason: String)
    case absolutePath(entry: String)
    case pathTraversal(entry: String)
    case unsafePath(entry: String, reason: String)
    case outsideTopLevel(entry: String, topLevel: String)
    case wrongTopLevel(entry: String, expected: String)
    case linkEscapes(entry: String, target: String)
    case throughLink(entry: String, link: String)
    case unsupportedType(entry: String, type: String)
    case duplicateEntry(entry: String)
    case tooManyEntries(limit: Int)
    case entryTooLarge(entry: String, size: UInt64, limit: UInt64)
    case expandedSizeExceeded(limit: UInt64)
    case compressionRatioExceeded(entry: String?, limit: Int)
    case empty

    public var code: String {
        switch self {
        case .io: "archive-io"
        case .notGzip: "archive-not-gzip"
        case .corruptCompression: "archive-corrupt-gzip"
        case .truncated: "archive-truncated"
        case .trailingData: "archive-trailing-data"
        case .badHeader: "archive-bad-header"
        case .absolutePath: "archive-absolute-path"
        case .pathTraversal: "archive-path-traversal"
        case .unsafePath: "archive-unsafe-path"
        case .outsideTopLevel: "archive-outside-top-level"
        case .wrongTopLevel: "archive-wrong-top-level"
        case .linkEscapes: "archive-link-escapes"
        case .throughLink: "archive-path-through-link"
        case .unsupportedType: "archive-unsupported-entry-type"
        case .duplicateEntry: "archive-duplicate-entry"
        case .tooManyEntries: "archive-too-many-entries"
        case .entryTooLarge: "archive-entry-too-large"
        case .expandedSizeExceeded: "archive-too-large"
        case .compressionRatioExceeded: "archive-compression-ratio"
        case .empty: "archive-empty"
        }
    }

    /// The entry the error concerns, if any.
    public var entry: String? {
        switch self {
        case let .truncated(entry), let .badHeader(entry, _), let .compressionRatioExceeded(entry, _): entry
        case let .absolutePath(entry), let .pathTraversal(entry), let .unsafePath(entry, _), let .outsideTopLevel(entry, _),
             let .wrongTopLevel(entry, _), let .linkEscapes(entry, _), let .throughLink(entry, _),
             let .unsupportedType(entry, _), let .duplicateEntry(entry), let .entryTooLarge(entry, _, _): entry
        default: nil
        }
    }

    public var description: String {
        switch self {
        case let .io(reason): "cannot read the archive: \(reason)"
        case .notGzip: "not a gzip-compressed archive"
        case let .corruptCompression(reason): "the gzip stream is corrupt: \(reason)"
        case let .truncated(entry): "the archive is truncated" + (entry.map { " in entry \($0)" } ?? "")
        case .trailingData: "unexpected data after the end of the gzip stream"
        case let .badHeader(entry, reason): "invalid tar header" + (entry.map { " for \($0)" } ?? "") + ": \(reason)"
        case let .absolutePath(entry): "entry \(entry) has an absolute path"
        case let .pathTraversal(entry): "entry \(entry) leaves the archive's directory (..)"
        case let .unsafePath(entry, reason): "entry \(entry) has an unsafe path: \(reason)"
        case let .outsideTopLevel(entry, topLevel): "entry \(entry) is outside the top-level directory \(topLevel)/"
        case let .wrongTopLevel(entry, expected): "entry \(entry) is not under \(expected)/, the directory named after the artifact"
        case let .linkEscapes(entry, target): "link \(entry) points outside the package (\(target))"
        case let .throughLink(entry, link): "entry \(entry) goes through the link \(link)"
        case let .unsupportedType(entry, type): "entry \(entry) is a \(type); only files, directories and links are allowed"
        case let .duplicateEntry(entry): "entry \(entry) appears more than once"
        case let .tooManyEntries(limit): "the archive has more than \(limit) entries"
        case let .entryTooLarge(entry, size, limit): "entry \(entry) is \(size) bytes, more than the limit of \(limit)"
        case let .expandedSizeExceeded(limit): "the archive expands to more than \(limit) bytes"
        case let .compressionRatioExceeded(entry, limit):
            "the archive expands more than \(limit) times its compressed size" + (entry.map { " (at \($0))" } ?? "") + ": refusing a possible decompression bomb"
        case .empty: "the archive has no entries"
        }
    }
}

/// Bounds on what the archive reader accepts.
public struct ArchiveLimits: Sendable {
    public var maxEntries = 10_000
    public var maxEntrySize: UInt64 = 1 << 30
    public var maxExpandedSize: UInt64 = 2 << 30
    /// Expanded bytes per compressed byte, checked once more than ``ratioGrace`` bytes expanded.
    public var maxCompressionRatio = 200
    public var ratioGrace: UInt64 = 8 << 20
    public init() {}
}
