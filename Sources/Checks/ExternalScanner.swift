import Foundation
import PackageFormat

/// A scanner outside epr: a command that receives the unpacked package directory as its last
/// argument (and in `EPR_PACKAGE_DIR`, with the archive in `EPR_PACKAGE_ARCHIVE`) and prints
/// its findings on standard output as JSON:
///
///     {"findings": [{"severity": "error", "check": "id", "message": "...", "location": "src/x.c:12"}]}
///
/// It exits 0 (or 1 when it found something); any other exit, a time-out or output that is not
/// that JSON means the scan itself failed. Each finding's check id is prefixed with
/// `scanner.NAME.`.
public struct ExternalScanner: Sendable {
    public var name: String
    public var command: [String]
    public var timeout: Duration
    /// Stops its commands early.
    public var cancellation: Cancellation?

    public init(name: String, command: [String], timeout: Duration = .seconds(300)) {
        self.name = name
        self.command = command
        self.timeout = timeout
    }

    public var id: String { "scanner.\(name)" }

    public enum Failure: Error, CustomStringConvertible {
        case failed(String)
        public var description: String {
            switch self { case let .failed(reason): reason }
        }
    }

    struct Output: Decodable {
        struct Item: Decodable {
            var severity: String
            var check: String?
            var message: String
            var location: String?
        }
        var findings: [Item]
    }

    /// Runs the scanner; throws when the scan itself failed (to be tried again).
    public func run(package directory: URL, archive: String) throws -> CheckResult {
        guard let first = command.first, let executable = ChildProcess.find(first) else {
            throw Failure.failed("the scanner \(name) cannot be started: \(command.first ?? "no command") is not installed")
        }
        // The server's own settings (its secrets among them) stay with the server.
        var environment = ProcessInfo.processInfo.environment.filter { !$0.key.hasPrefix("EPR_") }
        environment["EPR_PACKAGE_DIR"] = directory.path
        environment["EPR_PACKAGE_ARCHIVE"] = archive
        var errors: [String] = []
        var child = ChildProcess(executable: executable, arguments: Array(command.dropFirst()) + [directory.path], environment: environment,
                                 timeout: timeout)
        child.cancellation = cancellation
        let result = try child.run { line in
            errors.append(String(line.prefix(300)))
            if errors.count > 10 { errors.removeFirst() }
        }
        if result.timedOut { throw Failure.failed("the scanner \(name) did not finish within \(timeout.components.seconds) s") }
        guard let status = result.status, status == 0 || status == 1 else {
            throw Failure.failed("the scanner \(name) failed (\(result.status.map { "exit \($0)" } ?? "signal \(result.signal ?? 0)")): "
                + errors.joined(separator: "\n"))
        }
        let output: Output
        do { output = try JSONDecoder().decode(Output.self, from: Data(result.output)) } catch {
            throw Failure.failed("the scanner \(name) printed no findings document: \(error)")
        }
        let findings = output.findings.prefix(1000).map { item in
            let severity = Finding.Severity(rawValue: item.severity.lowercased()) ?? .warning
            let check = item.check.map { "\(id).\($0)" } ?? id
            return Finding(severity, check, String(item.message.prefix(2000)), at: item.location.map { String($0.prefix(1024)) })
        }
        return CheckResult(findings: Array(findings))
    }
}
