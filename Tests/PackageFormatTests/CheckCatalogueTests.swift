import BPFObject
import Foundation
import TestSupport
import Testing
@testable import PackageFormat

/// The inspection's checks not covered elsewhere, each on a real object or program changed in
/// the one way that trips it, beside the unchanged one that passes.
@Suite struct CheckCatalogueTests {
    struct Case {
        var example: String
        var objectPath: String
        var report: ObjectReport
        var manifest: Manifest
        var files: [ManifestConsistency.PackageFile]
        var objects: [String: Result<ObjectReport, BPFObjectError>]
        var userSpace: [String: (UserSpaceELF, UInt64)] = [:]

        func findings() -> [Finding] {
            ManifestConsistency(manifest: manifest, files: files, objects: objects, userSpace: userSpace).findings()
        }
    }

    /// An example as the inspector sees it: manifest, files, and its object's report.
    static func example(_ name: String) throws -> Case {
        let directory = Fixtures.examples.appendingPathComponent(name)
        let (manifest, _) = try Manifest.parse(String(contentsOf: directory.appendingPathComponent("epr.toml"), encoding: .utf8))
        let object = manifest.programs[0].object
        let report = try BPFObjectInspector().inspect(Fixtures.bytes("\(name)/\(object)"))
        var files = [ManifestConsistency.PackageFile(path: object, isExecutable: false), .init(path: "README.md", isExecutable: false),
                     .init(path: "LICENSE", isExecutable: false)]
        for file in manifest.userProgram?.files ?? [] { files.append(.init(path: file, isExecutable: true)) }
        return Case(example: name, objectPath: object, report: report, manifest: manifest, files: files, objects: [object: .success(report)])
    }

    static func checks(_ findings: [Finding]) -> Set<String> { Set(findings.map(\.check)) }

    @Test func theExamplesPassTheseChecks() throws {
        let tripped: Set<String> = ["license.kfunc", "license.lsm", "license.missing-section", "license.gpl-only-helper", "chain.empty-prog-array",
                                    "chain.no-tail-call", "portability.not-co-re", "user-program.not-executable", "package.undeclared-object",
                                    "user-program.too-large"]
        for example in Fixtures.examplePackages {
            let found = Self.checks(try Self.example(example).findings())
            #expect(found.isDisjoint(with: tripped), "\(example): \(found)")
        }
    }

    @Test func kfuncsAndLSMProgramsNeedAGPLCompatibleLicense() throws {
        var report = try BPFObjectInspector().inspect(Fixtures.bytes("fixtures/kfunc_lsm.bpf.o"))
        let program = try #require(report.programs.first)
        #expect(program.type == "lsm" && !program.kfuncs.isEmpty)
        let manifest = try Manifest.parse("""
            [package]
            name = "lsm-guard"
            version = "1.0.0"
            description = "An LSM program calling kfuncs."
            license = "GPL-2.0-only"
            authors = ["epr tests"]
            artifact = "lsm_guard.tar.gz"
            platforms = ["any"]
            architectures = ["x86_64"]

            [[program]]
            object = "kfunc_lsm.bpf.o"
            entry = "\(program.name)"
            type = "lsm"
            co_re = true
            """).manifest
        let files: [ManifestConsistency.PackageFile] = [.init(path: "kfunc_lsm.bpf.o", isExecutable: false), .init(path: "README.md", isExecutable: false),
                                                        .init(path: "LICENSE", isExecutable: false)]
        func findings() -> Set<String> {
            Self.checks(ManifestConsistency(manifest: manifest, files: files, objects: ["kfunc_lsm.bpf.o": .success(report)]).findings())
        }
        #expect(findings().isDisjoint(with: ["license.kfunc", "license.lsm"]), "GPL: allowed")
        report.license = "MIT"
        report.gplCompatible = false
        #expect(findings().isSuperset(of: ["license.kfunc", "license.lsm"]))
        report.license = nil
        #expect(findings().contains("license.missing-section"))
    }

    @Test func chainingNeedsAnEntryAndATailCall() throws {
        var example = try Self.example("xdp-port-filter")
        let chain = try #require(example.manifest.programs[0].chainMap)
        let index = try #require(example.report.maps.firstIndex { $0.name == chain })
        example.report.maps[index].maxEntries = 0
        example.objects[example.objectPath] = .success(example.report)
        #expect(Self.checks(example.findings()).contains("chain.empty-prog-array"))

        example = try Self.example("xdp-port-filter")
        example.report.programs[0].tailCalls = 0
        example.report.programs[0].tailCallMaps = []
        example.objects[example.objectPath] = .success(example.report)
        #expect(Self.checks(example.findings()).contains("chain.no-tail-call"))
    }

    @Test func anyLinuxNeedsCORE() throws {
        var example = try Self.example("xdp-proto-counter")
        #expect(!example.report.isCORE)
        example.manifest.platforms = ["any"]
        let finding = try #require(example.findings().first { $0.check == "portability.not-co-re" })
        #expect(finding.severity == .warning)
    }

    @Test func userProgramsMustBeExecutableProgramsOfSensibleSize() throws {
        var example = try Self.example("exec-tracker")
        let start = try #require(example.manifest.userProgram?.cmdStart)
        example.files = example.files.map { $0.path == start ? .init(path: start, isExecutable: false) : $0 }
        #expect(Self.checks(example.findings()).contains("user-program.not-executable"))

        example = try Self.example("exec-tracker")
        var reader = UserSpaceELF.Reader()
        try Fixtures.bytes("exec-tracker/\(start)").withUnsafeBytes { reader.feed($0) }
        let summary = reader.finish()
        let elf = try #require(summary)
        example.userSpace = [start: (elf, 1 << 20)]
        #expect(!Self.checks(example.findings()).contains("user-program.too-large"))
        example.userSpace = [start: (elf, ManifestConsistency.maxUserProgramSize + 1)]
        #expect(Self.checks(example.findings()).contains("user-program.too-large"))
    }

    @Test func objectsNoProgramDeclaresAreNamed() throws {
        var example = try Self.example("xdp-port-filter")
        example.files.append(.init(path: "spare.bpf.o", isExecutable: false))
        example.objects["spare.bpf.o"] = .success(example.report)
        let finding = try #require(example.findings().first { $0.check == "package.undeclared-object" })
        #expect(finding.severity == .warning && finding.location == "spare.bpf.o")
    }
}
