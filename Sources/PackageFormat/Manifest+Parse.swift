extension Manifest {
    /// Parses and validates `epr.toml`. Throws a ``ManifestError`` listing every problem;
    /// on success returns the manifest and any warnings (unknown keys and the like).
    public static func parse(_ text: String) throws(ManifestError) -> (manifest: Manifest, warnings: [Finding]) {
        guard text.utf8.count <= maxSize else {
            throw ManifestError(findings: [Finding(.error, "manifest.too-large", "\(fileName) is larger than \(maxSize) bytes")])
        }
        let document: TOMLTable
        do {
            document = try TOMLParser.parse(text)
        } catch {
            throw ManifestError(findings: [Finding(.error, "manifest.syntax", "\(fileName) is not valid TOML: \(error)")])
        }
        var findings: [Finding] = []
        var root = TOMLFields(document, path: "")
        let packageTable = root.table("package")
        let programTables = root.tables("program")
        let userTable = root.table("user_program")
        let l3afdTable = root.table("l3afd")
        let buildTable = root.table("build")
        findings += root.finish()
        if packageTable == nil {
            findings.append(Finding(.error, "manifest.invalid", "the [package] table is required", at: "package"))
        }
        var package = TOMLFields(packageTable ?? TOMLTable(), path: "package")
        let rawName = package.string("name", required: packageTable != nil)
        let rawVersion = package.string("version", required: packageTable != nil)
        var manifest = Manifest(
            name: try! PackageName("placeholder"), version: SemanticVersion(major: 0, minor: 0, patch: 0),
            description: package.string("description", required: packageTable != nil) ?? "",
            license: package.string("license", required: packageTable != nil) ?? "",
            authors: package.strings("authors", required: packageTable != nil),
            homepage: package.string("homepage"), repository: package.string("repository"),
            keywords: package.strings("keywords"), categories: package.strings("categories"),
            artifact: "", readme: package.string("readme") ?? "README.md",
            licenseFile: package.string("license_file") ?? "LICENSE",
            platforms: package.strings("platforms", required: packageTable != nil),
            architectures: package.strings("architectures", required: packageTable != nil),
            sources: package.strings("sources"), programs: [], userProgram: nil, l3afd: L3AFDDefaults())
        if let rawName {
            do { manifest.name = try PackageName(rawName) } catch { package.problem("name", error.description) }
        }
        if let rawVersion {
            do { manifest.version = try SemanticVersion(rawVersion) } catch { package.problem("version", error.description) }
        }
        manifest.artifact = package.string("artifact") ?? "\(manifest.name.value).tar.gz"
        findings += package.finish()

        if programTables.isEmpty {
            findings.append(Finding(.error, "manifest.invalid", "at least one [[program]] is required", at: "program"))
        }
        for (i, table) in programTables.enumerated() {
            var fields = TOMLFields(table, path: "program[\(i)]")
            manifest.programs.append(Program(
                object: fields.string("object", required: true) ?? "", entry: fields.string("entry", required: true) ?? "",
                type: fields.string("type", required: true) ?? "", maps: fields.strings("maps"),
                chainMap: fields.string("chain_map"), minKernel: fields.string("min_kernel"),
                coRE: fields.bool("co_re") ?? false))
            findings += fields.finish()
        }
        if let userTable {
            var fields = TOMLFields(userTable, path: "user_program")
            manifest.userProgram = UserProgram(
                files: fields.strings("files", required: true), cmdStart: fields.string("cmd_start", required: true) ?? "",
                cmdStop: fields.string("cmd_stop"), cmdStatus: fields.string("cmd_status"),
                cmdUpdate: fields.string("cmd_update"), daemon: fields.bool("daemon") ?? false,
                dependencies: fields.strings("dependencies"))
            findings += fields.finish()
        }
        if let l3afdTable {
            var fields = TOMLFields(l3afdTable, path: "l3afd")
            manifest.l3afd = decodeL3AFD(&fields)
            findings += fields.finish()
        }
        if let buildTable {
            var fields = TOMLFields(buildTable, path: "build")
            var section = BuildSection(objects: [], cflags: fields.strings("cflags"), vmlinux: fields.bool("vmlinux") ?? false,
                                       strip: fields.bool("strip") ?? true, test: fields.string("test"))
            for (i, table) in fields.tables("object").enumerated() {
                var object = TOMLFields(table, path: "build.object[\(i)]")
                section.objects.append(BuildSection.Object(object: object.string("object", required: true) ?? "",
                                                           sources: object.strings("sources", required: true), cflags: object.strings("cflags")))
                findings += object.finish()
            }
            if let userTable = fields.table("user") {
                var user = TOMLFields(userTable, path: "build.user")
                section.user = BuildSection.User(output: user.string("output", required: true) ?? "", sources: user.strings("sources", required: true),
                                                 cflags: user.strings("cflags"), libs: user.strings("libs"))
                findings += user.finish()
            }
            findings += fields.finish()
            manifest.build = section
        }
        findings += manifest.validate()
        guard !findings.hasErrors else { throw ManifestError(findings: findings) }
        return (manifest, findings)
    }

    private static func decodeL3AFD(_ fields: inout TOMLFields) -> L3AFDDefaults {
        var defaults = L3AFDDefaults(startArgs: fields.stringMap("start_args"), stopArgs: fields.stringMap("stop_args"),
                                     statusArgs: fields.stringMap("status_args"), updateArgs: fields.stringMap("update_args"))
        for (i, table) in fields.tables("map_args").enumerated() {
            var entry = TOMLFields(table, path: "\(fields.location("map_args"))[\(i)]")
            var args: [L3AFDDefaults.KeyValue] = []
            for (j, pair) in entry.tables("args").enumerated() {
                var kv = TOMLFields(pair, path: "\(entry.location("args"))[\(j)]")
                let key = kv.integer("key", required: true), value = kv.integer("value", required: true)
                if let key, let value {
                    args.append(.init(key: key, value: value))
                }
                fields.findings += kv.finish()
            }
            defaults.mapArgs.append(.init(name: entry.string("name", required: true) ?? "", args: args))
            fields.findings += entry.finish()
        }
        for (i, table) in fields.tables("monitor_maps").enumerated() {
            var entry = TOMLFields(table, path: "\(fields.location("monitor_maps"))[\(i)]")
            defaults.monitorMaps.append(.init(name: entry.string("name", required: true) ?? "",
                                              key: entry.integer("key") ?? 0,
                                              aggregator: entry.string("aggregator") ?? "scalar"))
            fields.findings += entry.finish()
        }
        return defaults
    }
}
