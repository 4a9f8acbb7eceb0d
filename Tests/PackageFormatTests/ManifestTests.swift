import Testing
import Foundation
import PackageFormat

@Suite struct ManifestTests {
    static let minimal = """
    [package]
    name = "xdp-sample"
    version = "1.2.3-rc.1"
    description = "A sample."
    license = "GPL-2.0-only OR BSD-2-Clause"
    authors = ["Someone <someone@example.org>"]
    platforms = ["any"]
    architectures = ["x86_64"]

    [[program]]
    object = "sample.bpf.o"
    entry = "xdp_sample"
    type = "xdp"
    maps = ["counts", "next_prog"]
    chain_map = "next_prog"
    min_kernel = "5.15"
    co_re = true

    [user_program]
    files = ["sample", "sample.conf"]
    cmd_start = "sample"
    daemon = true
    dependencies = ["libbpf1"]

    [l3afd]
    start_args = { interval = "5", verbose = true }
    map_args = [ { name = "counts", args = [ { key = 8080, value = "1" } ] } ]
    monitor_maps = [ { name = "counts", key = 0, aggregator = "scalar" } ]
    """

    @Test func parsesEveryField() throws {
        let (manifest, warnings) = try Manifest.parse(Self.minimal)
        #expect(warnings.isEmpty)
        #expect(manifest.name.value == "xdp-sample")
        #expect(manifest.version.description == "1.2.3-rc.1")
        #expect(manifest.artifact == "xdp-sample.tar.gz")
        #expect(manifest.artifactBase == "xdp-sample")
        #expect(manifest.readme == "README.md")
        #expect(manifest.licenseFile == "LICENSE")
        #expect(manifest.programs.count == 1)
        let program = manifest.programs[0]
        #expect(program.entry == "xdp_sample")
        #expect(program.chainMap == "next_prog")
        #expect(program.coRE)
        #expect(manifest.userProgram?.cmdStart == "sample")
        #expect(manifest.userProgram?.daemon == true)
        #expect(manifest.l3afd.startArgs == ["interval": "5", "verbose": "true"])
        #expect(manifest.l3afd.mapArgs == [.init(name: "counts", args: [.init(key: 8080, value: 1)])])
        #expect(manifest.l3afd.monitorMaps.first?.aggregator == "scalar")
    }

    @Test func artifactBaseIsUpToTheFirstDot() throws {
        let (manifest, _) = try Manifest.parse(Self.minimal.replacingFirst("[package]\n", with: "[package]\nartifact = \"l3af_sample.v2.tar.gz\"\n"))
        #expect(manifest.artifactBase == "l3af_sample")
    }

    @Test func unknownKeysWarn() throws {
        let (_, warnings) = try Manifest.parse(Self.minimal.replacingFirst("[package]\n", with: "[package]\nhomepge = \"x\"\n"))
        #expect(warnings.map(\.location) == ["package.homepge"])
        #expect(warnings.first?.severity == .warning)
    }

    /// Each broken manifest is refused with a finding at the key that is wrong.
    @Test(arguments: [
        ("name = \"xdp-sample\"", "name = \"Xdp\"", "package.name"),
        ("version = \"1.2.3-rc.1\"", "version = \"1.2\"", "package.version"),
        ("license = \"GPL-2.0-only OR BSD-2-Clause\"", "license = \"GPL-2.0 OR\"", "package.license"),
        ("platforms = [\"any\"]", "platforms = [\"Windows\", \"jammy\"]", "package.platforms"),
        ("platforms = [\"any\"]", "platforms = [\"Jammy!\"]", "package.platforms"),
        ("architectures = [\"x86_64\"]", "architectures = [\"amd64\"]", "package.architectures"),
        ("object = \"sample.bpf.o\"", "object = \"../sample.bpf.o\"", "program[0].object"),
        ("object = \"sample.bpf.o\"", "object = \"sample.elf\"", "program[0].object"),
        ("entry = \"xdp_sample\"", "entry = \"xdp-sample\"", "program[0].entry"),
        ("type = \"xdp\"", "type = \"xpd\"", "program[0].type"),
        ("min_kernel = \"5.15\"", "min_kernel = \"five\"", "program[0].min_kernel"),
        ("cmd_start = \"sample\"", "cmd_start = \"other\"", "user_program.cmd_start"),
        ("aggregator = \"scalar\"", "aggregator = \"sum\"", "l3afd.monitor_maps[0].aggregator"),
        ("daemon = true", "daemon = \"yes\"", "user_program.daemon"),
        ("authors = [\"Someone <someone@example.org>\"]", "authors = \"Someone\"", "package.authors"),
        ("description = \"A sample.\"\n", "", "package.description"),
        ("{ key = 8080, value = \"1\" }", "{ key = \"http\", value = 1 }", "l3afd.map_args[0].args[0].key"),
    ] as [(String, String, String)])
    func invalidFieldsAreLocated(original: String, replacement: String, location: String) {
        let text = Self.minimal.replacingFirst(original, with: replacement)
        #expect(text != Self.minimal)
        do {
            _ = try Manifest.parse(text)
            Issue.record("accepted a manifest with \(replacement)")
        } catch {
            #expect(error.findings.contains { $0.severity == .error && $0.location == location },
                    "\(error.findings.map(\.description))")
        }
    }

    @Test func everyProblemIsReportedAtOnce() {
        let text = Self.minimal.replacingFirst("name = \"xdp-sample\"", with: "name = \"Bad\"")
            .replacingFirst("version = \"1.2.3-rc.1\"", with: "version = \"x\"")
            .replacingFirst("type = \"xdp\"", with: "type = 3")
        do {
            _ = try Manifest.parse(text)
            Issue.record("accepted")
        } catch {
            #expect(Set(error.findings.compactMap(\.location)).isSuperset(of: ["package.name", "package.version", "program[0].type"]))
        }
    }

    @Test func syntaxErrorsSayWhere() {
        do {
            _ = try Manifest.parse("[package]\nname = \n")
            Issue.record("accepted")
        } catch {
            #expect(error.findings.first?.check == "manifest.syntax")
            #expect(error.findings.first?.message.contains("line 2") == true)
        }
    }

    @Test func missingTablesAreErrors() {
        #expect(throws: ManifestError.self) { try Manifest.parse("") }
        #expect(throws: ManifestError.self) { try Manifest.parse(String(repeating: "#", count: Manifest.maxSize + 1)) }
    }

    @Test(arguments: [("MIT", true), ("GPL-2.0-only OR BSD-2-Clause", true), ("(MIT AND BSD-3-Clause) OR GPL-2.0+", true),
                      ("GPL-2.0-only WITH Linux-syscall-note", true), ("LicenseRef-Proprietary", true),
                      ("", false), ("MIT OR", false), ("(MIT", false), ("MIT BSD", false), ("AND", false), ("MIT WITH", false)])
    func spdxExpressions(text: String, valid: Bool) {
        #expect((SPDXExpression.problem(text) == nil) == valid)
    }
}

extension String {
    func replacingFirst(_ target: String, with replacement: String) -> String {
        guard let range = range(of: target) else { return self }
        return replacingCharacters(in: range, with: replacement)
    }
}

extension ManifestTests {
    static let withSources = ManifestTests.minimal.replacingOccurrences(of: #"architectures = ["x86_64"]"#,
                                                          with: #"architectures = ["x86_64"]"# + "\nsources = [\"src/*.c\", \"src/*.h\", \"test.sh\"]")

    @Test func readsTheBuildTable() throws {
        let text = Self.withSources + """

        [build]
        cflags = ["-Wall", "-Isrc", "-I/usr/include/x86_64-linux-gnu"]
        vmlinux = true
        test = "test.sh"

        [[build.object]]
        object = "sample.bpf.o"
        sources = ["src/a.bpf.c", "src/b.bpf.c"]
        cflags = ["-DFEATURE=1"]

        [build.user]
        output = "sample"
        sources = ["src/sample.c"]
        libs = ["bpf", "elf"]
        """
        let (manifest, warnings) = try Manifest.parse(text)
        #expect(warnings.isEmpty, "\(warnings)")
        let build = try #require(manifest.build)
        #expect(build.objects == [Manifest.BuildSection.Object(object: "sample.bpf.o", sources: ["src/a.bpf.c", "src/b.bpf.c"], cflags: ["-DFEATURE=1"])])
        #expect(build.user == Manifest.BuildSection.User(output: "sample", sources: ["src/sample.c"], libs: ["bpf", "elf"]))
        #expect(build.vmlinux && build.strip && build.test == "test.sh")
        // It survives the JSON the registry stores; a manifest without it decodes as before.
        let decoded = try JSONDecoder().decode(Manifest.self, from: try JSONEncoder().encode(manifest))
        #expect(decoded == manifest)
        #expect(try Manifest.parse(ManifestTests.minimal).manifest.build == nil)
    }

    @Test(arguments: [
        ("[[build.object]]\nobject = \"other.bpf.o\"\nsources = [\"src/a.c\"]", "not an object a [[program]] names"),
        ("[[build.object]]\nobject = \"sample.bpf.o\"\nsources = [\"elsewhere/a.c\"]", "not matched by package.sources"),
        ("[[build.object]]\nobject = \"sample.bpf.o\"\nsources = [\"../a.c\"]", "build.object[0].sources"),
        ("cflags = [\"-fplugin=/tmp/evil.so\"]\n[[build.object]]\nobject = \"sample.bpf.o\"\nsources = [\"src/a.c\"]", "is not allowed"),
        ("cflags = [\"-o/etc/passwd\"]\n[[build.object]]\nobject = \"sample.bpf.o\"\nsources = [\"src/a.c\"]", "is not allowed"),
        ("cflags = [\"-I/etc\"]\n[[build.object]]\nobject = \"sample.bpf.o\"\nsources = [\"src/a.c\"]", "is not allowed"),
        ("cflags = [\"-Wl,-rpath,/x\"]\n[[build.object]]\nobject = \"sample.bpf.o\"\nsources = [\"src/a.c\"]", "is not allowed"),
        ("test = \"run.sh\"\n[[build.object]]\nobject = \"sample.bpf.o\"\nsources = [\"src/a.c\"]", "not matched by package.sources"),
        ("[build.user]\noutput = \"other\"\nsources = [\"src/a.c\"]", "not one of user_program.files"),
        ("vmlinux = true", "sample.bpf.o is not built"),
    ])
    func refusesABadBuildTable(table: String, message: String) {
        #expect {
            _ = try Manifest.parse(Self.withSources + "\n[build]\n" + table + "\n")
        } throws: { error in
            "\(error)".contains(message)
        }
    }
}
