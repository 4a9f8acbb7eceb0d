import BPFObject
import Foundation
import PackageFormat
import TestSupport
import Testing

/// The `epr` executable end to end: `epr package` and `epr inspect`, in text and JSON.
@Suite struct CommandLineTests {
    static var epr: String { Fixtures.eprBinary }

    func epr(_ arguments: String...) throws -> (status: Int32, output: String) {
        try Fixtures.run(Self.epr, arguments)
    }

    @Test func packageThenInspectAsJSON() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (status, output) = try epr("package", Fixtures.examples.appendingPathComponent("exec-tracker").path, "-o", directory.path, "--json")
        try #require(status == 0, "\(output)")
        let archive = directory.appendingPathComponent("exec_tracker.tar.gz").path
        #expect(FileManager.default.fileExists(atPath: archive))
        #expect(output.contains(SHA256Digest(of: Array(try Data(contentsOf: URL(fileURLWithPath: archive)))).description))

        let (inspectStatus, json) = try epr("inspect", archive, "--json")
        try #require(inspectStatus == 0, "\(json)")
        let report = try JSONDecoder().decode(PackageReport.self, from: Data(json.utf8))
        #expect(report.manifest?.name.value == "exec-tracker")
        #expect(report.objects.first?.report?.programs.map(\.name) == ["handle_exec", "handle_exit"])
        #expect(!report.findings.hasErrors)

        let (textStatus, text) = try epr("inspect", archive)
        #expect(textStatus == 0)
        #expect(text.contains("package exec-tracker 1.0.0"))
        #expect(text.contains("handle_exec  tracepoint"))
    }

    @Test func inspectAnObject() throws {
        let object = Fixtures.examples.appendingPathComponent("xdp-port-filter/port_filter.bpf.o").path
        let (status, json) = try epr("inspect", object, "--json")
        try #require(status == 0, "\(json)")
        let report = try JSONDecoder().decode(ObjectReport.self, from: Data(json.utf8))
        #expect(report == (try BPFObjectInspector().inspect(Fixtures.bytes("xdp-port-filter/port_filter.bpf.o"))))
        let (_, text) = try epr("inspect", object)
        #expect(text.contains("xdp_pf_next_prog  prog_array"))
        #expect(text.contains("tail calls: 1 through xdp_pf_next_prog"))
    }

    @Test func refusalsExitNonZeroWithTheirCode() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let elf = directory.appendingPathComponent("x86.o")
        var bytes = try Fixtures.bytes("xdp-port-filter/port_filter.bpf.o")
        bytes[18] = 62 // EM_X86_64
        try Data(bytes).write(to: elf)
        let (status, json) = try epr("inspect", elf.path, "--json")
        #expect(status == 1)
        #expect(json.contains("\"error\" : \"not-bpf-machine\""))

        let text = directory.appendingPathComponent("notes.tar.gz")
        try Data("not an archive".utf8).write(to: text)
        let (textStatus, message) = try epr("inspect", text.path)
        #expect(textStatus == 1)
        #expect(message.contains("archive-not-gzip"))
    }

    @Test func invalidPackagesAreNotWritten() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        try Data("[package]\nname = \"Bad Name\"\n".utf8).write(to: directory.appendingPathComponent("epr.toml"))
        let (status, output) = try epr("package", directory.path, "-o", directory.path)
        #expect(status == 1)
        #expect(output.contains("package.name"))
        #expect(output.contains("the package was not written"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["epr.toml"])
    }
}
