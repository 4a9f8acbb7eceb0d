import Foundation
import PackageFormat
#if canImport(Glibc)
import Glibc
#endif

/// Runs one check job in a check worker: a process of its own (`epr check-job`) in a sandbox
/// that sees the job's own directory, the archive (read-only), the toolchain and the verifier
/// machine, and nothing else: not the data directory, its keys or its database, no network,
/// no other process, with limits on memory, processes and file sizes, and a time limit. The
/// worker unpacks the package, runs the check (whose tools run in sandboxes of their own) and
/// prints the result; the process that starts it never unpacks or runs anything of the package.
///
/// The one exception is an operator's opt-in to loading packages into the host's own kernel
/// (`verifier = "host"`): that check's worker runs outside the sandbox, since the kernel only
/// lets a process with its privileges load programs.
public struct CheckProcess: Sendable {
    /// The epr program the worker runs as.
    public var executable: String
    /// The sandbox, nil when this machine has none (bubblewrap and prlimit): checks then report
    /// `CHECK.not-run` rather than run outside one.
    public var sandbox: BuildSandbox?
    /// Where the verifier machine is installed.
    public var machine: URL
    /// Time the worker gets beyond the check's own limit, to unpack the package and answer.
    public var margin: Duration = .seconds(120)
    /// Directories no check may see, whatever a scanner names (the data directory): neither
    /// they, what is in them, nor a directory that holds them is shown.
    public var forbidden: [String] = []

    public init(executable: String = CheckProcess.currentExecutable, machine: URL = VerifierMachine.defaultDirectory,
                sandbox: BuildSandbox? = CheckProcess.defaultSandbox()) {
        self.executable = executable
        self.machine = machine
        self.sandbox = sandbox
    }

    /// This process's own program.
    public static var currentExecutable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    /// A worker's limits: 4 GiB of address space (a compiler and a virtual machine run below
    /// it, each with limits of its own), 256 processes, files of at most 1 GiB, a /tmp of 256 MiB.
    public static func defaultSandbox(path: String? = ProcessInfo.processInfo.environment["PATH"]) -> BuildSandbox? {
        guard var sandbox = BuildSandbox(memoryBytes: 4 << 30, path: path) else { return nil }
        sandbox.processes = 256
        sandbox.fileBytes = 1 << 30
        sandbox.tmpBytes = 256 << 20
        return sandbox
    }

    public enum Failure: Error, CustomStringConvertible {
        case worker(String)
        public var description: String {
            switch self { case let .worker(reason): reason }
        }
    }

    /// Where the worker sees its job: the task, and a directory to unpack in.
    static let jobMount = "/job"
    static let archiveMount = "/archive.tar.gz"

    /// Runs `task` on the archive at `archive` in a new directory below `scratch`, removed
    /// afterwards. Throws when the worker failed (it could not start, crashed, ran out of time
    /// or answered nothing readable): the job is then tried again. Blocking.
    public func run(_ task: CheckTask, archive: String, scratch: URL, cancellation: Cancellation? = nil) throws -> CheckResult {
        guard let timeout = task.settings.timeout(of: task.check) else { throw CheckSuite.Failure.unknownCheck(task.check) }
        let host = task.check == VerifierCheck.id && task.settings.verifier?.host == true
        guard host || sandbox != nil else {
            return CheckResult(findings: [Finding(.warning, "\(task.check).not-run",
                                                  "the check did not run: the registry runs checks only in a sandbox, and bubblewrap (bwrap) and prlimit are not installed on its host")],
                               ranFully: false)
        }
        try FileManager.default.createDirectory(at: scratch, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        var template = Array(scratch.appendingPathComponent("job-XXXXXX").path.utf8CString)
        guard let made = mkdtemp(&template) else { throw CocoaError(.fileWriteUnknown) }
        let directory = String(cString: made)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let encoder = JSONEncoder()
        try encoder.encode(task).write(to: URL(fileURLWithPath: directory).appendingPathComponent("task.json"))

        var environment = BuildSandbox.environment(from: ProcessInfo.processInfo.environment)
        environment["PATH"] = "/usr/local/bin:/usr/bin:/bin:/usr/local/sbin:/usr/sbin:/sbin"
        let command: [String]
        if host {
            command = [executable, "check-job", "--task", directory + "/task.json", "--archive", archive,
                       "--scratch", directory + "/work", "--machine", machine.path]
        } else if let sandbox {
            var readOnly = [(archive, Self.archiveMount)]
            readOnly += Self.programFiles(executable).map { ($0, $0) }
            if task.check == VerifierCheck.id, FileManager.default.fileExists(atPath: machine.path) {
                readOnly.append((machine.path, machine.path))
            }
            if let scanner = task.settings.scanners.first(where: { $0.id == task.check }) {
                readOnly += Self.scannerFiles(scanner, forbidden: forbidden).map { ($0, $0) }
            }
            command = sandbox.wrapper(directory: directory, mount: Self.jobMount, writable: true, kernelBTF: false,
                                      readOnly: readOnly.map { (source: $0.0, target: $0.1) })
                + [executable, "check-job", "--task", Self.jobMount + "/task.json", "--archive", Self.archiveMount,
                   "--scratch", Self.jobMount + "/work", "--machine", machine.path]
        } else {
            throw Failure.worker("no sandbox")
        }
        var child = ChildProcess(executable: command[0], arguments: Array(command.dropFirst()), environment: environment,
                                 timeout: .seconds(timeout) + margin)
        child.outputLimit = 64 << 20
        child.cancellation = cancellation
        var errors: [String] = []
        let result = try child.run { line in
            errors.append(String(line.prefix(500)))
            if errors.count > 20 { errors.removeFirst() }
        }
        if cancellation?.isCancelled == true { throw CancellationError() }
        if result.timedOut {
            throw Failure.worker("the check worker did not finish within \(timeout + Int(margin.components.seconds)) s")
        }
        guard result.status == 0, !result.outputTruncated else {
            let how = result.outputTruncated ? "answered too much" : result.status.map { "exit \($0)" } ?? "signal \(result.signal ?? 0)"
            throw Failure.worker("the check worker failed (\(how))" + (errors.isEmpty ? "" : ": " + errors.joined(separator: "\n")))
        }
        do {
            return try JSONDecoder().decode(CheckResult.self, from: Data(result.output))
        } catch {
            throw Failure.worker("the check worker's answer is not a check result: \(error)")
        }
    }

    /// The program and the shared libraries it loads from outside the system's directories (a
    /// toolchain's runtime in /opt, say), which the sandbox must show for the program to start.
    static func programFiles(_ executable: String) -> [String] {
        var files = [executable]
        let system = ["/usr/", "/lib", "/bin/", "/sbin/", "/etc/"]
        if let maps = try? String(contentsOfFile: "/proc/self/maps", encoding: .utf8) {
            for line in maps.split(separator: "\n") {
                guard let slash = line.firstIndex(of: "/") else { continue }
                let path = String(line[slash...])
                guard path.hasSuffix(".so") || path.contains(".so."), !system.contains(where: { path.hasPrefix($0) }),
                      FileManager.default.fileExists(atPath: path) else { continue }
                let folder = (path as NSString).deletingLastPathComponent
                if !files.contains(folder) { files.append(folder) }
            }
        }
        if system.contains(where: { executable.hasPrefix($0) }) { files.removeFirst() }
        return files
    }

    /// What a scanner needs to see: the absolute paths among its command's words, and the paths
    /// it names.
    static func scannerFiles(_ scanner: CheckSettings.Scanner, forbidden: [String] = []) -> [String] {
        let forbidden = forbidden.map { URL(fileURLWithPath: $0).standardizedFileURL.path }
        return (scanner.command.filter { $0.hasPrefix("/") } + scanner.paths).map { URL(fileURLWithPath: $0).standardizedFileURL.path }.filter { path in
            let holds = forbidden.contains { $0 == path || $0.hasPrefix(path == "/" ? "/" : path + "/") || path.hasPrefix($0 + "/") }
            return path != "/" && !holds && !path.hasPrefix("/usr/") && FileManager.default.fileExists(atPath: path)
        }
    }
}
