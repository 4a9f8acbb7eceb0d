/// The package manifest, `epr.toml`, as a contributor writes it.
///
/// Construct one with ``Manifest/parse(_:)``, which validates every field and reports all
/// problems at once. The schema is documented in docs/package-format.md.
public struct Manifest: Sendable, Equatable, Codable {
    public static let fileName = "epr.toml"
    public static let maxSize = 256 * 1024

    public var name: PackageName
    public var version: SemanticVersion
    public var description: String
    /// An SPDX license expression.
    public var license: String
    public var authors: [String]
    public var homepage: String?
    public var repository: String?
    public var keywords: [String]
    public var categories: [String]
    /// The archive name L3AFD requests, e.g. `l3af_ratelimiting.tar.gz`.
    public var artifact: String
    public var readme: String
    public var licenseFile: String
    /// Distribution codenames, `any` (CO-RE, every Linux), or `Windows`.
    public var platforms: [String]
    public var architectures: [String]
    /// Glob patterns of source files included in the package.
    public var sources: [String]
    public var programs: [Program]
    public var userProgram: UserProgram?
    public var l3afd: L3AFDDefaults

    public struct Program: Sendable, Equatable, Codable {
        public var object: String
        public var entry: String
        public var type: String
        public var maps: [String]
        public var chainMap: String?
        public var minKernel: String?
        public var coRE: Bool

        enum CodingKeys: String, CodingKey {
            case object, entry, type, maps, chainMap = "chain_map", minKernel = "min_kernel", coRE = "co_re"
        }
    }

    public struct UserProgram: Sendable, Equatable, Codable {
        public var files: [String]
        public var cmdStart: String
        public var cmdStop: String?
        public var cmdStatus: String?
        public var cmdUpdate: String?
        public var daemon: Bool
        public var dependencies: [String]

        enum CodingKeys: String, CodingKey {
            case files, cmdStart = "cmd_start", cmdStop = "cmd_stop", cmdStatus = "cmd_status"
            case cmdUpdate = "cmd_update", daemon, dependencies
        }
    }

    /// Defaults for the L3AFD config entry the repository generates for operators.
    public struct L3AFDDefaults: Sendable, Equatable, Codable {
        public var startArgs: [String: String] = [:]
        public var stopArgs: [String: String] = [:]
        public var statusArgs: [String: String] = [:]
        public var updateArgs: [String: String] = [:]
        public var mapArgs: [MapArgument] = []
        public var monitorMaps: [MonitorMap] = []

        public struct MapArgument: Sendable, Equatable, Codable {
            public var name: String
            public var args: [KeyValue]
            public init(name: String, args: [KeyValue]) {
                self.name = name
                self.args = args
            }
        }

        public struct KeyValue: Sendable, Equatable, Codable {
            public var key: Int64
            public var value: Int64
            public init(key: Int64, value: Int64) {
                self.key = key
                self.value = value
            }
        }

        public struct MonitorMap: Sendable, Equatable, Codable {
            public var name: String
            public var key: Int64
            public var aggregator: String
            public init(name: String, key: Int64, aggregator: String) {
                self.name = name
                self.key = key
                self.aggregator = aggregator
            }
        }

        enum CodingKeys: String, CodingKey {
            case startArgs = "start_args", stopArgs = "stop_args", statusArgs = "status_args"
            case updateArgs = "update_args", mapArgs = "map_args", monitorMaps = "monitor_maps"
        }
    }

    enum CodingKeys: String, CodingKey {
        case name, version, description, license, authors, homepage, repository, keywords, categories
        case artifact, readme, licenseFile = "license_file", platforms, architectures, sources
        case programs, userProgram = "user_program", l3afd
    }

    /// The directory L3AFD expects at the top of the archive: the artifact up to its first dot.
    public var artifactBase: String { Self.artifactBase(artifact) }

    public static func artifactBase(_ artifact: String) -> String {
        String(artifact.prefix { $0 != "." })
    }

    /// Every file of the user-space program and every object, as paths inside the package.
    public var declaredObjects: [String] { Array(Set(programs.map(\.object))).sorted() }
}

/// The manifest could not be read: every problem found, each with the key it concerns.
public struct ManifestError: Error, Equatable, Sendable, CustomStringConvertible {
    public let findings: [Finding]
    public var description: String { findings.filter { $0.severity == .error }.map(\.description).joined(separator: "\n") }
}
