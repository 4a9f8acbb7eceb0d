import ArgumentParser
import Foundation

/// The `epr` command line.
public struct EPRCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "epr",
        abstract: "The eBPF Package Repository: package, inspect and publish eBPF packages.",
        subcommands: [PackageCommand.self, BuildCommand.self, InspectCommand.self, ServeCommand.self, PublishCommand.self, DownloadCommand.self,
                      InfoCommand.self, VersionsCommand.self, YankCommand.self, DeprecateCommand.self, SearchCommand.self,
                      LoginCommand.self, LogoutCommand.self, RegisterCommand.self, PasswordCommand.self, SecondFactorCommand.self,
                      WhoAmICommand.self, TokenCommand.self, UserCommand.self, OwnerCommand.self, OrganisationCommand.self, AuditCommand.self,
                      CheckCommand.self, SubmissionsCommand.self, ReviewCommand.self, AutoPublishCommand.self,
                      KeyCommand.self, SignCommand.self, VerifyCommand.self, TrustCommand.self, SigningGrantCommand.self,
                      AgentCommand.self, MirrorCommand.self, VerifyTreeCommand.self, WorkerCommand.self, CheckJobCommand.self, SignerCommand.self]
    )

    public init() {}
}

extension EPRCommand {
    /// What must happen while the process has one thread, before the asynchronous runtime
    /// starts: `epr serve` started as root gives up root here.
    public static func prepareProcess() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        guard geteuid() == 0 else { return }
        if arguments.first == "serve", let command = try? ServeCommand.parse(Array(arguments.dropFirst())) {
            do { try command.giveUpRoot() } catch { Foundation.exit(1) }
        }
        if arguments.first == "signer", let command = try? SignerCommand.parse(Array(arguments.dropFirst())) {
            do { try command.giveUpRoot() } catch { Foundation.exit(1) }
        }
    }

    /// Runs the command line, exiting 1 without another message for failures already reported.
    public static func runMain() async {
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch is ReportedFailure {
            Foundation.exit(1)
        } catch {
            exit(withError: error)
        }
    }
}
