import BPFObject
import Foundation
import TestSupport
import Testing
@testable import PackageFormat

/// Packaging the examples: deterministic archives that standard tools and L3AFD read as
/// expected, and that inspection reads back without findings.
@Suite struct PackageBuildTests {
    func build(_ example: String, into directory: URL, time: UInt64 = 0) throws -> PackageBuilder.Result {
        try PackageBuilder().build(directory: Fixtures.examples.appendingPathComponent(example), output: directory, modificationTime: time)
    }

    @Test(arguments: Fixtures.examplePackages)
    func buildsAreByteIdentical(example: String) throws {
        let first = try Fixtures.temporaryDirectory(), second = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: first); try? FileManager.default.removeItem(at: second) }
        let a = try build(example, into: first), b = try build(example, into: second)
        #expect(URL(fileURLWithPath: a.path).lastPathComponent == a.manifest.artifact)
        let bytesA = try Data(contentsOf: URL(fileURLWithPath: a.path)), bytesB = try Data(contentsOf: URL(fileURLWithPath: b.path))
        #expect(bytesA == bytesB)
        #expect(a.digest == b.digest)
        #expect(a.digest == SHA256Digest(of: Array(bytesA)))
        #expect(try FileManager.default.contentsOfDirectory(atPath: first.path) == [a.manifest.artifact], "no temporary files left")
    }

    @Test func sourceDateEpochIsHonoured() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let epoch: UInt64 = 1_700_000_000
        let stamped = try build("xdp-port-filter", into: directory.appendingPathComponent("a.tar.gz"), time: epoch)
        let plain = try build("xdp-port-filter", into: directory.appendingPathComponent("b.tar.gz"), time: 0)
        #expect(stamped.digest != plain.digest)
        let (status, listing) = try Fixtures.run("/bin/tar", ["--numeric-owner", "--utc", "-tvzf", stamped.path])
        try #require(status == 0, "\(listing)")
        let lines = listing.split(separator: "\n")
        #expect(!lines.isEmpty)
        for line in lines {
            #expect(line.contains("0/0"), "owner of \(line)")
            #expect(line.contains("2023-11-14 22:13"), "time of \(line)")
        }
        #expect(PackageBuilder.modificationTime(environment: ["SOURCE_DATE_EPOCH": "1700000000"]) == epoch)
        #expect(PackageBuilder.modificationTime(environment: ["SOURCE_DATE_EPOCH": "soon"]) == 0)
        #expect(PackageBuilder.modificationTime(environment: [:]) == 0)
    }

    /// GNU tar, an independent reader, extracts exactly the package's files, sorted, with
    /// normalised modes, in the one directory L3AFD expects.
    @Test(arguments: Fixtures.examplePackages)
    func standardToolsReadTheArchiveAsL3AFDExpects(example: String) throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let result = try build(example, into: directory)
        let (listStatus, listing) = try Fixtures.run("/bin/tar", ["-tzf", result.path])
        try #require(listStatus == 0, "\(listing)")
        let names = listing.split(separator: "\n").map(String.init)
        #expect(names == names.sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) })
        #expect(names.allSatisfy { $0.hasPrefix(result.manifest.artifactBase + "/") })

        let extracted = directory.appendingPathComponent("extract")
        try FileManager.default.createDirectory(at: extracted, withIntermediateDirectories: true)
        let (status, output) = try Fixtures.run("/bin/tar", ["-xzf", result.path, "-C", extracted.path])
        try #require(status == 0, "\(output)")
        let top = extracted.appendingPathComponent(result.manifest.artifactBase)
        let source = Fixtures.examples.appendingPathComponent(example)
        for program in result.manifest.programs {
            // L3AFD loads <bpf-dir>/<name>/<version>/<artifact base>/<object_file>.
            let packaged = try Data(contentsOf: top.appendingPathComponent(program.object))
            #expect(packaged == (try Data(contentsOf: source.appendingPathComponent(program.object))))
        }
        if let user = result.manifest.userProgram {
            let attributes = try FileManager.default.attributesOfItem(atPath: top.appendingPathComponent(user.cmdStart).path)
            #expect((attributes[.posixPermissions] as? Int) == 0o755)
        }
        let readme = try FileManager.default.attributesOfItem(atPath: top.appendingPathComponent(result.manifest.readme).path)
        #expect((readme[.posixPermissions] as? Int) == 0o644)
    }

    @Test(arguments: Fixtures.examplePackages)
    func inspectionReadsTheArchiveBack(example: String) throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let result = try build(example, into: directory)
        let report = try PackageInspector().inspect(path: result.path, artifact: result.manifest.artifact)
        #expect(!report.findings.hasErrors, "\(report.findings)")
        #expect(report.manifest == result.manifest)
        #expect(report.sha256 == result.digest)
        #expect(report.topLevel == result.manifest.artifactBase)
        #expect(Set(report.objects.map(\.path)) == Set(result.manifest.declaredObjects))
        #expect(report.objects.allSatisfy { $0.report != nil })
        let source = Fixtures.examples.appendingPathComponent(example)
        for file in report.files where file.kind == .file {
            let bytes = try Data(contentsOf: source.appendingPathComponent(file.path))
            #expect(file.sha256 == SHA256Digest(of: Array(bytes)), "digest of \(file.path)")
            #expect(file.size == UInt64(bytes.count))
        }
    }

    /// A copy of an example whose manifest has one thing changed.
    func brokenCopy(_ example: String, replacing original: String, with replacement: String) throws -> URL {
        let directory = try Fixtures.temporaryDirectory()
        let copy = directory.appendingPathComponent(example)
        try FileManager.default.copyItem(at: Fixtures.examples.appendingPathComponent(example), to: copy)
        let manifest = copy.appendingPathComponent("epr.toml")
        let text = try String(contentsOf: manifest, encoding: .utf8)
        #expect(text.contains(original), "the example manifest no longer contains \(original)")
        try text.replacingOccurrences(of: original, with: replacement).write(to: manifest, atomically: true, encoding: .utf8)
        return copy
    }

    @Test(arguments: [
        ("entry = \"xdp_port_filter\"", "entry = \"xdp_missing\"", "manifest.entry-missing"),
        ("type = \"xdp\"", "type = \"tc\"", "manifest.type-mismatch"),
        ("chain_map = \"xdp_pf_next_prog\"", "chain_map = \"pf_drop_count\"", "chain.not-prog-array"),
        ("\nmaps = [", "\nmaps = [\"no_such_map\", ", "manifest.map-missing"),
        ("object = \"port_filter.bpf.o\"", "object = \"missing.bpf.o\"", "package.file-missing"),
        ("co_re = false", "co_re = true", "manifest.co-re-mismatch"),
        ("architectures = [\"x86_64\"]", "architectures = [\"s390x\"]", "portability.byte-order"),
        ("readme = \"README.md\"", "readme = \"README.txt\"", "package.file-missing"),
    ] as [(String, String, String)])
    func manifestMustAgreeWithTheObjects(original: String, replacement: String, check: String) throws {
        let copy = try brokenCopy("xdp-port-filter", replacing: original, with: replacement)
        defer { try? FileManager.default.removeItem(at: copy.deletingLastPathComponent()) }
        let output = copy.deletingLastPathComponent().appendingPathComponent("out.tar.gz")
        do {
            _ = try PackageBuilder().build(directory: copy, output: output, modificationTime: 0)
            Issue.record("packaged a manifest with \(replacement)")
        } catch let failure as PackageBuilder.Failure {
            #expect(failure.findings.contains { $0.check == check }, "\(failure.findings)")
        } catch let error as ManifestError {
            #expect(error.findings.contains { $0.check == check }, "\(error.findings)")
        }
        #expect(!FileManager.default.fileExists(atPath: output.path), "nothing is written for an invalid package")
    }

    @Test func gplOnlyHelpersUnderANonGPLLicenseAreFound() throws {
        var report = try BPFObjectInspector().inspect(Fixtures.bytes("exec-tracker/exec_tracker.bpf.o"))
        report.license = "MIT"
        report.gplCompatible = false
        let (manifest, _) = try Manifest.parse(String(contentsOf: Fixtures.examples.appendingPathComponent("exec-tracker/epr.toml"), encoding: .utf8))
        let findings = ManifestConsistency(
            manifest: manifest,
            files: [.init(path: "exec_tracker.bpf.o", isExecutable: false), .init(path: "exec_tracker", isExecutable: true),
                    .init(path: "README.md", isExecutable: false), .init(path: "LICENSE", isExecutable: false)],
            objects: ["exec_tracker.bpf.o": .success(report)]).findings()
        #expect(findings.filter { $0.check == "license.gpl-only-helper" }.count == report.programs.count)
    }

    /// Programs that read kernel memory, signal or write to processes, or inject errors are
    /// flagged for review, each helper with what makes it sensitive; others are not.
    @Test(arguments: Fixtures.examplePackages)
    func securitySensitiveHelpersAreFlagged(example: String) throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let result = try build(example, into: directory)
        let report = try PackageInspector().inspect(path: result.path, artifact: result.manifest.artifact)
        let flagged = report.findings.filter { $0.check == "security.sensitive-helper" }
        #expect(flagged.allSatisfy { $0.severity == .warning })
        for object in report.objects {
            for program in object.report?.programs ?? [] {
                let sensitive = program.helpers.filter(\.securitySensitive)
                let finding = flagged.first { $0.location == "\(object.path):\(program.name)" }
                #expect((finding != nil) == !sensitive.isEmpty, "\(program.name): \(sensitive.map(\.name))")
                for helper in sensitive {
                    let risk = try #require(HelperFunction.helper(id: helper.id)?.risk)
                    #expect(finding?.message.contains("\(helper.name) (\(risk))") == true)
                }
            }
        }
        if example == "exec-tracker" { #expect(flagged.count == 2 && flagged.allSatisfy { $0.message.contains("probe_read_kernel") }) }
        if example == "xdp-port-filter" { #expect(flagged.isEmpty) }
    }

    /// Private keys and tokens in any file of a package are errors, also when they straddle
    /// the chunks the inspector reads in; set-user-ID and set-group-ID files are refused.
    @Test func secretsAndSetUIDFilesAreRefused() throws {
        let key = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmUAAAAEbm9uZQ\n-----END OPENSSH PRIVATE KEY-----\n"
        let token = "export TOKEN=epr_" + String(repeating: "aB3", count: 15) + "\n"
        let aws = "aws_access_key_id = AKIA" + String(repeating: "Q7", count: 8) + "\n"
        let straddling = [UInt8](repeating: UInt8(ascii: "x"), count: 64 * 1024 - 20) + Array(key.utf8)
        let harmless = "the epr_ prefix, AKIA alone, and PRIVATE KEY----- without a begin line are fine\n"
        func inspect(_ files: [(String, [UInt8], UInt32)]) throws -> [Finding] {
            var tar = TarBuilder()
            tar.entry("xdp_port_filter/", type: "5", mode: 0o755)
            for (name, content, mode) in files { tar.entry("xdp_port_filter/" + name, content: content, mode: mode) }
            let archive = try TarBuilder.gzip(tar.tar())
            return try PackageInspector().inspect(source: MemorySource(archive), artifact: nil).findings
        }
        let found = try inspect([("deploy/key", Array(key.utf8), 0o644), ("env.sh", Array(token.utf8), 0o644),
                                 ("aws.ini", Array(aws.utf8), 0o644), ("big.bin", straddling, 0o644), ("notes.txt", Array(harmless.utf8), 0o644),
                                 ("helper", [0x7F, 0x45, 0x4C, 0x46], 0o4755), ("group-tool", [], 0o2755)])
        let secrets = found.filter { $0.check == "package.secret" }
        #expect(Set(secrets.compactMap(\.location)) == ["deploy/key", "env.sh", "aws.ini", "big.bin"], "\(secrets)")
        #expect(secrets.allSatisfy { $0.severity == .error })
        #expect(secrets.first { $0.location == "env.sh" }?.message.contains("an epr API token") == true)
        #expect(secrets.first { $0.location == "aws.ini" }?.message.contains("an AWS access key") == true)
        let setuid = found.filter { $0.check == "package.setuid" }
        #expect(Set(setuid.compactMap(\.location)) == ["helper", "group-tool"], "\(setuid)")
    }

    @Test func longPathsSurviveThroughPax() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let deep = (0..<12).map { "directory-\($0)" }.joined(separator: "/") + "/file-with-a-long-name.txt"
        let file = directory.appendingPathComponent("content")
        try Data("hello".utf8).write(to: file)
        let output = directory.appendingPathComponent("long.tar.gz").path
        _ = try ArchiveWriter(topLevel: "long", modificationTime: 0).write([.init(path: deep, source: file.path, executable: false)], to: output)
        let (status, listing) = try Fixtures.run("/bin/tar", ["-tzf", output])
        try #require(status == 0, "\(listing)")
        #expect(listing.split(separator: "\n").contains { $0 == "long/" + deep })
        let reader = try ArchiveReader(FileSource(path: output), expectedTopLevel: "long")
        var paths: [String] = []
        while let entry = try reader.next() { paths.append(entry.relativePath) }
        #expect(paths.contains(deep))
    }
}
