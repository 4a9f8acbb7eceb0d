import BPFObject

/// Everything `epr inspect` says about a package archive. Encodes to the documented `--json`
/// schema (docs/inspect-json.md).
public struct PackageReport: Codable, Sendable, Equatable {
    /// The archive's file name, when it was read from a file.
    public var artifact: String?
    public var topLevel: String
    public var sha256: SHA256Digest
    public var size: UInt64
    /// Nil when the manifest is missing or invalid (the findings say why).
    public var manifest: Manifest?
    public var files: [FileReport]
    public var objects: [ObjectEntry]
    public var findings: [Finding]

    public struct FileReport: Codable, Sendable, Equatable {
        /// The path inside the top-level directory.
        public var path: String
        public var kind: ArchiveEntry.Kind
        public var size: UInt64
        /// Permission bits, as an octal string such as "0755".
        public var mode: String
        public var sha256: SHA256Digest?
        public var linkTarget: String?

        enum CodingKeys: String, CodingKey {
            case path, kind, size, mode, sha256, linkTarget = "link_target"
        }
    }

    public struct ObjectEntry: Codable, Sendable, Equatable {
        public var path: String
        public var report: ObjectReport?
        /// Why the file could not be inspected, when it could not.
        public var error: String?
    }

    enum CodingKeys: String, CodingKey {
        case artifact, topLevel = "top_level", sha256, size, manifest, files, objects, findings
    }

    public var isValid: Bool { !findings.hasErrors }
}
