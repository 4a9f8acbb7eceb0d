import ArgumentParser
import Foundation

/// The `epr` command line.
public struct EPRCommand: ParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "epr",
        abstract: "The eBPF Package Repository: package, inspect and publish eBPF packages.",
        subcommands: [PackageCommand.self, InspectCommand.self]
    )

    public init() {}
}

extension EPRCommand {
    /// Runs the command line, exiting 1 without another message for failures already reported.
    public static func runMain() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch is ReportedFailure {
            Foundation.exit(1)
        } catch {
            exit(withError: error)
        }
    }
}
