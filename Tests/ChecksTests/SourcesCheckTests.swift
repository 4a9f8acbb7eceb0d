import Foundation
import PackageFormat
import TestSupport
import Testing
@testable import Checks

/// The sources check: complexity and repeats read from the text, compiler warnings from clang,
/// the layout from clang-format.
@Suite struct SourcesCheckTests {
    @Test func analysisCountsDecisionsAndFindsRepeats() {
        let text = """
            #include <linux/bpf.h>
            #define MAX(a, b) ((a) > (b) ? (a) : (b))
            /* if while for: not counted in comments */
            struct { int x; } counters SEC(".maps");
            static int pick(int a, int b)
            {
                const char *s = "if (a && b)";
                if (a > 0 && b > 0)
                    return a;
                for (int i = 0; i < 4; i++) { if (i == b || i == a) return i; }
                switch (a) { case 1: return 1; case 2: return 2; }
                return a ? b : 0;
            }
            SEC("xdp") int entry(struct xdp_md *ctx)
            {
                return pick(1, 2);
            }
            """
        let functions = SourceAnalysis.functions(text)
        #expect(functions.map(\.name) == ["pick", "entry"])
        // 1 + if + && + for + if + || + case + case + ?
        #expect(functions.first?.complexity == 9 && functions.first?.line == 6)
        #expect(functions.last?.complexity == 1 && functions.last?.line == 15)

        let block = (1...10).map { "\tvalue += table[\($0)];" }.joined(separator: "\n")
        let a = "int f(void)\n{\n\(block)\n\treturn 0;\n}\n", b = "int g(void)\n{\n\tint z = 1;\n\(block)\n\treturn 1;\n}\n"
        let repeats = SourceAnalysis.repeats([("a.c", a), ("b.c", b)], minimum: 10)
        #expect(repeats.count == 1)
        #expect(repeats.first?.first.file == "a.c" && repeats.first?.first.line == 3)
        #expect(repeats.first?.second.file == "b.c" && repeats.first?.second.line == 4 && repeats.first?.lines == 10)
        #expect(SourceAnalysis.repeats([("a.c", a), ("b.c", b)], minimum: 11).isEmpty)
    }

    static func check(_ archive: String) async throws -> CheckResult {
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let report = try PackageInspector().inspect(path: archive)
        return try await Fixtures.blocking {
            try CheckSuite(verifier: nil, sources: SourcesCheck(), scanners: []).run(SourcesCheck.id, archive: archive, report: report, scratch: scratch)
        }
    }

    @Test func theExampleSourcesPass() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let result = try await Self.check(try Fixtures.packageArchive("xdp-proto-counter", into: directory))
        #expect(result.outcome == .passed, "\(result.findings)")
        #expect(result.details["functions"]?.contains("src/proto_counter.bpf.c:") == true)
        #expect(result.details["functions"]?.contains("xdp_proto_counter complexity=") == true)
    }

    @Test func warningsLayoutComplexityAndRepeatsAreFound() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let copy = directory.appendingPathComponent("messy")
        try FileManager.default.copyItem(at: Fixtures.examples.appendingPathComponent("xdp-proto-counter"), to: copy)
        let branches = (1...31).map { "\tif (x == \($0))\n\t\treturn \($0);" }.joined(separator: "\n")
        let block = (1...10).map { "\tsum += table[\($0)];" }.joined(separator: "\n")
        let source = """
            static int table[16];

            int branchy(int x)
            {
            \(branches)
            \treturn 0;
            }

            int first(void)
            {
            \tint sum = 0;
            \(block)
            \treturn sum;
            }

            int second(void)
            {
            \tint sum = 1;
            \(block)
            \treturn sum;
            }

            int careless(int x)
            {
            \tint unused;
                    return x;
            }

            """
        try source.write(to: copy.appendingPathComponent("src/messy.bpf.c"), atomically: true, encoding: .utf8)
        let output = directory.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let archive = try PackageBuilder().build(directory: copy, output: output, modificationTime: 0).path
        let result = try await Self.check(archive)
        let checks = Set(result.findings.filter { $0.severity == .warning }.map(\.check))
        #expect(checks == ["sources.complexity", "sources.duplication", "sources.compiler-warning", "sources.format"], "\(result.findings)")
        #expect(result.findings.contains { $0.check == "sources.complexity" && $0.location == "src/messy.bpf.c:4" && $0.message.contains("32") })
        #expect(result.findings.contains { $0.check == "sources.compiler-warning" && $0.message.contains("unused variable 'unused'") })
        #expect(result.findings.contains { $0.check == "sources.format" && $0.location?.hasPrefix("src/messy.bpf.c:") == true })
        #expect(result.outcome == .warnings)
    }

    /// A package whose sources try to read a host file into the compiler's messages, or learn
    /// whether it exists: a secret beside the check's scratch directory (where the registry
    /// keeps its admin token), by a relative and an absolute include, `__has_include`, and the
    /// assembler's `.incbin`. Without the sandbox the same sources reveal it, so the probe
    /// works; inside, no finding or detail names it.
    @Test func hostFilesAndTheirExistenceStayHidden() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let marker = "eprsecret_\(UInt64.random(in: 1...UInt64.max))"
        let secret = directory.appendingPathComponent("admin-token")
        try marker.write(to: secret, atomically: true, encoding: .utf8)
        let copy = directory.appendingPathComponent("probe")
        try FileManager.default.copyItem(at: Fixtures.examples.appendingPathComponent("xdp-proto-counter"), to: copy)
        let source = Fixtures.hostFileProbe(relative: "../../../../admin-token", absolute: secret.path, exists: [
            (secret.path, "ABSOLUTE-EXISTS"), ("../../../../admin-token", "RELATIVE-EXISTS"), ("/etc/hostname", "HOST-ETC-EXISTS"),
            ("/proc/1/environ", "HOST-ETC-EXISTS"),
        ])
        try source.write(to: copy.appendingPathComponent("src/probe.bpf.c"), atomically: true, encoding: .utf8)
        let output = directory.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let archive = try PackageBuilder().build(directory: copy, output: output, modificationTime: 0).path
        let report = try PackageInspector().inspect(path: archive)

        func run(_ check: SourcesCheck) async throws -> String {
            // The scratch directory sits where the registry's does: beside the secret.
            let scratch = directory.appendingPathComponent("checks")
            let result = try await Fixtures.blocking {
                try CheckSuite(verifier: nil, sources: check, scanners: []).run(SourcesCheck.id, archive: archive, report: report, scratch: scratch)
            }
            return result.findings.map(\.description).joined(separator: "\n") + "\n" + result.details.values.joined(separator: "\n")
        }
        var open = SourcesCheck(sandbox: nil, allowUnsandboxed: true)
        open.timeout = .seconds(120)
        let revealed = try await run(open)
        #expect(revealed.contains(marker) && revealed.contains("ABSOLUTE-EXISTS") && revealed.contains("RELATIVE-EXISTS"),
                "the probe must work without the sandbox: \(revealed)")

        let sandboxed = try #require(SourcesCheck.defaultSandbox(), "bubblewrap and prlimit must be installed")
        let hidden = try await run(SourcesCheck(sandbox: sandboxed))
        #expect(!hidden.contains(marker), "\(hidden)")
        for word in ["ABSOLUTE-EXISTS", "RELATIVE-EXISTS", "HOST-ETC-EXISTS"] { #expect(!hidden.contains(word), "\(word): \(hidden)") }
        #expect(!hidden.contains(directory.appendingPathComponent("checks").path), "the scratch directory's path is not shown either: \(hidden)")
        #expect(hidden.contains("sources.not-compiled") && hidden.contains("src/probe.bpf.c"), "\(hidden)")

        // Without bubblewrap, the registry's check runs no tool at all.
        let refused = try await run(SourcesCheck(sandbox: nil))
        #expect(refused.contains("sources.not-run") && refused.contains("bubblewrap") && !refused.contains(marker))
    }

    /// Forty lines of macros that double at each step would grow clang to gigabytes: the
    /// sandbox's memory limit stops it and the check says it did not run.
    @Test func aCompilerOutOfMemoryIsStoppedAndReported() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let copy = directory.appendingPathComponent("bomb")
        try FileManager.default.copyItem(at: Fixtures.examples.appendingPathComponent("xdp-proto-counter"), to: copy)
        var lines = ["#define M0 1,"]
        for level in 1...36 { lines.append("#define M\(level) M\(level - 1) M\(level - 1)") }
        lines.append("int table[] = { M36 };")
        try (lines.joined(separator: "\n") + "\n").write(to: copy.appendingPathComponent("src/bomb.bpf.c"), atomically: true, encoding: .utf8)
        let output = directory.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let archive = try PackageBuilder().build(directory: copy, output: output, modificationTime: 0).path
        var sandbox = try #require(SourcesCheck.defaultSandbox())
        sandbox.memoryBytes = 768 << 20
        var check = SourcesCheck(sandbox: sandbox)
        check.timeout = .seconds(240)
        let report = try PackageInspector().inspect(path: archive), scratch = directory.appendingPathComponent("checks"), limited = check
        let result = try await Fixtures.blocking {
            try CheckSuite(verifier: nil, sources: limited, scanners: []).run(SourcesCheck.id, archive: archive, report: report, scratch: scratch)
        }
        let stopped = result.findings.filter { $0.check == "sources.not-run" && $0.location == "src/bomb.bpf.c" }
        #expect(stopped.count == 1 && stopped[0].message.contains("memory"), "\(result.findings)")
        #expect(result.outcome == .notRun)
    }
}
