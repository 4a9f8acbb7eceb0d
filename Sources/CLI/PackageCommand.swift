import ArgumentParser
import Foundation
import PackageFormat

struct PackageCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "package",
        abstract: "Validate a package directory and write its archive (<artifact>.tar.gz).",
        discussion: """
        The archive is deterministic: the same inputs give the same bytes. Entry times come \
        from SOURCE_DATE_EPOCH when it is set, else the epoch.
        """
    )

    @Argument(help: "The package directory, holding epr.toml.")
    var directory: String = "."

    @Option(name: .shortAndLong, help: "Output file, or a directory to write <artifact> into (default: the current directory).")
    var output: String = "."

    @Flag(help: "Leave out what the [build] table builds: a package of sources, which the repository's build workers build.")
    var sourcesOnly = false

    @Flag(help: "Print the result as JSON.")
    var json = false

    func run() throws {
        var builder = PackageBuilder()
        builder.sourcesOnly = sourcesOnly
        let result: PackageBuilder.Result
        do {
            result = try builder.build(
                directory: URL(fileURLWithPath: directory), output: URL(fileURLWithPath: output),
                modificationTime: PackageBuilder.modificationTime(environment: ProcessInfo.processInfo.environment))
        } catch let failure as PackageBuilder.Failure {
            try report(failure.findings, json: json)
            throw ReportedFailure()
        } catch let failure as ManifestError {
            try report(failure.findings, json: json)
            throw ReportedFailure()
        }
        if json {
            try Output.json(PackagedResult(path: result.path, sha256: result.digest.description,
                                           name: result.manifest.name.value, version: result.manifest.version.description,
                                           findings: result.warnings))
        } else {
            for finding in result.warnings { Output.error(finding.description) }
            Output.line("packaged \(result.manifest.name)@\(result.manifest.version) -> \(result.path)")
            Output.line("\(result.digest)")
        }
    }

    private func report(_ findings: [Finding], json: Bool) throws {
        if json {
            try Output.json(PackagedResult(path: nil, sha256: nil, name: nil, version: nil, findings: findings))
        } else {
            for finding in findings { Output.error(finding.description) }
            Output.error("the package was not written: \(findings.filter { $0.severity == .error }.count) error(s)")
        }
    }

    struct PackagedResult: Encodable {
        var path: String?
        var sha256: String?
        var name: String?
        var version: String?
        var findings: [Finding]
    }
}
