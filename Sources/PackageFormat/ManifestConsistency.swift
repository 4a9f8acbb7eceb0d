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

    public init(manifest: Manifest, files: [PackageFile], objects: [String: Result<ObjectReport, BPFObjectError>]) {
        self.manifest = manifest
        self.files = Dictionary(files.map { ($0.path, $0) }, uniquingKeysWith: { first, _ in first })
        self.objects = objects
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
                add(.error, "package.file-missing", "user_program.files names \(file), which is not in the package", file)
            }
            if let start = files[user.cmdStart], !start.isExecutable {
                add(.error, "user-program.not-executable", "user_program.cmd_start \(user.cmdStart) is not executable", user.cmdStart)
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

    private func check(_ program: Manifest.Program, at key: String) -> [Finding] {
        var findings: [Finding] = []
        let location = "\(program.object):\(program.entry)"
        func error(_ check: String, _ message: String) { findings.append(Finding(.error, check, message, at: location)) }
        guard files[program.object] != nil else {
            error("manifest.object-missing", "\(key).object \(program.object) is not in the package")
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
