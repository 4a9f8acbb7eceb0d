import Foundation
import PackageFormat
import Signing

/// A directory in L3AFD's download layout, `<name>/<version>/<codename>/<artifact>`, as a
/// `file://` repository for air-gapped nodes and as the node agent's cache. Beside each archive
/// lie its signature (`<artifact>.sig`) and the repository's attestation
/// (`<artifact>.attestation`); `<name>/latest/<codename>` links to the version `latest` means
/// there; `.epr/revocations.json` holds the signing authority's revocation list.
public struct PackageTree: Sendable {
    public let root: URL

    public init(root: URL) { self.root = root }

    public static let signatureSuffix = ".sig"
    public static let attestationSuffix = ".attestation"

    /// One package archive's place in the tree.
    public struct Entry: Sendable, Hashable {
        public var name: String
        public var version: String
        public var platform: String
        public var artifact: String

        public init(name: String, version: String, platform: String, artifact: String) {
            self.name = name
            self.version = version
            self.platform = platform
            self.artifact = artifact
        }
    }

    public var state: URL { root.appendingPathComponent(".epr") }
    public var revocations: URL { state.appendingPathComponent("revocations.json") }

    public func directory(_ entry: Entry) -> URL {
        root.appendingPathComponent(entry.name).appendingPathComponent(entry.version).appendingPathComponent(entry.platform)
    }

    public func archive(_ entry: Entry) -> URL { directory(entry).appendingPathComponent(entry.artifact) }
    public func signature(_ entry: Entry) -> URL { directory(entry).appendingPathComponent(entry.artifact + Self.signatureSuffix) }
    public func attestation(_ entry: Entry) -> URL { directory(entry).appendingPathComponent(entry.artifact + Self.attestationSuffix) }

    /// Why a request's path segments cannot name a package in a tree, if they cannot: each one
    /// a single plain path segment of its kind, so no request reaches outside the tree.
    public static func problem(name: String, version: String, platform: String, artifact: String) -> String? {
        if (try? PackageName(name)) == nil { return "\"\(name)\" is not a package name" }
        if version != "latest", (try? SemanticVersion(version)) == nil { return "\"\(version)\" is neither latest nor a version" }
        let platformOK = !platform.isEmpty && platform.count <= 64 && !platform.hasPrefix(".")
            && platform.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
        if !platformOK { return "\"\(platform)\" is not a platform" }
        let artifactOK = artifact.hasSuffix(".tar.gz") && !artifact.hasPrefix(".") && artifact.count <= 128
            && artifact.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
        if !artifactOK { return "\"\(artifact)\" is not an artifact name (<name>.tar.gz)" }
        return nil
    }

    /// The versions of `name` the tree holds for `platform` with `artifact`, highest first.
    public func versions(of name: String, platform: String, artifact: String) -> [SemanticVersion] {
        let base = root.appendingPathComponent(name)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: base.path)) ?? []
        return names.compactMap { try? SemanticVersion($0) }.filter { version in
            FileManager.default.fileExists(atPath: archive(Entry(name: name, version: version.description, platform: platform, artifact: artifact)).path)
        }.sorted(by: >)
    }

    /// The version `<name>/latest/<platform>` links to, if the tree has such a link.
    public func latestLink(of name: String, platform: String) -> String? {
        let link = root.appendingPathComponent(name).appendingPathComponent("latest").appendingPathComponent(platform)
        guard let target = try? FileManager.default.destinationOfSymbolicLink(atPath: link.path) else { return nil }
        // ../<version>/<platform>
        let parts = target.split(separator: "/").map(String.init)
        guard parts.count == 3, parts[0] == "..", parts[2] == platform, (try? SemanticVersion(parts[1])) != nil else { return nil }
        return parts[1]
    }

    /// Points `<name>/latest/<platform>` at `version`, replacing the link in one step.
    public func setLatest(of name: String, platform: String, to version: String) throws {
        let directory = root.appendingPathComponent(name).appendingPathComponent("latest")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let temporary = directory.appendingPathComponent(".\(platform).\(UUID().uuidString)")
        try FileManager.default.createSymbolicLink(atPath: temporary.path, withDestinationPath: "../\(version)/\(platform)")
        guard rename(temporary.path, directory.appendingPathComponent(platform).path) == 0 else {
            try? FileManager.default.removeItem(at: temporary)
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: directory.appendingPathComponent(platform).path])
        }
    }

    /// Places an archive (moved from `file`, on the same file system) and its documents: the
    /// documents first, the archive last, each by rename, so a reader never sees a new archive
    /// beside the documents of another (an archive upstream has no document for is placed
    /// without one).
    public func place(_ entry: Entry, archive file: URL, signature: Data?, attestation: Data?) throws {
        try FileManager.default.createDirectory(at: directory(entry), withIntermediateDirectories: true)
        for (data, destination) in [(signature, self.signature(entry)), (attestation, self.attestation(entry))] {
            if let data { try Self.writeAtomically(data, to: destination) } else { try? FileManager.default.removeItem(at: destination) }
        }
        guard rename(file.path, archive(entry).path) == 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: archive(entry).path])
        }
    }

    /// The signature and attestation files beside an archive, as they are (nil when absent);
    /// ``TrustedVerification/documents(signature:attestation:)`` reads them.
    public func documents(_ entry: Entry) -> (signature: Data?, attestation: Data?) {
        (try? Data(contentsOf: signature(entry)), try? Data(contentsOf: attestation(entry)))
    }

    /// Every archive in the tree (links to `latest` not followed), in order.
    public func entries() -> [Entry] {
        let manager = FileManager.default
        func list(_ url: URL) -> [String] {
            ((try? manager.contentsOfDirectory(atPath: url.path)) ?? []).filter { !$0.hasPrefix(".") }.sorted()
        }
        var found: [Entry] = []
        for name in list(root) where (try? PackageName(name)) != nil {
            for version in list(root.appendingPathComponent(name)) where (try? SemanticVersion(version)) != nil {
                let versionURL = root.appendingPathComponent(name).appendingPathComponent(version)
                for platform in list(versionURL) {
                    for file in list(versionURL.appendingPathComponent(platform)) where file.hasSuffix(".tar.gz") {
                        found.append(Entry(name: name, version: version, platform: platform, artifact: file))
                    }
                }
            }
        }
        return found
    }

    static func writeAtomically(_ data: Data, to url: URL) throws {
        try data.write(to: url, options: .atomic)
    }
}
