import Foundation
import PackageFormat
import TestSupport
import Testing
@testable import Checks

/// `epr build`: every example from its sources, twice in different directories, to the same
/// bytes, and the kernel verifier accepts what was built.
@Suite(.serialized) struct PackageBuildTests {
    /// A copy of an example without its built objects and program, at `path`.
    static func sourcesOnly(_ example: String, at path: URL) throws -> Manifest {
        try FileManager.default.createDirectory(at: path.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: Fixtures.examples.appendingPathComponent(example), to: path)
        let text = try String(contentsOf: path.appendingPathComponent("epr.toml"), encoding: .utf8)
        let manifest = try Manifest.parse(text).manifest
        for built in manifest.declaredObjects + (manifest.build?.user.map { [$0.output] } ?? []) + ["vmlinux.h"] {
            try? FileManager.default.removeItem(at: path.appendingPathComponent(built))
        }
        return manifest
    }

    @Test(arguments: Fixtures.examplePackages)
    func everyExampleBuildsTwiceToTheSameBytes(example: String) throws {
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        var archives: [[UInt8]] = []
        var objects: [[UInt8]] = []
        var lastArchive = ""
        for (index, place) in ["a", "somewhere/much/deeper/b"].enumerated() {
            let directory = scratch.appendingPathComponent(place).appendingPathComponent(example)
            let manifest = try Self.sourcesOnly(example, at: directory)
            #expect(manifest.build != nil, "\(example) has a [build] table")
            for object in manifest.declaredObjects { #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent(object).path)) }
            let output = scratch.appendingPathComponent("out-\(index)")
            try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
            let (status, log) = try Fixtures.run("/usr/bin/env", ["SOURCE_DATE_EPOCH=1700000000", Fixtures.eprBinary, "build", directory.path, "-o", output.path])
            try #require(status == 0, "\(log)")
            #expect(log.contains("-target bpf"), "the log shows the commands: \(log)")
            let archive = output.appendingPathComponent(manifest.artifact).path
            archives.append(Array(try Data(contentsOf: URL(fileURLWithPath: archive))))
            objects.append(manifest.declaredObjects.flatMap { (try? Array(Data(contentsOf: directory.appendingPathComponent($0)))) ?? [] })
            lastArchive = archive
            // Nothing of the build is left in the package directory but what it declares.
            #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent(".epr-build").path))
        }
        #expect(objects[0] == objects[1] && !objects[0].isEmpty, "the objects are byte-identical")
        #expect(archives[0] == archives[1], "the archives are byte-identical")

        // The kernel verifier loads every program built.
        let report = try PackageInspector().inspect(path: lastArchive)
        #expect(report.isValid, "\(report.findings)")
        let work = scratch.appendingPathComponent("verify")
        let result = try CheckSuite(verifier: VerifierCheck(timeout: .seconds(120)), scanners: []).run(VerifierCheck.id, archive: lastArchive,
                                                                                                       report: report, scratch: work)
        #expect(result.outcome == .passed, "\(result.findings)")
    }

    @Test func windowsAndMissingBuildTablesAreRefusedClearly() throws {
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let directory = scratch.appendingPathComponent("pkg")
        _ = try Self.sourcesOnly("xdp-proto-counter", at: directory)
        let manifest = directory.appendingPathComponent("epr.toml")
        let text = try String(contentsOf: manifest, encoding: .utf8)
        // Without [build].
        try String(text[..<text.range(of: "# `epr build`")!.lowerBound]).write(to: manifest, atomically: true, encoding: .utf8)
        var (status, output) = try Fixtures.run(Fixtures.eprBinary, ["build", directory.path, "-o", scratch.path])
        #expect(status != 0 && output.contains("no [build] table") && output.contains("build.unsupported"), "\(output)")
        // For Windows.
        try text.replacingOccurrences(of: #"platforms = ["bookworm", "jammy", "noble"]"#, with: #"platforms = ["Windows"]"#)
            .write(to: manifest, atomically: true, encoding: .utf8)
        (status, output) = try Fixtures.run(Fixtures.eprBinary, ["build", directory.path, "-o", scratch.path])
        #expect(status != 0 && output.contains("Windows is not supported yet"), "\(output)")
        // An architecture the package does not declare.
        try text.write(to: manifest, atomically: true, encoding: .utf8)
        (status, output) = try Fixtures.run(Fixtures.eprBinary, ["build", directory.path, "--arch", "s390x", "-o", scratch.path])
        #expect(status != 0 && output.contains("not s390x"), "\(output)")
    }

    /// The BPF side builds for another declared architecture; what it cannot build there is said plainly.
    @Test func otherArchitectures() throws {
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        func declareArm64(_ directory: URL) throws {
            let manifest = directory.appendingPathComponent("epr.toml")
            try (try String(contentsOf: manifest, encoding: .utf8)).replacingOccurrences(of: #"architectures = ["x86_64"]"#, with: #"architectures = ["x86_64", "arm64"]"#)
                .write(to: manifest, atomically: true, encoding: .utf8)
        }
        // A program of UAPI headers only: clang's BPF target builds it for arm64 here.
        let counter = scratch.appendingPathComponent("counter")
        _ = try Self.sourcesOnly("xdp-proto-counter", at: counter)
        try declareArm64(counter)
        var (status, output) = try Fixtures.run(Fixtures.eprBinary, ["build", counter.path, "--arch", "arm64", "-o", scratch.path])
        #expect(status == 0 && output.contains("-D__TARGET_ARCH_arm64"), "\(output)")
        let object = try Data(contentsOf: counter.appendingPathComponent("proto_counter.bpf.o"))
        #expect(object.prefix(4) == Data([0x7F, 0x45, 0x4C, 0x46]) && object[18] == 247, "an ELF object for the BPF machine")
        // A CO-RE object for arm64 needs arm64's vmlinux.h, which this machine's kernel cannot give.
        let tracker = scratch.appendingPathComponent("tracker")
        _ = try Self.sourcesOnly("exec-tracker", at: tracker)
        try declareArm64(tracker)
        if PackageBuild.hostArchitecture != "arm64" {
            (status, output) = try Fixtures.run(Fixtures.eprBinary, ["build", tracker.path, "--arch", "arm64", "-o", scratch.path])
            #expect(status != 0 && output.contains("needs that architecture's vmlinux.h"), "\(output)")
        }
    }

    /// A compiler error fails the build with the compiler's words in the log.
    @Test func aCompilerErrorFailsTheBuild() throws {
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let directory = scratch.appendingPathComponent("pkg")
        _ = try Self.sourcesOnly("xdp-proto-counter", at: directory)
        let source = directory.appendingPathComponent("src/proto_counter.bpf.c")
        try (try String(contentsOf: source, encoding: .utf8) + "\nthis is not C;\n").write(to: source, atomically: true, encoding: .utf8)
        let (status, output) = try Fixtures.run(Fixtures.eprBinary, ["build", directory.path, "-o", scratch.path])
        #expect(status != 0)
        #expect(output.contains("error:") && output.contains("build.failed"), "\(output)")
        #expect(!FileManager.default.fileExists(atPath: scratch.appendingPathComponent("xdp_proto_counter.tar.gz").path))
    }

    /// The build image and local builds install the toolchain with the same script, which the
    /// test command runs too.
    @Test func theDockerfileAndLocalBuildsShareTheInstallScript() throws {
        let dockerfile = try String(contentsOf: Fixtures.root.appendingPathComponent("Dockerfile"), encoding: .utf8)
        let lines = dockerfile.split(separator: "\n").filter { !$0.hasPrefix("#") }
        let bases = lines.filter { $0.hasPrefix("FROM ") }.map { $0.split(separator: " ")[1] }
        #expect(!bases.isEmpty && bases.allSatisfy { $0.contains(":") && !$0.hasSuffix(":latest") }, "pinned bases: \(bases)")
        #expect(lines.contains { $0.hasPrefix("RUN ") && $0.contains("install-bpf-toolchain.sh") })
        #expect(lines.contains { $0.hasPrefix("COPY scripts/install-bpf-toolchain.sh ") })
        let testScript = try String(contentsOf: Fixtures.root.appendingPathComponent("scripts/test.sh"), encoding: .utf8)
        #expect(testScript.split(separator: "\n").contains { $0.trimmingCharacters(in: .whitespaces) == "scripts/install-bpf-toolchain.sh" })
        // The packages the issue names are the script's.
        let script = try String(contentsOf: Fixtures.root.appendingPathComponent("scripts/install-bpf-toolchain.sh"), encoding: .utf8)
        for package in ["clang", "llvm", "libbpf-dev", "bpftool", "gcc", "make"] { #expect(script.contains(" \(package) ") || script.contains("(\(package) ")) }
    }
}
