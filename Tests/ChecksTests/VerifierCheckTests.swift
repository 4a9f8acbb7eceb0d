import Foundation
import PackageFormat
import TestSupport
import Testing
@testable import Checks

/// The kernel verifier check against the running kernel (an operator's choice, `verifier =
/// "host"`): a package whose programs the kernel accepts, and one it refuses, quoted in the
/// kernel's own words.
@Suite(.serialized) struct VerifierCheckTests {
    static func check(_ archive: String) throws -> CheckResult {
        let report = try PackageInspector().inspect(path: archive)
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        return try CheckSuite(verifier: VerifierCheck(timeout: .seconds(120), machine: nil, allowHost: true), scanners: []).run(VerifierCheck.id, archive: archive,
                                                                                                 report: report, scratch: scratch)
    }

    @Test func toolsAreFoundOnThePath() throws {
        #expect(ChildProcess.find("ls", path: "/nonexistent:/bin") == "/bin/ls")
        #expect(ChildProcess.find("no-such-command-here", path: "/bin") == nil)
        #expect(ChildProcess.find("bpftool", path: VerifierCheck().searchPath) != nil, "bpftool is not installed (scripts/install-bpf-toolchain.sh installs it)")
    }

    @Test(arguments: Fixtures.examplePackages)
    func theKernelAcceptsTheExamples(example: String) throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let result = try Self.check(Fixtures.packageArchive(example, into: directory))
        #expect(result.outcome == .passed, "\(result.findings)")
        let report = try PackageInspector().inspect(path: Fixtures.packageArchive(example, into: directory))
        let programs = report.objects.flatMap { $0.report?.programs.map(\.name) ?? [] }
        let accepted = result.findings.filter { $0.check == "verifier.accepted" }
        #expect(accepted.count == programs.count, "one finding per program: \(result.findings)")
        // The kernel's own figures are recorded for each program.
        let figures = result.details["programs"] ?? ""
        for program in programs {
            let line = figures.split(separator: "\n").first { $0.contains(":\(program):") }
            #expect(line?.contains("processed_insns=") == true && line?.contains("bytes_xlated=") == true, "\(figures)")
        }
        // Nothing outlives the check: no program of the package is left in the kernel.
        let (status, shown) = try Fixtures.run(ChildProcess.find("bpftool", path: VerifierCheck().searchPath)!, ["-j", "prog", "show"])
        #expect(status == 0)
        for program in programs { #expect(!shown.contains("\"name\":\"\(String(program.prefix(15)))\""), "\(program) is still loaded") }
    }

    @Test func aProgramTheKernelRefusesIsQuoted() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let archive = try Fixtures.unverifiablePackage(into: directory)
        #expect(try PackageInspector().inspect(path: archive).isValid, "the package itself is valid")
        let result = try Self.check(archive)
        #expect(result.outcome == .failed)
        let refusal = try #require(result.findings.first { $0.check == "verifier.rejected" })
        #expect(refusal.severity == .error && refusal.location == "proto_counter.bpf.o:xdp_proto_counter")
        #expect(refusal.message.contains("invalid access to packet"), "the verifier's own words: \(refusal.message)")
        #expect(result.details["log:proto_counter.bpf.o:xdp_proto_counter"]?.contains("invalid access to packet") == true)
    }

    @Test func withoutToolsTheCheckSaysNotRun() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let archive = try Fixtures.packageArchive("xdp-port-filter", into: directory)
        let report = try PackageInspector().inspect(path: archive)
        let unpacked = try PackageUnpacker.unpack(archive: archive, into: directory)
        let result = VerifierCheck(searchPath: "/nonexistent", machine: nil, allowHost: true).run(package: unpacked, report: report)
        #expect(result.outcome == .notRun)
        #expect(result.findings.map(\.check) == ["verifier.not-run"] && result.findings[0].severity == .warning)
    }

    @Test func theLogReaderKeepsFiguresAndTheComplaint() {
        var log = VerifierLog()
        for line in """
            libbpf: prog 'xdp_a': BPF program load failed: Permission denied
            libbpf: prog 'xdp_a': -- BEGIN PROG LOAD LOG --
            0: R1=ctx() R10=fp0
            ; unsigned char *data = (unsigned char *)(long)ctx->data; @ bad.bpf.c:4
            0: (61) r1 = *(u32 *)(r1 +0)          ; R1=pkt(r=0)
            1: (71) r0 = *(u8 *)(r1 +40)
            invalid access to packet, off=40 size=1, R1(id=0,off=40,r=0)
            R1 offset is outside of the packet
            verification time 12 usec
            stack depth 0+16
            processed 2 insns (limit 1000000) max_states_per_insn 0 total_states 3 peak_states 4 mark_read 0
            -- END PROG LOAD LOG --
            libbpf: prog 'xdp_a': failed to load: -13
            Error: failed to load object file
            """.split(separator: "\n", omittingEmptySubsequences: false) {
            log.consume(line)
        }
        let program = try? #require(log.programs.first)
        #expect(program?.name == "xdp_a" && program?.failure == "Permission denied")
        #expect(program?.processedInstructions == 2 && program?.totalStates == 3 && program?.peakStates == 4)
        #expect(program?.verificationMicroseconds == 12 && program?.stackDepth == "0+16")
        #expect(VerifierLog.complaint(program?.tail ?? []) == "invalid access to packet, off=40 size=1, R1(id=0,off=40,r=0)\nR1 offset is outside of the packet")
        #expect(log.other.last == "Error: failed to load object file")
    }
}

/// External scanners: the cppcheck scanner shipped in scanners/, and scanners that fail.
@Suite struct ExternalScannerTests {
    static let cppcheck = ExternalScanner(name: "cppcheck", command: ["python3", Fixtures.root.appendingPathComponent("scanners/cppcheck-scanner.py").path],
                                          timeout: .seconds(240))

    static func scan(_ scanner: ExternalScanner, _ archive: String) throws -> CheckResult {
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        return try CheckSuite(verifier: nil, scanners: [scanner]).run(scanner.id, archive: archive, report: PackageInspector().inspect(path: archive),
                                                                     scratch: scratch)
    }

    /// xdp-proto-counter with a C source that reads past an array and an uninitialised variable.
    static func packageWithBadSource(into directory: URL) throws -> String {
        let copy = directory.appendingPathComponent("bad-source")
        try FileManager.default.copyItem(at: Fixtures.examples.appendingPathComponent("xdp-proto-counter"), to: copy)
        try "int f(int i) { int a[4]; a[4] = i; return a[0]; }\nint g(void) { int x; return x; }\n"
            .write(to: copy.appendingPathComponent("src/oops.bpf.c"), atomically: true, encoding: .utf8)
        let output = directory.appendingPathComponent("out-bad-source")
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        return try PackageBuilder().build(directory: copy, output: output, modificationTime: 0).path
    }

    @Test func cppcheckPassesTheExampleAndCatchesABadSource() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let clean = try Self.scan(Self.cppcheck, Fixtures.packageArchive("xdp-proto-counter", into: directory))
        #expect(clean.errors == 0 && clean.outcome == .passed, "\(clean.findings)")
        let bad = try Self.scan(Self.cppcheck, Self.packageWithBadSource(into: directory))
        #expect(bad.outcome == .failed)
        let checks = Set(bad.findings.filter { $0.severity == .error }.map(\.check))
        #expect(checks.contains("scanner.cppcheck.arrayIndexOutOfBounds") && checks.contains("scanner.cppcheck.uninitvar"), "\(bad.findings)")
        #expect(bad.findings.contains { $0.location == "src/oops.bpf.c:1" })
    }

    @Test func aScannerThatFailsOrSaysNothingUsableIsAFailureToScan() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let archive = try Fixtures.packageArchive("xdp-port-filter", into: directory)
        for (command, expected) in [(["sh", "-c", "exit 5"], "exit 5"), (["sh", "-c", "echo not json"], "no findings document"),
                                    (["no-such-scanner-installed"], "not installed")] {
            #expect(throws: ExternalScanner.Failure.self) { try Self.scan(ExternalScanner(name: "x", command: command), archive) }
            do { _ = try Self.scan(ExternalScanner(name: "x", command: command), archive) } catch {
                #expect("\(error)".contains(expected), "\(error)")
            }
        }
        let slow = ExternalScanner(name: "slow", command: ["sh", "-c", "sleep 30"], timeout: .milliseconds(300))
        let started = ContinuousClock.now
        #expect(throws: ExternalScanner.Failure.self) { try Self.scan(slow, archive) }
        #expect(ContinuousClock.now - started < .seconds(10), "the time limit stops it")
        // The package directory is the last argument, and in the environment.
        let echo = ExternalScanner(name: "echo", command: ["sh", "-c", #"test -f "$0/epr.toml" && test "$0" = "$EPR_PACKAGE_DIR" && echo '{"findings": [{"severity": "warning", "message": "seen"}]}'"#])
        let seen = try Self.scan(echo, archive)
        #expect(seen.findings == [Finding(.warning, "scanner.echo", "seen")] && seen.outcome == .warnings)
    }
}
