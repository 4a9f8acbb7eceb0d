import AsyncHTTPClient
import Foundation
import PackageFormat
import TestSupport
import Testing

/// Builds from source: a submission of sources waits for a build worker (`epr worker`, a process
/// of its own), which builds it in its sandbox; the log is readable through the API and the
/// CLI, and the built package goes through the checks like any other. With `rebuild_sources`,
/// packages that carry objects are rebuilt and compared.
@Suite(.serialized) struct BuildWorkerTests {
    struct Detail: Decodable {
        struct Summary: Decodable { var id: String; var state: String; var sha256: String }
        struct Check: Decodable {
            struct Finding: Decodable { var check: String; var severity: String; var message: String }
            var check: String; var state: String; var outcome: String?; var findings: [Finding]; var details: [String: String]
        }
        var submission: Summary
        var checks: [Check]
    }

    static func cli(_ server: ServerProcess, _ arguments: [String]) async throws -> (status: Int32, output: String) {
        let url = server.baseURL
        return try await Fixtures.blocking { try Fixtures.run("/usr/bin/env", ["EPR_REGISTRY=\(url)", "EPR_TOKEN=\(ServerProcess.token)", Fixtures.eprBinary] + arguments) }
    }

    /// `epr worker`, as the unprivileged user when the tests run as root, like the server.
    static func worker(_ server: ServerProcess, _ arguments: [String]) async throws -> (status: Int32, output: String) {
        let url = server.baseURL
        return try await Fixtures.blocking {
            try Fixtures.run("/usr/bin/env", ["EPR_REGISTRY=\(url)", "EPR_TOKEN=\(ServerProcess.token)", "HOME=/tmp"]
                             + (Fixtures.serverUser?.prefix ?? []) + [Fixtures.eprBinary, "worker"] + arguments)
        }
    }

    static func detail(_ server: ServerProcess, _ id: String) async throws -> Detail {
        try JSONDecoder().decode(Detail.self, from: Data(try await server.get("/api/v1/submissions/\(id)", token: ServerProcess.token).body))
    }

    /// An example as a package of sources (its objects left out), or whole after `epr build`.
    static func archive(_ example: String, in scratch: URL, sourcesOnly: Bool, edit: ((URL) throws -> Void)? = nil) throws -> String {
        let directory = try Self.sourcesOnly(example, in: scratch)
        try edit?(directory)
        let output = scratch.appendingPathComponent("out-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let (status, log) = try Fixtures.run(Fixtures.eprBinary, sourcesOnly ? ["package", "--sources-only", directory.path, "-o", output.path]
                                                                    : ["build", directory.path, "-o", output.path])
        try #require(status == 0, "\(log)")
        return try FileManager.default.contentsOfDirectory(atPath: output.path).first.map { output.appendingPathComponent($0).path }!
    }

    /// A copy of an example without its built objects and program.
    static func sourcesOnly(_ example: String, in scratch: URL) throws -> URL {
        let directory = scratch.appendingPathComponent("\(example)-\(UUID().uuidString)")
        try FileManager.default.copyItem(at: Fixtures.examples.appendingPathComponent(example), to: directory)
        let manifest = try Manifest.parse(try String(contentsOf: directory.appendingPathComponent("epr.toml"), encoding: .utf8)).manifest
        for built in PackageBuilder.builtFiles(manifest) { try? FileManager.default.removeItem(at: directory.appendingPathComponent(built)) }
        return directory
    }

    static func publish(_ server: ServerProcess, _ archive: String) async throws -> String {
        let (status, output) = try await cli(server, ["publish", archive, "--json"])
        try #require(status == 0, "\(output)")
        struct Body: Decodable { struct S: Decodable { var id: String }; var submission: S }
        return try JSONDecoder().decode(Body.self, from: Data(output.utf8)).submission.id
    }

    @Test func aSubmissionOfSourcesIsBuiltByAWorker() async throws {
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let server = try ServerProcess(data: scratch.appendingPathComponent("data"), environment: ["EPR_VERIFIER": "machine"])
        defer { server.stop() }
        let archive = try Self.archive("xdp-proto-counter", in: scratch, sourcesOnly: true)
        let report = try PackageInspector().inspect(path: archive)
        #expect(!report.files.contains { $0.path == "proto_counter.bpf.o" }, "the archive carries sources only")
        #expect(report.findings.contains { $0.check == "build.from-sources" })
        let id = try await Self.publish(server, archive)

        // Nothing else runs before the build: the verifier waits.
        try await Task.sleep(for: .seconds(2))
        var detail = try await Self.detail(server, id)
        #expect(detail.checks.first { $0.check == "build" }?.state == "queued")
        #expect(detail.checks.first { $0.check == "verifier" }?.state == "queued")
        #expect(["submitted", "checking"].contains(detail.submission.state))

        let (status, output) = try await Self.worker(server, ["--once", "--step-timeout", "120"])
        #expect(status == 0, "\(output)")
        #expect(output.contains("built -> passed"), "\(output)")
        try await server.waitForChecks()

        detail = try await Self.detail(server, id)
        #expect(detail.submission.state == "published", "\(detail.submission)")
        let build = try #require(detail.checks.first { $0.check == "build" })
        #expect(build.findings.contains { $0.check == "build.built" })
        #expect(build.details["log"]?.contains("-target bpf") == true)
        #expect(detail.checks.first { $0.check == "verifier" }?.outcome == "passed", "the kernel verifier checked the built object")
        #expect(detail.submission.sha256 != SHA256Digest(of: Array(try Data(contentsOf: URL(fileURLWithPath: archive)))).description)

        // The log through the CLI.
        let (logStatus, log) = try await Self.cli(server, ["submissions", "log", id])
        #expect(logStatus == 0 && log.contains("build: done, passed") && log.contains("$ clang"), "\(log)")

        // What is published is the built package, with its object.
        let download = try await server.get("/api/v1/packages/xdp-proto-counter/versions/1.0.0/download")
        #expect(download.status == 200)
        let published = scratch.appendingPathComponent("published.tar.gz")
        try Data(download.body).write(to: published)
        let publishedReport = try PackageInspector().inspect(path: published.path)
        #expect(publishedReport.isValid && publishedReport.files.contains { $0.path == "proto_counter.bpf.o" })
        #expect(publishedReport.sha256.description == detail.submission.sha256)
    }

    /// With no check workers of its own (check_workers = 0), the server leaves check jobs to
    /// `epr worker --jobs check` elsewhere, whose results give the verdicts the server's own give.
    @Test func checkJobsAreTakenByWorkersElsewhere() async throws {
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let server = try ServerProcess(data: scratch.appendingPathComponent("data"),
                                       environment: ["EPR_VERIFIER": "machine", "EPR_CHECK_WORKERS": "0"])
        defer { server.stop() }
        let archive = try Self.archive("xdp-proto-counter", in: scratch, sourcesOnly: false)
        let id = try await Self.publish(server, archive)
        try await Task.sleep(for: .seconds(2))
        var detail = try await Self.detail(server, id)
        #expect(detail.checks.filter { $0.check != "inspection" }.allSatisfy { $0.state == "queued" }, "the server runs none itself")

        // A stale attempt's result is refused, and changes nothing.
        var stale = HTTPClientRequest(url: server.baseURL + "/api/v1/checks/1/result")
        stale.method = .POST
        stale.headers.add(name: "Authorization", value: "Bearer \(ServerProcess.token)")
        stale.headers.add(name: "Content-Type", value: "application/json")
        stale.body = .bytes(Data(#"{"submission": "\#(id)", "attempt": 7, "result": {"outcome": "passed", "findings": [], "details": {}}}"#.utf8))
        let refused = try await HTTPClient.shared.execute(stale, timeout: .seconds(30))
        #expect([404, 409].contains(refused.status.code), "\(refused.status)")

        var outputs: [String] = []
        for _ in 0..<3 {
            let (status, output) = try await Self.worker(server, ["--jobs", "check", "--once"])
            #expect(status == 0, "\(output)")
            outputs.append(output)
        }
        #expect(outputs[0].contains("verifier -> passed") && outputs[1].contains("sources -> "), "\(outputs)")
        #expect(outputs[2].contains("no job"), "\(outputs)")
        try await server.waitForChecks()
        detail = try await Self.detail(server, id)
        #expect(detail.submission.state == "published", "\(detail.submission)")
        let verifier = try #require(detail.checks.first { $0.check == "verifier" })
        #expect(verifier.outcome == "passed" && verifier.details["programs"]?.contains("processed_insns") == true, "\(verifier)")
        #expect(detail.checks.allSatisfy { $0.state == "done" })
    }

    @Test func aBrokenBuildIsAFindingWithItsLog() async throws {
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let server = try ServerProcess(data: scratch.appendingPathComponent("data"))
        defer { server.stop() }
        let archive = try Self.archive("xdp-proto-counter", in: scratch, sourcesOnly: true) { directory in
            let source = directory.appendingPathComponent("src/proto_counter.bpf.c")
            try (try String(contentsOf: source, encoding: .utf8) + "\nthis does not compile;\n").write(to: source, atomically: true, encoding: .utf8)
        }
        let id = try await Self.publish(server, archive)
        let (status, output) = try await Self.worker(server, ["--once"])
        #expect(status == 0 && output.contains("failed -> failed"), "\(output)")
        try await server.waitForChecks()
        let detail = try await Self.detail(server, id)
        #expect(detail.submission.state != "published")
        let build = try #require(detail.checks.first { $0.check == "build" })
        #expect(build.findings.contains { $0.check == "build.failed" && $0.severity == "error" && $0.message.contains("clang") })
        #expect(build.details["log"]?.contains("error:") == true, "the compiler's words are in the log")
        #expect(try await server.get("/api/v1/packages/xdp-proto-counter/versions/1.0.0").status == 404)
    }

    @Test func rebuiltObjectsAreComparedWithTheUploadedOnes() async throws {
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let server = try ServerProcess(data: scratch.appendingPathComponent("data"), environment: ["EPR_REBUILD_SOURCES": "true"])
        defer { server.stop() }
        // Built here from its sources: the worker rebuilds the same bytes.
        let faithful = try await Self.publish(server, try Self.archive("xdp-proto-counter", in: scratch, sourcesOnly: false))
        // An object built from other sources than those packaged.
        let directory = try Self.sourcesOnly("xdp-proto-counter", in: scratch)
        let source = directory.appendingPathComponent("src/proto_counter.bpf.c")
        let original = try String(contentsOf: source, encoding: .utf8)
        try (original + "\nstatic __attribute__((used)) int extra_unused_symbol;\n").write(to: source, atomically: true, encoding: .utf8)
        var (status, log) = try Fixtures.run(Fixtures.eprBinary, ["build", directory.path, "-o", scratch.path])
        try #require(status == 0, "\(log)")
        try original.write(to: source, atomically: true, encoding: .utf8)
        let manifest = directory.appendingPathComponent("epr.toml")
        try (try String(contentsOf: manifest, encoding: .utf8)).replacingOccurrences(of: #"version = "1.0.0""#, with: #"version = "1.0.1""#)
            .write(to: manifest, atomically: true, encoding: .utf8)
        let output = scratch.appendingPathComponent("altered")
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        (status, log) = try Fixtures.run(Fixtures.eprBinary, ["package", directory.path, "-o", output.path])
        try #require(status == 0, "\(log)")
        let altered = try await Self.publish(server, output.appendingPathComponent("xdp_proto_counter.tar.gz").path)
        for _ in 0..<2 {
            let (status, output) = try await Self.worker(server, ["--once"])
            #expect(status == 0, "\(output)")
        }
        try await server.waitForChecks()
        let good = try await Self.detail(server, faithful)
        #expect(good.checks.first { $0.check == "build" }?.findings.contains { $0.check == "build.reproduced" } == true, "\(good.checks)")
        #expect(good.submission.state == "published")
        let bad = try await Self.detail(server, altered)
        // Another compiler or kernel BTF may change the bytes with nothing wrong: a reviewer
        // decides, acknowledging the mismatch; it is never published without one.
        #expect(bad.checks.first { $0.check == "build" }?.findings.contains { $0.check == "build.mismatch" && $0.severity == "warning" } == true,
                "\(bad.checks)")
        #expect(bad.submission.state == "awaiting-review")
    }
}
