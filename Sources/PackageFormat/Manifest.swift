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
    /// How the package's objects and user-space program are built from its sources (`epr build`,
    /// and the repository's build workers); nil when the package does not say.
    public var build: BuildSection? = nil

    /// The `[build]` table: each kernel object from its C sources with clang's BPF target, the
    /// user-space program with the system compiler and libbpf, then the package's own tests.
    public struct BuildSection: Sendable, Equatable, Codable {
        public struct Object: Sendable, Equatable, Codable {
            /// The object, as a `[[program]]` names it.
            public var object: String
            public var sources: [String]
            public var cflags: [String]

            public init(object: String, sources: [String], cflags: [String] = []) {
                self.object = object
                self.sources = sources
                self.cflags = cflags
            }
        }

        public struct User: Sendable, Equatable, Codable {
            /// The executable written, one of the user program's files.
            public var output: String
            public var sources: [String]
            public var cflags: [String]
            /// Libraries linked (`bpf` for libbpf), without `-l`.
            public var libs: [String]

            public init(output: String, sources: [String], cflags: [String] = [], libs: [String] = []) {
                self.output = output
                self.sources = sources
                self.cflags = cflags
                self.libs = libs
            }
        }

        public var objects: [Object]
        public var user: User?
        /// Flags for every kernel object (include directories, defines).
        public var cflags: [String]
        /// Whether the kernel sources include `vmlinux.h` (CO-RE): it is made from the build
        /// machine's kernel BTF unless one is supplied.
        public var vmlinux: Bool
        /// Whether DWARF is stripped from the objects (BTF and BTF.ext stay); default true.
        public var strip: Bool
        /// A script of the package run after building (its tests); a failure fails the build.
        public var test: String?

        /// Compiler flags a build may carry: include directories inside the package, defines,
        /// warnings, code generation (`-f`), optimisation, debug information and the language
        /// standard. Nothing that names an output, a plugin, a file outside the package or a
        /// command to run.
        public static func allowedFlag(_ flag: String) -> Bool {
            if flag.hasPrefix("-I") {
                let path = String(flag.dropFirst(2))
                if path.hasPrefix("=") || path.hasPrefix("$") { return false }
                if path.hasPrefix("/usr/include") && !path.contains("..") { return true }
                return RelativePath.problem(path) == nil || path == "."
            }
            for prefix in ["-D", "-U", "-W", "-O", "-g", "-std="] where flag.hasPrefix(prefix) {
                return !flag.hasPrefix("-Wl,") && !flag.hasPrefix("-Wp,") && !flag.hasPrefix("-Wa,")
            }
            if flag.hasPrefix("-f") {
                return !flag.hasPrefix("-fplugin") && !flag.hasPrefix("-fpass-plugin") && !flag.hasPrefix("-fprofile") && !flag.contains("=/")
                    && !flag.hasPrefix("-fcrash-diagnostics") && !flag.hasPrefix("-fdebug-prefix-map") && !flag.hasPrefix("-ffile-prefix-map")
            }
            return false
        }

        public init(objects: [Object], user: User? = nil, cflags: [String] = [], vmlinux: Bool = false, strip: Bool = true, test: String? = nil) {
            self.objects = objects
            self.user = user
            self.cflags = cflags
            self.vmlinux = vmlinux
            self.strip = strip
            self.test = test
        }
    }

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
        case programs, userProgram = "user_program", l3afd, build
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
