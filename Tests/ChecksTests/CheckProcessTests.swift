import Foundation
import PackageFormat
import TestSupport
import Testing
@testable import Checks

/// A check job runs in a worker process: without a sandbox the registry runs none, and a
/// worker that fails or answers nonsense is a failure to run, never a result.
@Suite struct CheckProcessTests {
    static func task(_ check: String, scratch: URL) throws -> (CheckTask, String) {
        let archive = try Fixtures.packageArchive("xdp-proto-counter", into: scratch)
        let report = try PackageInspector().inspect(path: archive)
        let settings = CheckSettings(verifier: nil, sources: nil,
                                     scanners: [.init(name: "echo", command: ["/bin/sh", "-c", "echo '{\"findings\": []}'"], timeout: 30)])
        return (CheckTask(check: check, report: report, settings: settings), archive)
    }

    @Test func withoutASandboxNothingRuns() throws {
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let (task, archive) = try Self.task("scanner.echo", scratch: scratch)
        let process = CheckProcess(executable: Fixtures.eprBinary, sandbox: nil)
        let result = try process.run(task, archive: archive, scratch: scratch.appendingPathComponent("work"))
        #expect(result.outcome == .notRun)
        #expect(result.findings.map(\.check) == ["scanner.echo.not-run"])
        #expect(result.findings.first?.message.contains("sandbox") == true)
    }

    @Test func aWorkerThatFailsIsNoResult() throws {
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let (task, archive) = try Self.task("scanner.echo", scratch: scratch)
        for program in ["/bin/false", "/bin/true"] {
            let process = CheckProcess(executable: program)
            #expect(throws: CheckProcess.Failure.self, "\(program)") {
                try process.run(task, archive: archive, scratch: scratch.appendingPathComponent("work"))
            }
        }
        let answered = try CheckProcess(executable: Fixtures.eprBinary).run(task, archive: archive, scratch: scratch.appendingPathComponent("work"))
        #expect(answered.outcome == .passed && answered.findings.isEmpty)
        // Each job's directory is gone once it is done.
        #expect(try FileManager.default.contentsOfDirectory(atPath: scratch.appendingPathComponent("work").path).isEmpty)
    }

    /// A scanner is never shown the data directory, what holds it, or the root.
    @Test func scannersAreNotShownForbiddenPlaces() throws {
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let data = scratch.appendingPathComponent("data"), tool = scratch.appendingPathComponent("tool")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        try FileManager.default.createDirectory(at: tool, withIntermediateDirectories: true)
        let scanner = CheckSettings.Scanner(name: "x", command: ["/bin/sh", tool.path + "/run.sh"],
                                            paths: ["/", scratch.path, data.path, data.path + "/../data/blobs", tool.path, "/etc/hostname"])
        let shown = CheckProcess.scannerFiles(scanner, forbidden: [data.path])
        #expect(shown.contains(tool.path))
        #expect(!shown.contains("/") && !shown.contains(scratch.path) && !shown.contains { $0.hasPrefix(data.path) }, "\(shown)")
    }

    /// A worker's result is kept within bounds, and cannot call errors a pass or speak for
    /// another check.
    @Test func aWorkersResultIsBounded() {
        let claimed = CheckResult(outcome: .passed, findings: [Finding(.error, "inspection.fine", String(repeating: "x", count: 40_000)),
                                                               Finding(.info, "verifier.ok", "fine")] + Array(repeating: Finding(.info, "verifier", "n"), count: 2000),
                                  details: ["log": String(repeating: "y", count: 400_000)])
        let bounded = claimed.bounded(check: "verifier")
        #expect(bounded.outcome == .failed)
        #expect(bounded.findings.count == 1000)
        #expect(bounded.findings[0].check == "verifier.inspection.fine" && bounded.findings[1].check == "verifier.ok")
        #expect(bounded.findings[0].message.utf8.count == 16 << 10)
        #expect(bounded.details["log"]?.utf8.count == 256 << 10)
        let notRun = CheckResult(outcome: .notRun, findings: [Finding(.warning, "verifier.not-run", "no machine")]).bounded(check: "verifier")
        #expect(notRun.outcome == .notRun)
    }
}
