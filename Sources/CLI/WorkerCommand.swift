import ArgumentParser
import Checks
import Client
import Foundation
import PackageFormat
import RegistryAPI

/// `epr worker`: a worker, a process of its own on this machine or another. It takes build
/// jobs from the repository, builds each package from its sources in a sandbox, and reports the
/// log and the built archive; with `--jobs check` it takes check jobs too, and runs each check
/// in a check worker process in a sandbox, as the server itself does.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Build and check submissions for the repository, in a sandbox (bubblewrap).",
        discussion: """
        Needs a token with the build scope (EPR_TOKEN; only admins hold it) and bubblewrap (bwrap) and prlimit on \
        this machine. Each build step runs without network, with every file system read-only but \
        the package's directory and a private /tmp, within --step-timeout and --memory. Each check \
        runs as the server's own check workers do: in a sandbox that sees the package, the toolchain and \
        the verifier machine (--verifier-machine), with the check's settings as the repository sends them.
        """)

    @OptionGroup var options: ClientOptions
    @Flag(help: "Build at most one job, then stop (when there is none, stop at once).") var once = false
    @Option(help: "Seconds each build step may take.") var stepTimeout = 600
    @Option(help: "The most memory (address space) a build step may use, in MiB.") var memory = 4096
    @Option(help: "Seconds to wait between looks for work when there is none.") var poll = 5
    @Option(help: "Where builds unpack (default: a temporary directory).") var scratch: String?
    @Option(help: "The jobs to take: build, check, or build,check.") var jobs = "build"
    @Option(help: "Where the verifier machine is installed, for check jobs.") var verifierMachine = VerifierMachine.defaultDirectory.path
    @Flag(help: "Let check jobs load packages into this host's own kernel when the repository's verifier is set to host.")
    var allowHostVerifier = false
    @Option(name: .customLong("scanner"), help: "A scanner of the repository's (its [scanner.NAME] name) this worker runs; repeat for more. Jobs of others are left to other workers.")
    var scanners: [String] = []

    var kinds: [String] { jobs.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }

    func validate() throws {
        guard !kinds.isEmpty, kinds.allSatisfy({ $0 == "build" || $0 == "check" }) else {
            throw ValidationError("--jobs is build, check, or build,check")
        }
    }

    func run() async throws {
        guard let sandbox = BuildSandbox(memoryBytes: Int64(memory) << 20) else {
            Output.error("bwrap (bubblewrap) and prlimit must be installed: builds run only in the sandbox")
            throw ReportedFailure()
        }
        let client = try options.client()
        let root = URL(fileURLWithPath: scratch ?? NSTemporaryDirectory()).appendingPathComponent("epr-worker-\(getpid())")
        try FileManager.default.createDirectory(at: root, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: root) }
        // A sandbox this machine cannot make (no user namespaces, say) is the worker's fault,
        // never a submission's: find out before taking any job.
        let probe = ChildProcess(executable: sandbox.wrapper(directory: root.path)[0],
                                 arguments: Array(sandbox.wrapper(directory: root.path).dropFirst()) + ["/usr/bin/true"], timeout: .seconds(30))
        guard let tried = try? probe.run(), tried.status == 0 else {
            Output.error("bubblewrap cannot make its sandbox on this machine (user or network namespaces refused?): builds cannot run here")
            throw ReportedFailure()
        }
        while !Task.isCancelled {
            var took = false, failed = false
            for kind in kinds {
                let outcome = kind == "build" ? await buildOne(client: client, sandbox: sandbox, root: root)
                    : await checkOne(client: client, root: root)
                switch outcome {
                case .none: continue
                case .done: took = true
                case .failed: took = true; failed = true
                }
                break
            }
            if once {
                if failed { throw ReportedFailure() }
                if !took { Output.line(kinds == ["build"] ? "no build job" : "no job") }
                return
            }
            // Nothing done (no job, or the repository away or refusing): look again later.
            if !took || failed { try await Task.sleep(for: .seconds(poll)) }
        }
    }

    enum Taken { case none, done, failed }

    /// Takes a build job and builds it.
    func buildOne(client: RegistryClient, sandbox: BuildSandbox, root: URL) async -> Taken {
        let job: BuildJobBody?
        do { job = try await client.claimBuild() } catch {
            // The repository is away or refuses: say so, and look again later.
            Output.error("cannot take a build job: \(error)")
            return .failed
        }
        guard let job else { return .none }
        Output.line("building \(job.name)@\(job.version) (\(job.submission), attempt \(job.attempt))")
        guard let request = await build(job, client: client, sandbox: sandbox, root: root) else {
            // Left for the lease to run out: another worker, or this one later, takes it again.
            return .failed
        }
        do {
            let result = try await client.reportBuild(job: job.job, request)
            Output.line("\(job.submission): \(request.outcome) -> \(result.outcome)")
            for finding in result.findings { Output.line("  \(finding.severity) [\(finding.check)] \(finding.message)") }
            return .done
        } catch {
            // Too late (the lease ran out, or the submission moved on), or the repository is away.
            Output.error("\(job.submission): the result was not taken: \(error)")
            return .failed
        }
    }

    /// Takes a check job, runs its check in a sandboxed check worker process, and reports the result.
    func checkOne(client: RegistryClient, root: URL) async -> Taken {
        let job: CheckJobBody?
        do { job = try await client.claimCheck(as: CheckJobBody.self) } catch {
            Output.error("cannot take a check job: \(error)")
            return .failed
        }
        guard let job else { return .none }
        // The repository names the scanner's command and what it sees: this machine runs only
        // those its operator allowed.
        if job.task.check.hasPrefix("scanner."), !scanners.contains(String(job.task.check.dropFirst("scanner.".count))) {
            Output.error("\(job.submission): the check \(job.task.check) is not run here (--scanner); left to another worker")
            return .failed
        }
        Output.line("checking \(job.name)@\(job.version) (\(job.submission), \(job.task.check), attempt \(job.attempt))")
        let work = root.appendingPathComponent("check-\(job.job)-\(job.attempt)")
        defer { try? FileManager.default.removeItem(at: work) }
        var task = job.task
        if task.settings.verifier?.host == true, !allowHostVerifier { task.settings.verifier?.host = false }
        let result: CheckResult
        do {
            try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
            let archive = try await client.submissionArchive(job.archive_url)
            guard SHA256Digest(of: archive).description == job.sha256 else {
                Output.error("\(job.submission): the archive downloaded is not the submitted one")
                return .failed
            }
            let file = work.appendingPathComponent("submitted.tar.gz")
            try archive.write(to: file)
            let process = CheckProcess(machine: URL(fileURLWithPath: verifierMachine))
            let scratch = work.appendingPathComponent("jobs"), given = task, path = file.path
            result = try await Task.detached { try process.run(given, archive: path, scratch: scratch) }.value
        } catch {
            // Left for the lease to run out, or for another attempt.
            Output.error("\(job.submission): the check \(task.check) could not run: \(error)")
            return .failed
        }
        do {
            try await client.reportCheck(job: job.job, CheckResultRequest(submission: job.submission, attempt: job.attempt, result: result))
            Output.line("\(job.submission): \(task.check) -> \(result.outcome.rawValue)")
            for finding in result.findings { Output.line("  \(finding.severity) [\(finding.check)] \(finding.message)") }
            return .done
        } catch {
            Output.error("\(job.submission): the result was not taken: \(error)")
            return .failed
        }
    }

    /// Builds one job: the result to report, or nil when this machine failed (not the package),
    /// which is left for another attempt.
    func build(_ job: BuildJobBody, client: RegistryClient, sandbox: BuildSandbox, root: URL) async -> BuildResultRequest? {
        let work = root.appendingPathComponent(job.submission + "-\(job.attempt)")
        defer { try? FileManager.default.removeItem(at: work) }
        func failed(_ check: String, _ message: String, _ steps: [PackageBuild.Step] = []) -> BuildResultRequest {
            BuildResultRequest(submission: job.submission, attempt: job.attempt, outcome: "failed", check: check, message: message,
                               log: PackageBuild.log(steps) + "epr worker: \(message)\n")
        }
        let directory: URL
        do {
            try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
            let archive = try await client.submissionArchive(job.archive_url)
            guard SHA256Digest(of: archive).description == job.sha256 else {
                Output.error("\(job.submission): the archive downloaded is not the submitted one")
                return nil
            }
            let file = work.appendingPathComponent("submitted.tar.gz")
            try archive.write(to: file)
            directory = try PackageUnpacker.unpack(archive: file.path, into: work.appendingPathComponent("src"))
        } catch {
            Output.error("\(job.submission): cannot fetch and unpack the submission: \(error)")
            return nil
        }
        do {
            var buildOptions = PackageBuild.Options(environment: BuildSandbox.environment(from: ProcessInfo.processInfo.environment))
            buildOptions.stepTimeout = .seconds(stepTimeout)
            // The whole build ends well within the lease, or another worker could take the job.
            buildOptions.deadline = ContinuousClock.now + .seconds(max(60, job.lease_seconds - 300))
            buildOptions.wrapper = { sandbox.wrapper(directory: $0) }
            let steps: [PackageBuild.Step]
            do { steps = try PackageBuild(options: buildOptions).run(directory: directory).steps } catch let failure as PackageBuild.Failure {
                return failed(failure.check, failure.message, failure.steps)
            }
            let output = work.appendingPathComponent("out")
            try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
            let built: PackageBuilder.Result
            do {
                built = try PackageBuilder().build(directory: directory, output: output,
                                                   modificationTime: PackageBuilder.modificationTime(environment: ProcessInfo.processInfo.environment))
            } catch let failure as PackageBuilder.Failure {
                return failed("build.failed", "the built package is not valid: \(failure)", steps)
            } catch let failure as ManifestError {
                return failed("build.failed", "the built package is not valid: \(failure)", steps)
            }
            let bytes = try Data(contentsOf: URL(fileURLWithPath: built.path))
            return BuildResultRequest(submission: job.submission, attempt: job.attempt, outcome: "built", log: PackageBuild.log(steps),
                                      archive: bytes.base64EncodedString())
        } catch {
            Output.error("\(job.submission): the worker could not build: \(error)")
            return nil
        }
    }
}
