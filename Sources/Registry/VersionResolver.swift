import PackageFormat
import Storage

/// Which version and build a request means: `latest` or an exact version, for a platform.
public enum VersionResolver {
    /// Whether a version's build serves `platform` (what L3AFD sends: a codename or "Windows").
    /// A build for that codename serves it, and a CO-RE "any" build serves every Linux codename.
    public static func serves(_ version: VersionRecord, platform: String) -> Bool {
        if version.platforms.contains(platform) { return true }
        return platform != ManifestVocabulary.windows && version.platforms.contains(ManifestVocabulary.anyLinux)
    }

    /// The highest published version that is neither yanked nor a pre-release (and, when a
    /// platform is given, serves it).
    public static func latest(_ versions: [VersionRecord], platform: String?) -> VersionRecord? {
        versions.compactMap { record -> (SemanticVersion, VersionRecord)? in
            guard !record.yanked, let semantic = record.semanticVersion, !semantic.isPrerelease else { return nil }
            if let platform, !serves(record, platform: platform) { return nil }
            return (semantic, record)
        }.max { $0.0 < $1.0 }?.1
    }

    /// Versions from highest to lowest in SemVer precedence.
    public static func sorted(_ versions: [VersionRecord]) -> [VersionRecord] {
        versions.sorted { a, b in
            switch (a.semanticVersion, b.semanticVersion) {
            case let (x?, y?): y < x
            default: a.version > b.version
            }
        }
    }

    /// Platforms look like codenames (`jammy`, `bookworm`) or `Windows`.
    public static func isPlatform(_ text: String) -> Bool {
        text == ManifestVocabulary.windows || text == ManifestVocabulary.anyLinux
            || (!text.isEmpty && text.count <= 32 && text.utf8.first.map { (0x61...0x7A).contains($0) } == true
                && text.utf8.allSatisfy { (0x61...0x7A).contains($0) || (0x30...0x39).contains($0) || $0 == UInt8(ascii: "-") })
    }
}
