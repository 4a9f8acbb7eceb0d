import Foundation
import TestSupport
import Testing
@testable import PackageFormat

/// User-space files of a package: what kind of ELF file each is, for which machine, and which
/// libraries it needs.
@Suite struct UserSpaceTests {
    static func summary(_ bytes: [UInt8], chunk: Int = 4096) -> UserSpaceELF? {
        var reader = UserSpaceELF.Reader()
        var offset = 0
        while offset < bytes.count {
            let end = min(bytes.count, offset + chunk)
            bytes[offset..<end].withUnsafeBytes { reader.feed($0) }
            offset = end
        }
        return reader.finish()
    }

    @Test func theExampleProgramNeedsLibbpfAndLibc() throws {
        let bytes = try Fixtures.bytes("exec-tracker/exec_tracker")
        for chunk in [1, 100, 4096, 65536] {
            let elf = try #require(Self.summary(bytes, chunk: chunk))
            #expect(elf.type == .sharedObject && elf.architecture == "x86_64" && elf.is64Bit && elf.littleEndian, "a PIE executable")
            #expect(elf.needed == ["libbpf.so.1", "libc.so.6"] && elf.interpreter == "/lib64/ld-linux-x86-64.so.2")
        }
        #expect(Self.summary(try Fixtures.bytes("exec-tracker/exec_tracker.bpf.o")) == nil, "BPF objects are not user-space files")
        #expect(Self.summary(Array("#!/bin/sh\n".utf8)) == nil)
    }

    @Test func packagesSayWhatTheirProgramsAreAndRefuseWrongOnes() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let report = try PackageInspector().inspect(path: try Fixtures.packageArchive("exec-tracker", into: directory))
        let dependencies = report.findings.filter { $0.check == "user-program.dependencies" }
        #expect(dependencies.map(\.message) == ["exec_tracker needs libbpf.so.1, libc.so.6 (interpreter /lib64/ld-linux-x86-64.so.2)"])

        // Declared for arm64, with a static build and a relocatable object beside it.
        let copy = directory.appendingPathComponent("wrong")
        try FileManager.default.copyItem(at: Fixtures.examples.appendingPathComponent("exec-tracker"), to: copy)
        let gcc = try #require(Fixtures.tool("gcc"))
        let source = directory.appendingPathComponent("hello.c")
        try "int main(void) { return 0; }\n".write(to: source, atomically: true, encoding: .utf8)
        var (status, output) = try Fixtures.run(gcc, ["-static", "-o", copy.appendingPathComponent("helper").path, source.path])
        try #require(status == 0, "\(output)")
        (status, output) = try Fixtures.run(gcc, ["-c", "-o", copy.appendingPathComponent("part.o").path, source.path])
        try #require(status == 0, "\(output)")
        let manifest = copy.appendingPathComponent("epr.toml")
        var text = try String(contentsOf: manifest, encoding: .utf8)
        text = text.replacingOccurrences(of: "architectures = [\"x86_64\"]", with: "architectures = [\"arm64\"]")
        text = text.replacingOccurrences(of: "files = [\"exec_tracker\"]", with: "files = [\"exec_tracker\", \"helper\", \"part.o\"]")
        try text.write(to: manifest, atomically: true, encoding: .utf8)
        let out = directory.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: out, withIntermediateDirectories: true)
        // `epr package` refuses it, with the findings the registry would report.
        var findings: [Finding] = []
        do { _ = try PackageBuilder().build(directory: copy, output: out, modificationTime: 0) } catch let failure as PackageBuilder.Failure {
            findings = failure.findings
        }
        let errors = findings.filter { $0.severity == .error }
        #expect(Set(errors.filter { $0.check == "user-program.architecture" }.compactMap(\.location)) == ["exec_tracker", "helper", "part.o"],
                "\(findings)")
        #expect(errors.contains { $0.check == "user-program.not-a-program" && $0.location == "part.o" })
        #expect(findings.contains { $0.check == "user-program.dependencies" && $0.message == "helper is statically linked" })
    }
}
