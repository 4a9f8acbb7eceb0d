import BPFObject

/// Cross-checks a manifest against the package's files and the inspection of its objects:
/// declared objects, entry functions, program types and maps must exist as declared.
public struct ManifestConsistency {
    public struct PackageFile: Sendable {
        public var path: String
        public var isExecutable: Bool
        public init(path: String, isExecutable: Bool) {
            self.path = path
            self.isExecutable = isExecutable
        }
    }

    let manifest: Manifest
    let files: [String: PackageFile]
    /// Inspection of each object file: its report, or why it could not be inspected.
    let objects: [String: Result<ObjectReport, BPFObjectError>]
    /// User-space ELF files, with their sizes.
    let userSpace: [String: (UserSpaceELF, UInt64)]
    /// The largest user-space program a package may carry.
    public static let maxUserProgramSize: UInt64 = 256 << 20

    public init(manifest: Manifest, files: [PackageFile], objects: [String: Result<ObjectReport, BPFObjectError>],
                userSpace: [String: (UserSpaceELF, UInt64)] = [:]) {
        self.manifest = manifest
        self.files = Dictionary(files.map { ($0.path, $0) }, uniquingKeysWith: { first, _ in first })
        self.objects = objects
        self.userSpace = userSpace
    }

    public func findings() -> [Finding] {
        var findings: [Finding] = []
        func add(_ severity: Finding.Severity, _ check: String, _ message: String, _ location: String?) {
            findings.append(Finding(severity, check, message, at: location))
        }
        for (key, path) in [("readme", manifest.readme), ("license_file", manifest.licenseFile)] where files[path] == nil {
            add(.error, "package.file-missing", "package.\(key) names \(path), which is not in the package", path)
        }
        for (i, program) in manifest.programs.enumerated() {
            findings += check(program, at: "program[\(i)]")
        }
        if let user = manifest.userProgram {
            for file in user.files where files[file] == nil {
                if manifest.build?.user?.output == file {
                    add(.info, "build.from-sources", "\(file) is not in the package: the repository builds it from the sources", file)
                } else {
                    add(.error, "package.file-missing", "user_program.files names \(file), which is not in the package", file)
                }
            }
            if let start = files[user.cmdStart], !start.isExecutable {
                add(.error, "user-program.not-executable", "user_program.cmd_start \(user.cmdStart) is not executable", user.cmdStart)
            }
            for file in Set(user.files + [user.cmdStart]).sorted() {
                guard let (elf, size) = userSpace[file] else { continue }
                findings += userProgram(elf, size: size, path: file)
            }
        }
        let declared = Set(manifest.programs.map(\.object))
        for path in objects.keys.sorted() where !declared.contains(path) {
            add(.warning, "package.undeclared-object", "\(path) is a BPF object that no [[program]] declares", path)
        }
        for (path, result) in objects.sorted(by: { $0.key < $1.key }) {
            guard case let .success(report) = result, declared.contains(path) else { continue }
            findings += licensing(report, path: path) + portability(report, path: path) + sensitiveHelpers(report, path: path)
            let entries = Set(manifest.programs.filter { $0.object == path }.map(\.entry))
            for program in report.programs where !entries.contains(program.name) {
                add(.info, "package.undeclared-program", "program \(program.name) (\(program.section)) is not declared in the manifest",
                    "\(path):\(program.name)")
            }
        }
        return findings
    }

    /// A user-space ELF file: a program or library for a declared architecture, not too large;
    /// the libraries it needs, for reviewers and operators.
    private func userProgram(_ elf: UserSpaceELF, size: UInt64, path: String) -> [Finding] {
        var findings: [Finding] = []
        switch elf.type {
        case .executable, .sharedObject: break
        default:
            findings.append(Finding(.error, "user-program.not-a-program", "\(path) is an ELF \(elf.type.rawValue) file, not a program or a shared library",
                                    at: path))
        }
        if let architecture = elf.architecture {
            if !manifest.architectures.isEmpty, !manifest.architectures.contains(architecture) {
                findings.append(Finding(.error, "user-program.architecture",
                                        "\(path) is built for \(architecture), but the package declares \(manifest.architectures.joined(separator: ", "))",
                                        at: path))
            }
        } else {
            findings.append(Finding(.error, "user-program.architecture", "\(path) is built for a machine epr does not know (ELF machine \(elf.machine))",
                                    at: path))
        }
        if size > Self.maxUserProgramSize {
            findings.append(Finding(.error, "user-program.too-large", "\(path) is \(size) bytes; user-space programs may be at most \(Self.maxUserProgramSize)",
                                    at: path))
        }
        let libraries: String = switch elf.needed {
        case nil: "needs shared libraries that could not be read"
        case let list? where list.isEmpty && !elf.isDynamic: "is statically linked"
        case let list?: list.isEmpty ? "needs no shared library" : "needs " + list.joined(separator: ", ")
        }
        let interpreter = elf.interpreter.map { " (interpreter \($0))" } ?? ""
        findings.append(Finding(.info, "user-program.dependencies", "\(path) \(libraries)\(interpreter)", at: path))
        return findings
    }

    private func check(_ program: Manifest.Program, at key: String) -> [Finding] {
        var findings: [Finding] = []
        let location = "\(program.object):\(program.entry)"
        func error(_ check: String, _ message: String) { findings.append(Finding(.error, check, message, at: location)) }
        guard files[program.object] != nil else {
            if manifest.build?.objects.contains(where: { $0.object == program.object }) == true {
                findings.append(Finding(.info, "build.from-sources", "\(program.object) is not in the package: the repository builds it from the sources",
                                        at: location))
            } else {
                error("manifest.object-missing", "\(key).object \(program.object) is not in the package")
            }
            return findings
        }
        guard let result = objects[program.object] else {
            error("object.invalid", "\(program.object) is not a BPF object")
            return findings
        }
        let report: ObjectReport
        switch result {
        case let .success(value): report = value
        case let .failure(failure):
            error("object.invalid", "\(program.object) cannot be inspected: \(failure) [\(failure.code)]")
            return findings
        }
        guard let found = report.program(named: program.entry) else {
            let available = report.programs.map(\.name).joined(separator: ", ")
            error("manifest.entry-missing", "\(program.object) has no program \(program.entry) (it has: \(available.isEmpty ? "none" : available))")
            return findings
        }
        if found.kind != program.type && found.type != program.type {
            error("manifest.type-mismatch", "\(key).type is \(program.type), but \(program.entry) is in section \(found.section), a \(found.kind) program")
        }
        for map in program.maps + (program.chainMap.map { [$0] } ?? []) where report.map(named: map) == nil {
            error("manifest.map-missing", "\(program.object) defines no map \(map)")
        }
        if let chain = program.chainMap, let map = report.map(named: chain) {
            if map.type != "prog_array" { error("chain.not-prog-array", "chain_map \(chain) is a \(map.type) map, not prog_array") }
            if map.maxEntries < 1 { error("chain.empty-prog-array", "chain_map \(chain) has no entries") }
            if !found.tailCallMaps.contains(chain) && found.tailCalls == 0 {
                error("chain.no-tail-call", "\(program.entry) declares chain_map \(chain) but never tail-calls it")
            }
        }
        if program.coRE && !report.isCORE {
            error("manifest.co-re-mismatch", "\(key).co_re is true, but \(program.object) has no CO-RE relocations")
        }
        return findings
    }

    private func licensing(_ report: ObjectReport, path: String) -> [Finding] {
        guard let license = report.license else {
            return [Finding(.warning, "license.missing-section", "\(path) has no license section; the kernel treats it as non-GPL", at: path)]
        }
        guard !report.gplCompatible else { return [] }
        var findings: [Finding] = []
        for program in report.programs {
            let gplOnly = program.helpers.filter(\.gplOnly).map(\.name)
            if !gplOnly.isEmpty {
                findings.append(Finding(.error, "license.gpl-only-helper",
                                        "\(program.name) calls GPL-only helpers (\(gplOnly.joined(separator: ", "))) but the object's license \"\(license)\" is not GPL-compatible; the kernel will refuse it",
                                        at: "\(path):\(program.name)"))
            }
            if !program.kfuncs.isEmpty {
                findings.append(Finding(.error, "license.kfunc", "\(program.name) calls kfuncs, which need a GPL-compatible license",
                                        at: "\(path):\(program.name)"))
            }
            if program.type == "lsm" {
                findings.append(Finding(.error, "license.lsm", "LSM program \(program.name) needs a GPL-compatible license",
                                        at: "\(path):\(program.name)"))
            }
        }
        return findings
    }

    /// Helpers that reach beyond the program's own data (kernel memory, other processes,
    /// signals, error injection): a warning per program, naming each helper and its risk, for
    /// a reviewer to weigh.
    private func sensitiveHelpers(_ report: ObjectReport, path: String) -> [Finding] {
        report.programs.compactMap { program in
            let sensitive = program.helpers.filter(\.securitySensitive)
            guard !sensitive.isEmpty else { return nil }
            let described = sensitive.map { call in
                call.name + (HelperFunction.helper(id: call.id)?.risk.map { " (\($0))" } ?? "")
            }
            return Finding(.warning, "security.sensitive-helper",
                           "\(program.name) calls security-sensitive helpers: " + described.joined(separator: "; "),
                           at: "\(path):\(program.name)")
        }
    }

    private func portability(_ report: ObjectReport, path: String) -> [Finding] {
        var findings: [Finding] = []
        if manifest.platforms.contains(ManifestVocabulary.anyLinux) && !report.isCORE {
            findings.append(Finding(.warning, "portability.not-co-re",
                                    "platforms includes \"any\" but \(path) has no CO-RE relocations; it may not run on every kernel",
                                    at: path))
        }
        let bigEndianArchitectures: Set<String> = ["s390x", "mips64"]
        let objectBig = report.byteOrder == "big"
        for architecture in manifest.architectures where bigEndianArchitectures.contains(architecture) != objectBig {
            findings.append(Finding(.error, "portability.byte-order", "\(path) is \(report.byteOrder)-endian but the package declares \(architecture)",
                                    at: path))
        }
        return findings
    }
}
