import Foundation
import PackageFormat
import TestSupport
import Testing
@testable import Checks

/// The kernel verifier in a virtual machine: the initramfs archive it is given, what is read
/// back from its console, and the verdicts of a real boot, the same as the host kernel's.
@Suite struct VerifierMachineTests {
    /// The archive as `cpio` itself lists and unpacks it.
    @Test func theObjectsArchiveIsOneCpioReads() throws {
        var archive = CPIOArchive()
        archive.directory("objects")
        archive.file("objects/0.o", contents: Array("first".utf8))
        archive.file("objects/1.o", contents: [UInt8](repeating: 7, count: 1001))
        archive.finish()
        #expect(archive.bytes.count % 4 == 0)
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("objects.cpio")
        try Data(archive.bytes).write(to: file)
        let (status, listing) = try Fixtures.run("/bin/sh", ["-c", "cd '\(directory.path)' && cpio -idv --quiet < objects.cpio"])
        #expect(status == 0, "\(listing)")
        #expect(listing.split(separator: "\n").map(String.init) == ["objects", "objects/0.o", "objects/1.o"])
        #expect(try Data(contentsOf: directory.appendingPathComponent("objects/0.o")) == Data("first".utf8))
        #expect(try Data(contentsOf: directory.appendingPathComponent("objects/1.o")).count == 1001)
    }

    /// Only framed lines count, whatever the kernel prints in between; an object without its
    /// end line has no exit.
    @Test func theConsoleIsReadByItsFrames() {
        let console = """
            [    0.000000] Linux version 6.12
            EPR-KERNEL 6.12.118+deb12-amd64
            EPR-BEGIN /objects/0.o
            EPR-E libbpf: prog 'a': BPF program load failed: Permission denied
            EPR-E
            noise EPR-E not framed
            EPR-END /objects/0.o 255 kernel -13
            EPR-BEGIN /objects/1.o
            EPR-O {"name":"b"}
            EPR-END /objects/1.o 0 loaded 0
            EPR-BEGIN /objects/2.o
            EPR-E half
            EPR-BEGIN /objects/9.o
            EPR-DONE

            """
        let run = VerifierMachine.parse(Array(console.utf8), objects: 3)
        #expect(run.kernel == "6.12.118+deb12-amd64" && run.finished)
        #expect(run.objects[0].exit == 255 && run.objects[0].stage == "kernel" && run.objects[0].errorLines.count == 2)
        #expect(run.objects[1].exit == 0 && run.objects[1].shown == [#"{"name":"b"}"#])
        #expect(run.objects[2].exit == nil && run.objects[2].errorLines == ["half"])
    }

    static func machine() throws -> VerifierMachine {
        try #require(VerifierMachine(directory: VerifierMachine.defaultDirectory),
                     "the verifier machine is not installed (scripts/install-verifier-vm.sh)")
    }

    static func check(_ archive: String) async throws -> CheckResult {
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let check = VerifierCheck(timeout: .seconds(180), machine: try machine())
        let report = try PackageInspector().inspect(path: archive)
        return try await Fixtures.blocking {
            try CheckSuite(verifier: check, sources: nil, scanners: []).run(VerifierCheck.id, archive: archive, report: report, scratch: scratch)
        }
    }

    /// Every example passes with the figures of the machine's kernel, one finding a program.
    @Test(arguments: Fixtures.examplePackages)
    func theMachineAcceptsTheExamples(example: String) async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let machine = try Self.machine()
        let archive = try Fixtures.packageArchive(example, into: directory)
        let accepted = try await Self.check(archive)
        #expect(accepted.outcome == .passed, "\(accepted.findings)")
        let programs = try PackageInspector().inspect(path: archive).objects.flatMap { $0.report?.programs.map(\.name) ?? [] }
        #expect(accepted.findings.filter { $0.check == "verifier.accepted" && $0.message.contains("instructions processed") }.count == programs.count,
                "\(accepted.findings)")
        #expect(accepted.details["kernel"] == machine.kernels[0].release)
        for program in programs {
            let line = (accepted.details["programs"] ?? "").split(separator: "\n").first { $0.contains(":\(program):") }
            #expect(line?.contains("processed_insns=") == true && line?.contains("bytes_xlated=") == true, "\(accepted.details)")
        }
    }

    /// A program without its bounds check is refused with the verifier's own words, as the
    /// host's kernel refuses it.
    @Test func aRefusalIsQuotedFromTheMachine() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }

        let refused = try await Self.check(try Fixtures.unverifiablePackage(into: directory))
        #expect(refused.outcome == .failed)
        let finding = try #require(refused.findings.first { $0.check == "verifier.rejected" })
        #expect(finding.message.contains("invalid access to packet") && finding.message.contains("outside of the packet"), "\(finding.message)")
    }

    /// A time limit too short for the machine to boot: the check says it did not run, and the
    /// machine is gone.
    @Test func aMachineOutOfTimeIsStopped() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let archive = try Fixtures.packageArchive("xdp-proto-counter", into: directory)
        let check = VerifierCheck(timeout: .milliseconds(300), machine: try Self.machine())
        let report = try PackageInspector().inspect(path: archive), scratch = directory.appendingPathComponent("s")
        // Timed on the thread that runs the check, whatever else keeps the machine busy.
        let (result, took) = try await Fixtures.blocking {
            let started = ContinuousClock.now
            let result = try CheckSuite(verifier: check, sources: nil, scanners: []).run(VerifierCheck.id, archive: archive, report: report,
                                                                                         scratch: scratch)
            return (result, ContinuousClock.now - started)
        }
        #expect(took < .seconds(10), "\(took)")
        // No qemu of this check is left.
        let processes = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        let left = processes.filter { pid in
            Int(pid) != nil && ((try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8)) ?? "").contains(scratch.path)
        }
        #expect(left.isEmpty, "\(left)")
        #expect(result.outcome == .notRun && result.findings.contains { $0.check == "verifier.not-run" && $0.message.contains("did not finish") },
                "\(result.findings)")
    }

    /// Without a machine, and without the operator's leave to use the host's kernel, nothing
    /// is loaded anywhere.
    @Test func withoutAMachineTheHostIsNotUsed() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let archive = try Fixtures.packageArchive("xdp-proto-counter", into: directory)
        let result = try CheckSuite(verifier: VerifierCheck(machine: nil), sources: nil, scanners: []).run(
            VerifierCheck.id, archive: archive, report: PackageInspector().inspect(path: archive), scratch: directory.appendingPathComponent("s"))
        #expect(result.outcome == .notRun && result.findings.first?.message.contains("install-verifier-vm.sh") == true, "\(result.findings)")
    }
}
