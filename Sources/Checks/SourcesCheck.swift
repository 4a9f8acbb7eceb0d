import Foundation
import PackageFormat

/// Checks the C sources a package includes (the files its `sources` patterns name): compiler
/// warnings with `-Wall -Wextra` (clang, for the BPF target), conformance to a clang-format
/// style (the package's own `.clang-format`, else the kernel's layout), each function's
/// cyclomatic complexity, and repeated runs of lines.
public struct SourcesCheck: Sendable {
    public static let id = "sources"
    /// The style used when the package has no `.clang-format`: the Linux kernel's layout, which
    /// most BPF programs follow.
    public static let defaultStyle = "{BasedOnStyle: LLVM, IndentWidth: 8, UseTab: Always, TabWidth: 8, BreakBeforeBraces: Linux, "
        + "ColumnLimit: 100, AllowShortIfStatementsOnASingleLine: false, AllowShortLoopsOnASingleLine: false, "
        + "AllowShortFunctionsOnASingleLine: None, IndentCaseLabels: false, AlignAfterOpenBracket: Align, SortIncludes: false}"

    /// Above this a function's complexity is a warning.
    public var complexityLimit = 30
    /// Runs of this many lines or more that repeat are a warning.
    public var repeatedLines = 10
    /// The time limit for the whole check, shared by its tool runs.
    public var timeout: Duration
    public var searchPath: String?
    /// Stops its commands early.
    public var cancellation: Cancellation?
    /// Where clang and clang-format run: a sandbox that sees the package (read-only, at
    /// ``mount``) and the toolchain, and nothing else of the host: no data directory, no keys,
    /// no network, with memory, CPU, process and file-size limits.
    public var sandbox: BuildSandbox?
    /// Whether the tools may run without a sandbox (a contributor's own `epr check`); on the
    /// registry they never do, and the check reports `sources.not-run` instead.
    public var allowUnsandboxed: Bool

    /// Where the package is seen inside the sandbox: the paths in the tools' messages.
    public static let mount = "/package"

    public init(timeout: Duration = .seconds(300), searchPath: String? = ProcessInfo.processInfo.environment["PATH"],
                sandbox: BuildSandbox? = Self.defaultSandbox(), allowUnsandboxed: Bool = false) {
        self.timeout = timeout
        self.searchPath = searchPath
        self.sandbox = sandbox
        self.allowUnsandboxed = allowUnsandboxed
    }

    /// A sandbox with room for a compiler: 2 GiB of address space, 64 processes, files of at
    /// most 64 MiB and a /tmp of 64 MiB, and the check's own time limit in CPU seconds.
    public static func defaultSandbox(path: String? = ProcessInfo.processInfo.environment["PATH"]) -> BuildSandbox? {
        guard var sandbox = BuildSandbox(memoryBytes: 2 << 30, path: path) else { return nil }
        sandbox.processes = 64
        sandbox.fileBytes = 64 << 20
        sandbox.tmpBytes = 64 << 20
        sandbox.cpuSeconds = 300
        return sandbox
    }

    /// The command line of a tool run: inside the sandbox with the package at ``mount``, or
    /// as it is when unsandboxed runs are allowed; nil when neither.
    func command(_ tool: String, _ arguments: [String], in directory: URL) -> (executable: String, arguments: [String], root: String)? {
        if let sandbox {
            let wrapper = sandbox.wrapper(directory: directory.path, mount: Self.mount, writable: false, kernelBTF: false)
            return (wrapper[0], Array(wrapper.dropFirst()) + [tool] + arguments, Self.mount)
        }
        guard allowUnsandboxed else { return nil }
        return (tool, arguments, directory.path)
    }

    public func run(package directory: URL, report: PackageReport) -> CheckResult {
        let patterns = report.manifest?.sources ?? []
        let sources = report.files.filter { file in
            file.kind == .file && (file.path.hasSuffix(".c") || file.path.hasSuffix(".h"))
                && patterns.contains { RelativePath.matches(file.path, pattern: $0) }
        }.map(\.path).sorted()
        guard !sources.isEmpty else {
            return CheckResult(findings: [Finding(.info, "sources.none", "the package includes no C sources to check")])
        }
        var findings: [Finding] = []
        var ranFully = true
        var texts: [(path: String, text: String)] = []
        let deadline = ContinuousClock.now + timeout
        for path in sources {
            let file = directory.appendingPathComponent(path).path
            let size = (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0
            guard size <= 4 << 20 else {
                findings.append(Finding(.warning, "sources.too-large", "\(path) is larger than 4 MiB and was not analysed", at: path))
                continue
            }
            guard let data = FileManager.default.contents(atPath: file) else {
                findings.append(Finding(.warning, "sources.not-run", "\(path) could not be read", at: path))
                ranFully = false
                continue
            }
            texts.append((path, String(decoding: data, as: UTF8.self)))
        }

        // Complexity and repetition, on every source.
        var figures: [String] = []
        for (path, text) in texts where path.hasSuffix(".c") {
            for function in SourceAnalysis.functions(text) {
                figures.append("\(path):\(function.line): \(function.name) complexity=\(function.complexity)")
                if function.complexity > complexityLimit {
                    findings.append(Finding(.warning, "sources.complexity",
                                            "\(function.name) has a cyclomatic complexity of \(function.complexity) (more than \(complexityLimit)): hard to review, and hard on the verifier",
                                            at: "\(path):\(function.line)"))
                }
            }
        }
        for repeated in SourceAnalysis.repeats(texts, minimum: repeatedLines) {
            findings.append(Finding(.warning, "sources.duplication",
                                    "\(repeated.lines) lines at \(repeated.second.file):\(repeated.second.line) repeat \(repeated.first.file):\(repeated.first.line)",
                                    at: "\(repeated.second.file):\(repeated.second.line)"))
        }

        // The tools run only in the sandbox (on the registry), or where it is allowed without.
        guard sandbox != nil || allowUnsandboxed else {
            findings.append(Finding(.warning, "sources.not-run",
                                    "the sandbox for the compiler (bubblewrap and prlimit) is not installed: compiler warnings and the layout were not checked"))
            return CheckResult(findings: findings, ranFully: false, details: ["functions": figures.joined(separator: "\n")])
        }

        // Inside the sandbox only /usr and the top-level system directories exist.
        let searchPath = sandbox == nil ? self.searchPath
            : (self.searchPath ?? "/usr/bin:/bin").split(separator: ":").filter { $0.hasPrefix("/usr/") || $0 == "/bin" }.joined(separator: ":")

        // The compiler's warnings.
        if let clang = ChildProcess.find("clang", path: searchPath) {
            for (path, _) in texts where path.hasSuffix(".c") {
                findings += compile(path, in: directory, clang: clang, timeout: deadline - ContinuousClock.now)
            }
        } else {
            findings.append(Finding(.warning, "sources.not-run", "clang is not installed on the registry's host: compiler warnings were not checked"))
            ranFully = false
        }

        // The layout.
        if let format = ChildProcess.find("clang-format", path: searchPath) {
            let root = sandbox == nil ? directory.path : Self.mount
            let style = FileManager.default.fileExists(atPath: directory.appendingPathComponent(".clang-format").path)
                ? "file:" + root + "/.clang-format" : Self.defaultStyle
            for (path, _) in texts {
                findings += layout(path, in: directory, clangFormat: format, style: style, timeout: deadline - ContinuousClock.now)
            }
        } else {
            findings.append(Finding(.warning, "sources.not-run", "clang-format is not installed on the registry's host: the layout was not checked"))
            ranFully = false
        }
        // A tool that did not finish, or a file it could not check, leaves the check incomplete.
        if findings.contains(where: { $0.check == "sources.not-run" }) { ranFully = false }
        return CheckResult(findings: findings, ranFully: ranFully, details: ["functions": figures.joined(separator: "\n")])
    }

    /// `path:line:col: warning: message [-Wflag]` lines of clang for one source.
    func compile(_ path: String, in directory: URL, clang: String, timeout: Duration) -> [Finding] {
        guard timeout > .zero else { return [Finding(.warning, "sources.not-run", "the check's time ran out before \(path) was compiled", at: path)] }
        let root = sandbox == nil ? directory.path : Self.mount
        let file = URL(fileURLWithPath: root).appendingPathComponent(path)
        var arguments = ["-target", "bpf", "-O2", "-Wall", "-Wextra", "-fsyntax-only", "-fno-color-diagnostics",
                         "-I", file.deletingLastPathComponent().path, "-I", root]
        for include in ["/usr/include/x86_64-linux-gnu", "/usr/include/aarch64-linux-gnu"]
        where FileManager.default.fileExists(atPath: include) {
            arguments += ["-I", include]
        }
        var warnings: [Finding] = [], firstError: String?
        let prefix = file.path + ":"
        guard let command = command(clang, arguments + [file.path], in: directory) else { return [] }
        var child = ChildProcess(executable: command.executable, arguments: command.arguments,
                                 environment: ["PATH": "/usr/bin:/bin", "LC_ALL": "C"], timeout: timeout)
        child.cancellation = cancellation
        var exhausted = false, said = false
        let result = try? child.run { line in
            said = true
            // What clang says when a limit of the sandbox stops it (not the package's own
            // diagnostics, which name a file of the package).
            if !line.hasPrefix(root + "/"), line.contains("out of memory") || line.hasPrefix("LLVM ERROR") || line.contains("std::bad_alloc")
                || line.contains("due to signal") || line.contains("PLEASE submit a bug report") {
                exhausted = true
            }
            guard line.hasPrefix(prefix) else {
                // An error in a header the source includes: the package's own (named from the
                // package's root) or the system's.
                if firstError == nil, line.contains(": error:") || line.contains(": fatal error:") {
                    firstError = line.hasPrefix(root + "/") ? String(line.dropFirst(root.count + 1)) : String(line)
                }
                return
            }
            let rest = line.dropFirst(prefix.count)
            let parts = rest.split(separator: ":", maxSplits: 3, omittingEmptySubsequences: false)
            guard parts.count == 4, let number = Int(parts[0]) else { return }
            let kind = parts[2].trimmingCharacters(in: .whitespaces), message = parts[3].trimmingCharacters(in: .whitespaces)
            if kind == "warning" {
                if warnings.count < 200 {
                    warnings.append(Finding(.warning, "sources.compiler-warning", message, at: "\(path):\(number)"))
                }
            } else if kind == "error" || kind == "fatal error", firstError == nil {
                firstError = "\(path):\(number): \(message)"
            }
        }
        if result == nil || result?.timedOut == true {
            return warnings + [Finding(.warning, "sources.not-run", "clang did not finish on \(path) within the check's time", at: path)]
        }
        if let result, result.signal != nil || exhausted || result.status != 0 && firstError == nil && warnings.isEmpty {
            // Stopped by a limit of the sandbox (memory, CPU time, file size), crashed, or the
            // sandbox itself could not start: never a clean compile.
            let how = result.signal.map { "was stopped by signal \($0)" } ?? "failed (exit \(result.status ?? -1))"
            let why = exhausted || result.signal != nil ? "it ran out of the memory or CPU time a check may use, or crashed"
                : said ? "it, or its sandbox, gave no diagnostic" : "its sandbox may not start on this host"
            return warnings + [Finding(.warning, "sources.not-run", "clang \(how) on \(path): \(why)", at: path)]
        }
        if let firstError {
            // Sources that need headers the package does not carry (vmlinux.h) are compiled
            // where they are built; that is not a defect of the package.
            return warnings + [Finding(.info, "sources.not-compiled", "\(path) does not compile here: \(firstError)", at: path)]
        }
        return warnings
    }

    /// Lines clang-format would change in one source, as one finding.
    func layout(_ path: String, in directory: URL, clangFormat: String, style: String, timeout: Duration) -> [Finding] {
        guard timeout > .zero else { return [Finding(.warning, "sources.not-run", "the check's time ran out before the layout of \(path)", at: path)] }
        let file = URL(fileURLWithPath: sandbox == nil ? directory.path : Self.mount).appendingPathComponent(path)
        var lines: [Int] = []
        let prefix = file.path + ":"
        guard let command = command(clangFormat, ["--dry-run", "--style=\(style)", "--fallback-style=none", "-fno-color-diagnostics", file.path],
                                    in: directory) else { return [] }
        var child = ChildProcess(executable: command.executable, arguments: command.arguments,
                                 environment: ["PATH": "/usr/bin:/bin", "LC_ALL": "C"], timeout: timeout)
        child.cancellation = cancellation
        let result = try? child.run { line in
            guard line.hasPrefix(prefix), line.contains("[-Wclang-format-violations]"),
                  let number = line.dropFirst(prefix.count).split(separator: ":").first.flatMap({ Int($0) }) else { return }
            if lines.last != number { lines.append(number) }
        }
        guard let result, !result.timedOut, result.status == 0 else {
            return [Finding(.warning, "sources.not-run", "clang-format could not check \(path)", at: path)]
        }
        guard !lines.isEmpty else { return [] }
        let shown = lines.prefix(10).map(String.init).joined(separator: ", ") + (lines.count > 10 ? ", ..." : "")
        return [Finding(.warning, "sources.format", "\(lines.count) line(s) of \(path) are not laid out in the style (lines \(shown))",
                        at: "\(path):\(lines[0])")]
    }
}
