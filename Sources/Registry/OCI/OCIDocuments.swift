import Foundation
import PackageFormat

/// Media types and document shapes of the OCI image and distribution specifications, and of
/// the eBPF tools that use them.
public enum OCIMediaType {
    public static let imageManifest = "application/vnd.oci.image.manifest.v1+json"
    public static let imageIndex = "application/vnd.oci.image.index.v1+json"
    public static let imageConfig = "application/vnd.oci.image.config.v1+json"
    public static let layerTarGzip = "application/vnd.oci.image.layer.v1.tar+gzip"
    public static let empty = "application/vnd.oci.empty.v1+json"
    public static let dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"
    public static let dockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
    public static let dockerConfig = "application/vnd.docker.container.image.v1+json"
    public static let dockerLayerGzip = "application/vnd.docker.image.rootfs.diff.tar.gzip"

    /// The repository's own package artifact: the manifest as config, the archive as its layer.
    public static let packageArtifact = "application/vnd.epr.package.v1"
    public static let packageManifest = "application/vnd.epr.package.manifest.v1+json"
    public static let packageArchive = "application/vnd.epr.package.archive.v1.tar+gzip"
    /// A contributor's package signature (the DSSE envelope checked on upload).
    public static let dsseEnvelope = "application/vnd.dsse.envelope.v1+json"
    public static let packageSignature = "application/vnd.epr.package.signature.v1+json"

    /// cosign's simple signing payload and its OCI 1.1 signature artifact type.
    public static let cosignSimpleSigning = "application/vnd.dev.cosign.simplesigning.v1+json"
    public static let cosignSignature = "application/vnd.dev.cosign.artifact.sig.v1+json"

    /// Bumblebee and Inspektor Gadget program layers (a raw ELF object).
    public static let bumblebeeConfig = "application/ebpf.oci.image.config.v1+json"
    public static let bumblebeeProgram = "application/ebpf.oci.image.program.v1+binary"
    public static let gadgetArtifact = "application/vnd.gadget.v1+binary"
    public static let gadgetProgram = "application/vnd.gadget.ebpf.program.v1+binary"

    public static let manifests: Set<String> = [imageManifest, imageIndex, dockerManifest, dockerManifestList]
    public static let indexes: Set<String> = [imageIndex, dockerManifestList]
}

/// A content descriptor.
public struct OCIDescriptor: Codable, Sendable, Equatable {
    public var mediaType: String
    public var digest: String
    public var size: Int64
    public var artifactType: String?
    public var annotations: [String: String]?
    public var platform: OCIPlatform?

    public init(mediaType: String, digest: SHA256Digest, size: Int64, artifactType: String? = nil, annotations: [String: String]? = nil,
                platform: OCIPlatform? = nil) {
        self.mediaType = mediaType
        self.digest = digest.description
        self.size = size
        self.artifactType = artifactType
        self.annotations = annotations
        self.platform = platform
    }
}

public struct OCIPlatform: Codable, Sendable, Equatable {
    public var architecture: String
    public var os: String
    public var variant: String?

    public init(architecture: String, os: String, variant: String? = nil) {
        self.architecture = architecture
        self.os = os
        self.variant = variant
    }
}

/// An image manifest or an image index, as pushed or made (fields of both; unknown ones kept
/// only in the stored bytes).
public struct OCIManifestDocument: Codable, Sendable {
    public var schemaVersion: Int?
    public var mediaType: String?
    public var artifactType: String?
    public var config: OCIDescriptor?
    public var layers: [OCIDescriptor]?
    public var manifests: [OCIDescriptor]?
    public var subject: OCIDescriptor?
    public var annotations: [String: String]?

    public init(mediaType: String, artifactType: String? = nil, config: OCIDescriptor? = nil, layers: [OCIDescriptor]? = nil,
                manifests: [OCIDescriptor]? = nil, subject: OCIDescriptor? = nil, annotations: [String: String]? = nil) {
        schemaVersion = 2
        self.mediaType = mediaType
        self.artifactType = artifactType
        self.config = config
        self.layers = layers
        self.manifests = manifests
        self.subject = subject
        self.annotations = annotations
    }

    /// The document's bytes as the repository writes them: keys sorted, no spaces.
    public func encoded() -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(self)) ?? Data()
    }
}

/// The image config bpfman reads: its labels name the programs and maps of the layer's object.
public struct OCIImageConfig: Codable, Sendable {
    public struct Config: Codable, Sendable { public var Labels: [String: String]? }
    public struct RootFS: Codable, Sendable {
        public var type: String
        public var diff_ids: [String]
    }

    public var created: String?
    public var architecture: String?
    public var os: String?
    public var config: Config?
    public var rootfs: RootFS?
}

extension SHA256Digest {
    /// A digest as OCI writes it (`sha256:<64 hex>`); nil for any other algorithm or form.
    public init?(oci text: String) {
        guard text.hasPrefix("sha256:") else { return nil }
        let hex = text.dropFirst(7)
        guard hex.utf8.count == 64, hex.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }) else { return nil }
        self.init(hex: String(hex))
    }
}

/// Names and tags as the distribution specification allows them.
public enum OCIReference {
    /// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*`
    public static func isValidName(_ name: String) -> Bool {
        guard !name.isEmpty, name.utf8.count <= 255 else { return false }
        return name.split(separator: "/", omittingEmptySubsequences: false).allSatisfy(isValidComponent)
    }

    private static func isValidComponent(_ component: Substring) -> Bool {
        let bytes = Array(component.utf8)
        guard let first = bytes.first, let last = bytes.last, isAlnum(first), isAlnum(last) else { return false }
        var index = 0
        while index < bytes.count {
            if isAlnum(bytes[index]) { index += 1; continue }
            // A separator: ".", "_", "__" or a run of "-", always followed by an alphanumeric.
            var end = index
            switch bytes[index] {
            case UInt8(ascii: "."): end = index + 1
            case UInt8(ascii: "_"): end = index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "_") ? index + 2 : index + 1
            case UInt8(ascii: "-"): while end < bytes.count && bytes[end] == UInt8(ascii: "-") { end += 1 }
            default: return false
            }
            guard end < bytes.count, isAlnum(bytes[end]) else { return false }
            index = end
        }
        return true
    }

    private static func isAlnum(_ byte: UInt8) -> Bool { (0x30...0x39).contains(byte) || (0x61...0x7a).contains(byte) }

    /// `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`
    public static func isValidTag(_ tag: String) -> Bool {
        let bytes = Array(tag.utf8)
        guard let first = bytes.first, bytes.count <= 128 else { return false }
        func word(_ b: UInt8) -> Bool { (0x30...0x39).contains(b) || (0x41...0x5a).contains(b) || (0x61...0x7a).contains(b) || b == UInt8(ascii: "_") }
        return word(first) && bytes.dropFirst().allSatisfy { word($0) || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
    }

    /// The tag of a version: SemVer build metadata's `+` is not allowed in tags and becomes `_`.
    public static func tag(version: String) -> String { version.replacingOccurrences(of: "+", with: "_") }

    /// The version a tag names, when it is one.
    public static func version(tag: String) -> SemanticVersion? {
        try? SemanticVersion(tag.replacingOccurrences(of: "_", with: "+"))
    }
}
