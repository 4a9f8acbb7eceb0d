import ArgumentParser
import Checks
import Client
import Foundation
import PackageFormat
import RegistryAPI
import Server

/// `epr submissions`: the review queue and one's own submissions.
struct SubmissionsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "submissions", abstract: "List submissions, or withdraw one of yours.",
        subcommands: [List.self, Withdraw.self, Log.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List submissions, newest first (reviewers see all; others their own).")
        @Option(help: "Only these states (submitted, checking, awaiting-review, changes-requested, rejected, withdrawn, published).")
        var state: [String] = []
        @Option(help: "Only this package's.") var package: String?
        @Flag(help: "Only your own.") var mine = false
        @OptionGroup var options: ClientOptions

        func run() async throws {
            let data = try await reportingProblems { try await options.client().submissions(states: state, package: package, mine: mine) }
            if options.json { data.printJSON(); return }
            let page = try data.decoded(SubmissionPage.self)
            for item in page.items {
                Output.line("\(item.id)\t\(item.name)@\(item.version)\t\(item.state)\t\(item.publisher)\t\(item.created_at.formatted(.iso8601))")
            }
            if page.total > page.items.count { Output.line("(\(page.items.count) of \(page.total))") }
        }
    }

    struct Log: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show the build log of a submission built from its sources by a build worker.")
        @Argument(help: "The submission (sub_...).") var id: String
        @OptionGroup var options: ClientOptions

        func run() async throws {
            let data = try await reportingProblems { try await options.client().submission(id) }
            let detail = try data.decoded(SubmissionDetail.self)
            guard let build = detail.checks.first(where: { $0.check == "build" }) else {
                Output.error("\(id) has no build: it carried its built objects")
                throw ReportedFailure()
            }
            if options.json {
                try Output.json(build)
                return
            }
            Output.line("build: \(build.state)\(build.outcome.map { ", \($0)" } ?? "")\(build.details["worker"].map { " (worker \($0))" } ?? "")")
            for finding in build.findings { Output.line("  \(finding.severity) [\(finding.check)] \(finding.message)") }
            if let log = build.details["log"], !log.isEmpty { Output.line(log) }
        }
    }

    struct Withdraw: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Withdraw a submission of yours: it will never be published.")
        @Argument(help: "The submission (sub_...).") var id: String
        @Option(help: "Why.") var reason: String?
        @OptionGroup var options: ClientOptions

        func run() async throws {
            let data = try await reportingProblems { try await options.client().decide(id, "withdraw", reason: reason) }
            if options.json { data.printJSON(); return }
            Output.line("withdrew \(id)")
        }
    }
}

/// `epr review ...`: what reviewers do.
struct ReviewCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "review", abstract: "Review submissions: read them, comment, approve, reject or ask for changes.",
        subcommands: [Show.self, Approve.self, Reject.self, RequestChanges.self, Comment.self, Download.self])

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Show a submission: its checks, comments and decisions, and its diff.")
        @Argument(help: "The submission (sub_...).") var id: String
        @OptionGroup var options: ClientOptions

        func run() async throws {
            let client = try options.client()
            let data = try await reportingProblems { try await client.submission(id) }
            let diffData = try await reportingProblems { try await client.submissionDiff(id) }
            if options.json {
                (Data(#"{"submission":"#.utf8) + data + Data(#","diff":"#.utf8) + diffData + Data("}".utf8)).printJSON()
                return
            }
            let detail = try data.decoded(SubmissionDetail.self), diff = try diffData.decoded(SubmissionDiff.self)
            let s = detail.submission
            Output.line("\(s.id): \(s.name)@\(s.version) by \(s.publisher), \(s.state)" + (s.reason.map { " (\($0))" } ?? ""))
            Output.line("  sha256 \(s.sha256), \(s.size) bytes; approvals \(detail.approvals.count) of \(s.approvals_required)"
                        + (detail.approvals.isEmpty ? "" : " (\(detail.approvals.joined(separator: ", ")))"))
            if !detail.needs_acknowledgement.isEmpty {
                Output.line("  an approval must acknowledge: \(detail.needs_acknowledgement.joined(separator: ", "))")
            }
            Output.line(ReviewText.checks(detail.checks))
            Output.line(ReviewText.diff(diff))
            for event in detail.events {
                let place = event.file.map { " on \($0)" + (event.line.map { ":\($0)" } ?? "") } ?? ""
                Output.line("\(event.at.formatted(.iso8601)) \(event.actor) \(event.kind)\(place)" + (event.message.map { ": \($0)" } ?? ""))
            }
        }
    }

    struct Approve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Approve a submission awaiting review.")
        @Argument(help: "The submission (sub_...).") var id: String
        @Option(help: "A warning's check id this approval acknowledges (repeat for each).") var acknowledge: [String] = []
        @Option(help: "A note with the approval.") var message: String?
        @OptionGroup var options: ClientOptions

        func run() async throws {
            let data = try await reportingProblems { try await options.client().decide(id, "approve", reason: message, acknowledge: acknowledge) }
            if options.json { data.printJSON(); return }
            let detail = try data.decoded(SubmissionDetail.self)
            Output.line(detail.submission.state == "published"
                        ? "approved \(id): \(detail.submission.name)@\(detail.submission.version) is published"
                        : "approved \(id) (\(detail.approvals.count) of \(detail.submission.approvals_required) approvals)")
        }
    }

    struct Reject: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Reject a submission: it will never be published.")
        @Argument(help: "The submission (sub_...).") var id: String
        @Option(help: "Why (required).") var reason: String
        @OptionGroup var options: ClientOptions

        func run() async throws {
            let data = try await reportingProblems { try await options.client().decide(id, "reject", reason: reason) }
            if options.json { data.printJSON(); return }
            Output.line("rejected \(id)")
        }
    }

    struct RequestChanges: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "request-changes", abstract: "Send a submission back to its author, who may submit the version again.")
        @Argument(help: "The submission (sub_...).") var id: String
        @Option(help: "What to change (required).") var reason: String
        @OptionGroup var options: ClientOptions

        func run() async throws {
            let data = try await reportingProblems { try await options.client().decide(id, "request-changes", reason: reason) }
            if options.json { data.printJSON(); return }
            Output.line("asked for changes to \(id)")
        }
    }

    struct Comment: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Comment on a submission, or on a line of one of its files.")
        @Argument(help: "The submission (sub_...).") var id: String
        @Argument(help: "The comment.") var message: String
        @Option(help: "A file of the package.") var file: String?
        @Option(help: "A line of that file, from 1.") var line: Int?
        @OptionGroup var options: ClientOptions

        func run() async throws {
            let data = try await reportingProblems { try await options.client().comment(id, message: message, file: file, line: line) }
            if options.json { data.printJSON(); return }
            Output.line("commented on \(id)")
        }
    }

    struct Download: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Download a submission's archive to look at it.")
        @Argument(help: "The submission (sub_...).") var id: String
        @Option(name: .shortAndLong, help: "The directory to write the archive into.") var output = "."
        @OptionGroup var options: ClientOptions

        func run() async throws {
            let client = try options.client()
            let detail = try await reportingProblems { try await client.submission(id) }.decoded(SubmissionDetail.self)
            let destination = URL(fileURLWithPath: output).appendingPathComponent("\(id).tar.gz").path
            _ = try await reportingProblems {
                try await client.download(detail.submission.archive_url, to: destination, expected: SHA256Digest(hex: String(detail.submission.sha256.dropFirst("sha256:".count))))
            }
            if options.json { try Output.json(["file": destination, "sha256": detail.submission.sha256]); return }
            Output.line("downloaded \(destination)")
        }
    }
}

/// `epr check FILE`: the registry's automated checks, run here before publishing.
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check", abstract: "Run the registry's automated checks on a package archive before publishing it.",
        discussion: """
            Runs the inspection, the kernel verifier (root with CAP_BPF, bpftool and unshare needed; otherwise reported as not run) \
            and the external scanners of a server config file, with the same code the registry runs. Exits with status 1 when a \
            check finds an error.
            """)
    @Argument(help: "The package archive (.tar.gz).") var file: String
    @Option(help: "A server config file whose verifier and [scanner.NAME] settings to use.") var config: String?
    @Flag(help: "Leave the kernel verifier out.") var noVerifier = false
    @Flag(help: "Print the results as JSON.") var json = false

    func run() throws {
        var configuration = try ServerConfiguration.resolve(file: config, environment: ProcessInfo.processInfo.environment, overrides: [:])
        if noVerifier { configuration.verifier = false }
        let name = URL(fileURLWithPath: file).lastPathComponent
        let report: PackageReport
        do { report = try PackageInspector().inspect(path: file, artifact: name.hasSuffix(".tar.gz") ? name : nil) } catch {
            Output.error("\(file): \(error.description) [\(error.code)]")
            throw ReportedFailure()
        }
        // A directory of its own, made by mkdtemp (0700): nobody else can have prepared it.
        var template = Array(FileManager.default.temporaryDirectory.appendingPathComponent("epr-check-XXXXXX").path.utf8CString)
        guard let made = mkdtemp(&template) else { throw ValidationError("cannot make a scratch directory") }
        let scratch = URL(fileURLWithPath: String(cString: made))
        defer { try? FileManager.default.removeItem(at: scratch) }
        var suite = configuration.checkSettings.suite(machine: URL(fileURLWithPath: configuration.verifierMachine))
        // A contributor's own package on their own machine: the compiler may run without the
        // sandbox where bubblewrap is not installed (the registry never allows that).
        suite.sources?.allowUnsandboxed = true
        // Without a verifier machine, the contributor's own kernel verifies their own package.
        suite.verifier?.allowHost = true
        let results = suite.runAll(archive: file, report: report, scratch: scratch)
        let bodies = results.map { ReviewText.body($0.check, $0.result) }
        if json { try Output.json(bodies) } else { Output.line(ReviewText.checks(bodies)) }
        if results.contains(where: { $0.result.errors > 0 }) { throw ReportedFailure() }
    }
}

/// `epr auto-publish`: publishers whose submissions skip review once every check passes.
struct AutoPublishCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "auto-publish", abstract: "List, allow or stop the users whose submissions are published without review (admins).")
    @Argument(help: "list, add or remove.") var action = "list"
    @Argument(help: "The user.") var user: String?
    @OptionGroup var options: ClientOptions

    func run() async throws {
        let client = try options.client()
        switch (action, user) {
        case ("list", nil):
            let data = try await reportingProblems { try await client.autoPublishers() }
            if options.json { data.printJSON(); return }
            for name in try data.decoded([String].self) { Output.line(name) }
        case let ("add", user?), let ("remove", user?):
            try await reportingProblems { try await client.setAutoPublish(user, enabled: action == "add") }
            if !options.json { Output.line(action == "add" ? "\(user) now auto-publishes" : "\(user) no longer auto-publishes") }
        default:
            throw ValidationError("say list, add USER or remove USER")
        }
    }
}

/// How checks and diffs read on a terminal.
enum ReviewText {
    static func body(_ check: String, _ result: CheckResult) -> CheckBody {
        CheckBody(check: check, state: "done", attempts: 1, outcome: result.outcome.rawValue,
                  findings: result.findings.map { FindingBody(severity: $0.severity.rawValue, check: $0.check, message: $0.message, location: $0.location) },
                  details: result.details, finished_at: nil)
    }

    static func checks(_ checks: [CheckBody]) -> String {
        var lines: [String] = []
        for check in checks {
            lines.append("check \(check.check): \(check.outcome ?? check.state)")
            for finding in check.findings where finding.severity != "info" || check.check != CheckSuite.inspection {
                let message = finding.message.replacingOccurrences(of: "\n", with: "\n      ")
                lines.append("  \(finding.severity) [\(finding.check)] \(message)" + (finding.location.map { " (\($0))" } ?? ""))
            }
            if let programs = check.details["programs"], !programs.isEmpty {
                lines += programs.split(separator: "\n").map { "  figures \($0)" }
            }
        }
        return lines.joined(separator: "\n")
    }

    static func diff(_ diff: SubmissionDiff) -> String {
        var lines = ["changes since " + (diff.base ?? "nothing (the first version)") + ":"]
        for change in diff.manifest { lines.append("  manifest \(change.field): \(change.before ?? "-") -> \(change.after ?? "-")") }
        func list(_ label: String, _ items: [String]) { if !items.isEmpty { lines.append("  \(label): \(items.joined(separator: ", "))") } }
        list("programs added", diff.programs_added)
        list("programs removed", diff.programs_removed)
        list("maps added", diff.maps_added)
        list("maps removed", diff.maps_removed)
        for change in diff.helpers {
            lines.append("  helpers of \(change.program): +\(change.added.joined(separator: ", +")) -\(change.removed.joined(separator: ", -"))")
        }
        list("files added", diff.files_added)
        list("files removed", diff.files_removed)
        list("files changed", diff.files_changed)
        list("sources changed", diff.sources_changed)
        if lines.count == 1 { lines.append("  none") }
        return lines.joined(separator: "\n")
    }
}
