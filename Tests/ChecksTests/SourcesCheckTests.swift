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

    static func check(_ archive: String) throws -> CheckResult {
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        return try CheckSuite(verifier: nil, sources: SourcesCheck(), scanners: []).run(SourcesCheck.id, archive: archive,
                                                                                       report: PackageInspector().inspect(path: archive), scratch: scratch)
    }

    @Test func theExampleSourcesPass() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let result = try Self.check(try Fixtures.packageArchive("xdp-proto-counter", into: directory))
        #expect(result.outcome == .passed, "\(result.findings)")
        #expect(result.details["functions"]?.contains("src/proto_counter.bpf.c:") == true)
        #expect(result.details["functions"]?.contains("xdp_proto_counter complexity=") == true)
    }

    @Test func warningsLayoutComplexityAndRepeatsAreFound() throws {
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
        let result = try Self.check(archive)
        let checks = Set(result.findings.filter { $0.severity == .warning }.map(\.check))
        #expect(checks == ["sources.complexity", "sources.duplication", "sources.compiler-warning", "sources.format"], "\(result.findings)")
        #expect(result.findings.contains { $0.check == "sources.complexity" && $0.location == "src/messy.bpf.c:4" && $0.message.contains("32") })
        #expect(result.findings.contains { $0.check == "sources.compiler-warning" && $0.message.contains("unused variable 'unused'") })
        #expect(result.findings.contains { $0.check == "sources.format" && $0.location?.hasPrefix("src/messy.bpf.c:") == true })
        #expect(result.outcome == .warnings)
    }
}
