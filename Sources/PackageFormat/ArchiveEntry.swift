/// One entry of a package archive, after its path passed every safety rule.
public struct ArchiveEntry: Sendable, Equatable {
    public enum Kind: String, Sendable, Codable {
        case file, directory, symlink, hardlink
    }

    /// The normalised path in the archive, starting with the top-level directory.
    public let path: String
    /// The path inside the top-level directory; empty for the top-level directory itself.
    public let relativePath: String
    public let kind: Kind
    public let size: UInt64
    public let mode: UInt32
    /// For links: the target as stored in the archive.
    public let linkTarget: String?

    public var isExecutable: Bool { mode & 0o111 != 0 }
}
