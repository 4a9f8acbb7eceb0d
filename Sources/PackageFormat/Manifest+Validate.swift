extension Manifest {
    /// Rules that span fields or need more than a type check.
    func validate() -> [Finding] {
        var findings: [Finding] = []
        func error(_ location: String, _ message: String) {
            findings.append(Finding(.error, "manifest.invalid", message, at: location))
        }
        if description.count > 1000 { error("package.description", "package.description is longer than 1000 characters") }
        if !license.isEmpty, let problem = SPDXExpression.problem(license) {
            error("package.license", "package.license is not an SPDX expression: \(problem)")
        }
        for (i, author) in authors.enumerated() where author.trimmingSpaces.isEmpty {
            error("package.authors[\(i)]", "package.authors[\(i)] is empty")
        }
        for (key, url) in [("homepage", homepage), ("repository", repository)] {
            if let url, !(url.hasPrefix("https://") || url.hasPrefix("http://")) {
                error("package.\(key)", "package.\(key) must be an http(s) URL")
            }
        }
        if keywords.count > ManifestVocabulary.maxKeywords {
            error("package.keywords", "package.keywords has \(keywords.count) entries, at most \(ManifestVocabulary.maxKeywords) are allowed")
        }
        for keyword in keywords where keyword.isEmpty || keyword.count > 32
            || !keyword.utf8.allSatisfy({ ($0.isASCIIAlphanumeric && !(0x41...0x5A).contains($0)) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") }) {
            error("package.keywords", "keyword \"\(keyword)\" must be 1 to 32 lowercase letters, digits, '-' or '_'")
        }
        for category in categories where !ManifestVocabulary.categories.contains(category) {
            error("package.categories", "unknown category \"\(category)\"; known: \(ManifestVocabulary.categories.sorted().joined(separator: ", "))")
        }
        validateArtifact(error)
        for (key, path) in [("readme", readme), ("license_file", licenseFile)] + sources.map({ ("sources", $0) }) {
            if let problem = RelativePath.problem(path) { error("package.\(key)", "package.\(key) \"\(path)\": \(problem)") }
        }
        validatePlatforms(error)
        for architecture in architectures where !ManifestVocabulary.architectures.contains(architecture) {
            error("package.architectures", "unknown architecture \"\(architecture)\"; known: \(ManifestVocabulary.architectures.sorted().joined(separator: ", "))")
        }
        validatePrograms(error)
        validateUserProgram(error)
        validateL3AFD(error)
        validateBuild(error)
        return findings
    }

    /// The build section: every object it builds is a declared object, each once; its sources,
    /// test and output are safe paths packaged with the sources, so the repository can rebuild.
    private func validateBuild(_ error: (String, String) -> Void) {
        guard let build else { return }
        let declared = Set(declaredObjects)
        var built: Set<String> = []
        for (i, object) in build.objects.enumerated() {
            let at = "build.object[\(i)]"
            if !declared.contains(object.object) { error("\(at).object", "\(object.object) is not an object a [[program]] names") }
            if !built.insert(object.object).inserted { error("\(at).object", "\(object.object) is built twice") }
            if object.sources.isEmpty { error("\(at).sources", "\(at).sources names no file") }
            for source in object.sources {
                if let problem = RelativePath.problem(source) { error("\(at).sources", "\"\(source)\": \(problem)") } else if !isPackagedSource(source) {
                    error("\(at).sources", "\(source) is not matched by package.sources: the repository rebuilds from the packaged sources")
                }
            }
        }
        for object in declared.subtracting(built).sorted() {
            error("build.object", "\(object) is not built: add a [[build.object]] for it")
        }
        if let user = build.user {
            if userProgram?.files.contains(user.output) != true {
                error("build.user.output", "\(user.output) is not one of user_program.files")
            }
            if let problem = RelativePath.problem(user.output) { error("build.user.output", "\"\(user.output)\": \(problem)") }
            for source in user.sources {
                if let problem = RelativePath.problem(source) { error("build.user.sources", "\"\(source)\": \(problem)") } else if !isPackagedSource(source) {
                    error("build.user.sources", "\(source) is not matched by package.sources: the repository rebuilds from the packaged sources")
                }
            }
            for library in user.libs where library.isEmpty || !library.utf8.allSatisfy({ $0.isASCIIAlphanumeric || [UInt8(ascii: "_"), UInt8(ascii: "-"), UInt8(ascii: "+"), UInt8(ascii: ".")].contains($0) }) {
                error("build.user.libs", "\"\(library)\" is not a library name (without -l)")
            }
        }
        if let test = build.test {
            if let problem = RelativePath.problem(test) { error("build.test", "\"\(test)\": \(problem)") } else if !isPackagedSource(test) {
                error("build.test", "\(test) is not matched by package.sources")
            }
        }
        for flag in build.cflags + build.objects.flatMap(\.cflags) + (build.user?.cflags ?? []) where !BuildSection.allowedFlag(flag) {
            error("build.cflags", "the flag \(flag) is not allowed: use -I, -D, -U, -W, -f, -O, -g and -std flags with paths inside the package")
        }
        if platforms == [ManifestVocabulary.windows] {
            error("build", "building for Windows is not supported yet: build eBPF for Windows objects with its own toolchain and package them without [build]")
        }
    }

    private func isPackagedSource(_ path: String) -> Bool {
        sources.contains { RelativePath.matches(path, pattern: $0) }
    }

    private func validateArtifact(_ error: (String, String) -> Void) {
        let allowed = artifact.utf8.allSatisfy { $0.isASCIIAlphanumeric || [UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: ".")].contains($0) }
        if !artifact.hasSuffix(".tar.gz") || !allowed || artifactBase.isEmpty || artifact.count > 128 {
            error("package.artifact", "package.artifact \"\(artifact)\" must be a file name of letters, digits, '-', '_' and '.' ending in .tar.gz, not starting with '.'")
        }
    }

    private func validatePlatforms(_ error: (String, String) -> Void) {
        for platform in platforms where platform != ManifestVocabulary.anyLinux && platform != ManifestVocabulary.windows {
            let valid = platform.count <= 32 && platform.utf8.first.map { (0x61...0x7A).contains($0) } == true
                && platform.utf8.allSatisfy { ($0.isASCIIAlphanumeric && !(0x41...0x5A).contains($0)) || $0 == UInt8(ascii: "-") }
            if !valid {
                error("package.platforms", "platform \"\(platform)\" must be a distribution codename (lsb_release -cs, e.g. jammy), \"any\" or \"Windows\"")
            }
        }
        if platforms.contains(ManifestVocabulary.windows), platforms.count > 1 {
            error("package.platforms", "a package built for Windows cannot also name Linux platforms: publish them as separate packages")
        }
        if Set(platforms).count != platforms.count { error("package.platforms", "package.platforms lists a platform twice") }
    }

    private func validatePrograms(_ error: (String, String) -> Void) {
        var seen = Set<String>()
        for (i, program) in programs.enumerated() {
            let at = "program[\(i)]"
            if !program.object.isEmpty, let problem = RelativePath.problem(program.object) {
                error("\(at).object", "\(at).object \"\(program.object)\": \(problem)")
            }
            if !program.object.isEmpty, !program.object.hasSuffix(".o") {
                error("\(at).object", "\(at).object \"\(program.object)\" must be an ELF object ending in .o")
            }
            if !program.entry.isEmpty, !program.entry.isCIdentifier {
                error("\(at).entry", "\(at).entry \"\(program.entry)\" is not a C function name")
            }
            if !program.type.isEmpty, !ManifestVocabulary.programKinds.contains(program.type) {
                error("\(at).type", "\(at).type \"\(program.type)\" is not a known program type")
            }
            if !seen.insert("\(program.object):\(program.entry)").inserted {
                error(at, "\(program.object):\(program.entry) is declared twice")
            }
            for map in program.maps where !map.isCIdentifier && !map.hasPrefix(".") {
                error("\(at).maps", "map name \"\(map)\" is not a C identifier")
            }
            if let version = program.minKernel, !version.isKernelVersion {
                error("\(at).min_kernel", "\(at).min_kernel \"\(version)\" must look like 5.15 or 6.1.0")
            }
            if let chain = program.chainMap, !chain.isCIdentifier {
                error("\(at).chain_map", "\(at).chain_map \"\(chain)\" is not a C identifier")
            }
        }
    }

    private func validateUserProgram(_ error: (String, String) -> Void) {
        guard let user = userProgram else { return }
        for file in user.files {
            if let problem = RelativePath.problem(file) { error("user_program.files", "user_program.files \"\(file)\": \(problem)") }
        }
        if !user.cmdStart.isEmpty, !user.files.contains(user.cmdStart) {
            error("user_program.cmd_start", "user_program.cmd_start \"\(user.cmdStart)\" must be one of user_program.files")
        }
        for (key, command) in [("cmd_stop", user.cmdStop), ("cmd_status", user.cmdStatus), ("cmd_update", user.cmdUpdate)] {
            if let command, !command.isEmpty, !user.files.contains(command) {
                error("user_program.\(key)", "user_program.\(key) \"\(command)\" must be one of user_program.files")
            }
        }
    }

    private func validateL3AFD(_ error: (String, String) -> Void) {
        for (i, entry) in l3afd.monitorMaps.enumerated() where !ManifestVocabulary.aggregators.contains(entry.aggregator) {
            error("l3afd.monitor_maps[\(i)].aggregator",
                  "aggregator \"\(entry.aggregator)\" must be one of \(ManifestVocabulary.aggregators.sorted().joined(separator: ", "))")
        }
        let declared = Set(programs.flatMap(\.maps))
        for (key, names) in [("map_args", l3afd.mapArgs.map(\.name)), ("monitor_maps", l3afd.monitorMaps.map(\.name))] {
            for name in names where !declared.contains(name) {
                error("l3afd.\(key)", "l3afd.\(key) names map \"\(name)\", which no [[program]] lists in maps")
            }
        }
    }
}

extension String {
    var isCIdentifier: Bool {
        guard let first = utf8.first, !(0x30...0x39).contains(first), count <= 256 else { return false }
        return utf8.allSatisfy { $0.isASCIIAlphanumeric || $0 == UInt8(ascii: "_") }
    }

    var isKernelVersion: Bool {
        let parts = split(separator: ".", omittingEmptySubsequences: false)
        return (2...3).contains(parts.count) && parts.allSatisfy { !$0.isEmpty && $0.count <= 5 && $0.allSatisfy(\.isASCIIDigit) }
    }

    var trimmingSpaces: Substring { drop { $0 == " " || $0 == "\t" } }
}
