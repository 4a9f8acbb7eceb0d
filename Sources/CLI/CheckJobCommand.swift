import ArgumentParser
import Checks
import Foundation

/// `epr check-job`: the check worker's side of a check job. The registry starts it in a sandbox
/// for each job, with the task (the check, the package's report, the settings) and the archive;
/// it unpacks the package below `--scratch`, runs the check and prints the result as JSON.
struct CheckJobCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-job",
        abstract: "Run one check job (started by the registry in a sandbox).",
        shouldDisplay: false)

    @Option(help: "The task, as JSON.") var task: String
    @Option(help: "The package archive.") var archive: String
    @Option(help: "Where to unpack the package.") var scratch: String
    @Option(help: "Where the verifier machine is installed.") var machine = VerifierMachine.defaultDirectory.path

    func run() throws {
        let text = try Data(contentsOf: URL(fileURLWithPath: task))
        let task = try JSONDecoder().decode(CheckTask.self, from: text)
        let result = try task.perform(archive: archive, scratch: URL(fileURLWithPath: scratch), machine: URL(fileURLWithPath: machine))
        FileHandle.standardOutput.write(try JSONEncoder().encode(result))
    }
}
