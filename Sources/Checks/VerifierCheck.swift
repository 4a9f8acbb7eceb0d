import Foundation
import PackageFormat

/// Loads every program of every BPF object in the package into the running kernel's verifier,
/// without attaching anything, and records what the kernel said.
///
/// Each object is loaded by `bpftool prog loadall` in a child process of its own, in a private
/// mount namespace with a BPF filesystem of its own (so nothing it pins, its maps pinned by
/// name included, is seen by the host or outlives it), with the verifier's log and statistics
/// on, under a time limit; the kernel frees every program and map when the child ends. A host
/// where this cannot happen (no bpftool, no rights to make a namespace or load programs) gets
/// the finding `verifier.not-run`, never a pass.
public struct VerifierCheck: Sendable {
    public static let id = "verifier"
    /// How long the whole check may take, for all the package's objects together.
    public var timeout: Duration
    /// The search path for `bpftool` and `unshare` (by default `PATH` and the system's sbin
    /// directories, where bpftool lives).
    public var searchPath: String?
    /// Stops its commands early.
    public var cancellation: Cancellation?
    /// The virtual machine whose kernel verifies the objects; nil: none is installed.
    public var machine: VerifierMachine?
    /// Whether, without a machine, objects may be loaded into this host's own kernel (an
    /// operator's choice on the registry; a contributor's own `epr check`).
    public var allowHost: Bool

    public init(timeout: Duration = .seconds(60),
                searchPath: String? = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin") + ":/usr/local/sbin:/usr/sbin:/sbin",
                machine: VerifierMachine? = VerifierMachine(directory: VerifierMachine.defaultDirectory), allowHost: Bool = false) {
        self.timeout = timeout
        self.searchPath = searchPath
        self.machine = machine
        self.allowHost = allowHost
    }

    /// What one object's load gave.
    struct Load {
        var log = VerifierLog()
        var shown: [[String: Any]] = []
        var result: ChildProcess.Result?
        var startFailure: String?
    }

    public func run(package directory: URL, report: PackageReport) -> CheckResult {
        let objects = report.objects.filter { $0.report != nil }
        guard !objects.isEmpty else {
            return CheckResult(findings: [Finding(.info, "verifier.no-objects", "the package has no BPF object to verify")])
        }
        if let machine { return run(in: machine, package: directory, objects: objects) }
        guard allowHost else {
            return CheckResult(findings: [Finding(.warning, "verifier.not-run",
                                                  "the kernel verifier did not run: no verifier machine is installed (scripts/install-verifier-vm.sh), and loading packages into the registry host's own kernel is not allowed (verifier = \"host\")")],
                               ranFully: false)
        }
        guard let bpftool = ChildProcess.find("bpftool", path: searchPath), let unshare = ChildProcess.find("unshare", path: searchPath) else {
            return CheckResult(findings: [Finding(.warning, "verifier.not-run",
                                                  "the kernel verifier did not run: bpftool and unshare must be installed on the registry's host")],
                               ranFully: false)
        }
        // The time limit is the whole check's, shared by its objects.
        let deadline = ContinuousClock.now + timeout
        let loads = objects.map { object -> (PackageReport.ObjectEntry, Load?) in
            let remaining = deadline - ContinuousClock.now
            guard remaining > .zero else { return (object, nil) }
            return (object, load(object: directory.appendingPathComponent(object.path).path, bpftool: bpftool, unshare: unshare, timeout: remaining))
        }
        return summarise(loads, details: [:])
    }

    /// The findings of every object's load (nil: the check's time ran out before it), the
    /// kernel's figures under `programs`, and the log of each refused program.
    func summarise(_ loads: [(PackageReport.ObjectEntry, Load?)], details extra: [String: String]) -> CheckResult {
        var findings: [Finding] = [], figures: [String] = [], details = extra, ranFully = true
        for (object, load) in loads {
            guard let load else {
                findings.append(Finding(.warning, "verifier.not-run", "\(object.path) was not verified: the check's \(timeout.components.seconds) s ran out",
                                        at: object.path))
                ranFully = false
                continue
            }
            let (objectFindings, objectFigures, complete) = Self.judge(load, object: object, timeout: timeout)
            findings += objectFindings
            figures += objectFigures
            ranFully = ranFully && complete
            for program in load.log.programs where program.failure != nil {
                details["log:\(object.path):\(program.name)"] = program.tail.joined(separator: "\n")
            }
        }
        details["programs"] = figures.joined(separator: "\n")
        return CheckResult(findings: findings, ranFully: ranFully, details: details)
    }

    /// Every object through the machine's kernel, in one boot.
    func run(in machine: VerifierMachine, package directory: URL, objects: [PackageReport.ObjectEntry]) -> CheckResult {
        let kernel = machine.kernels[0]
        let started = ContinuousClock.now
        let run: VerifierMachine.Run
        do {
            run = try machine.run(objects: objects.map { directory.appendingPathComponent($0.path) }, kernel: kernel,
                                  scratch: directory.deletingLastPathComponent(), timeout: timeout, cancellation: cancellation)
        } catch {
            return CheckResult(findings: [Finding(.warning, "verifier.not-run", "the verifier machine did not start: \(error)")], ranFully: false)
        }
        let loads = zip(objects, run.objects).map { object, said -> (PackageReport.ObjectEntry, Load?) in
            var load = Load()
            if let exit = said.exit, said.stage != "crashed" {
                var log = VerifierLog()
                for line in said.errorLines { log.consume(line) }
                load.log = log
                load.shown = said.shown.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
                load.result = ChildProcess.Result(status: exit, signal: nil, timedOut: false, output: [], outputTruncated: false)
            } else if said.stage == "crashed" {
                load.startFailure = "the loader in the verifier machine stopped without a verdict (out of the machine's memory?)"
            } else if run.timedOut {
                load.result = ChildProcess.Result(status: nil, signal: nil, timedOut: true, output: [], outputTruncated: false)
            } else {
                load.startFailure = run.failure ?? "the verifier machine gave no verdict"
            }
            return (object, load)
        }
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return summarise(loads, details: ["kernel": run.kernel ?? kernel.release, "machine_seconds": String(format: "%.1f", seconds)])
    }

    func load(object: String, bpftool: String, unshare: String, timeout: Duration) -> Load {
        // $1 bpftool, $2 the object. Exit 90: no BPF filesystem could be mounted.
        let script = """
            mount -t bpf bpf /sys/fs/bpf || exit 90
            "$1" -d prog loadall "$2" /sys/fs/bpf/epr-verify || exit $?
            for pin in /sys/fs/bpf/epr-verify/*; do "$1" -j prog show pinned "$pin"; echo; done
            """
        var load = Load()
        var child = ChildProcess(executable: unshare, arguments: ["--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, "sh",
                                                                 bpftool, object],
                                 environment: ["PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL": "C"], timeout: timeout)
        child.cancellation = cancellation
        do {
            var log = VerifierLog()
            load.result = try child.run { log.consume($0) }
            load.log = log
        } catch {
            load.startFailure = "\(error)"
            return load
        }
        for line in String(decoding: load.result?.output ?? [], as: UTF8.self).split(separator: "\n") {
            if let data = line.data(using: .utf8), let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
                load.shown.append(json)
            }
        }
        return load
    }

    /// Findings and figures for one object: each program accepted (with the kernel's figures),
    /// refused (quoting the verifier), or not verified here (and why).
    static func judge(_ load: Load, object: PackageReport.ObjectEntry, timeout: Duration) -> ([Finding], [String], Bool) {
        let path = object.path
        let names = object.report?.programs.map(\.name) ?? []
        if let failure = load.startFailure {
            return ([Finding(.warning, "verifier.not-run", "the kernel verifier did not run for \(path): \(failure)", at: path)], [], false)
        }
        guard let result = load.result else { return ([], [], false) }
        if result.timedOut {
            return ([Finding(.warning, "verifier.not-run", "loading \(path) did not finish within \(timeout.components.seconds) s; it was stopped and not verified",
                             at: path)], [], false)
        }
        if result.status == 90 {
            return ([Finding(.warning, "verifier.not-run", "the kernel verifier did not run: no BPF file system could be mounted (the host needs CAP_SYS_ADMIN and CAP_BPF)",
                             at: path)], [], false)
        }
        let other = load.log.other.joined(separator: "\n")
        if result.status == 1, other.contains("unshare:") {
            let reason = load.log.other.last { $0.hasPrefix("unshare:") } ?? other
            return ([Finding(.warning, "verifier.not-run", "the kernel verifier did not run: no private mount namespace (\(reason))", at: path)], [], false)
        }
        var findings: [Finding] = [], figures: [String] = [], complete = true
        for name in names {
            let location = "\(path):\(name)"
            let program = load.log.programs.first { $0.name == name }
            let kernelName = String(decoding: Array(name.utf8.prefix(15)), as: UTF8.self)
            // bpftool names a program by its BTF function name when it has one, else by the
            // kernel's 15-byte name.
            let shown = load.shown.first { ($0["name"] as? String) == name || ($0["name"] as? String) == kernelName }
            if result.status == 0, let shown {
                var parts = ["\(location):"]
                if let n = program?.processedInstructions { parts.append("processed_insns=\(n)") }
                if let n = program?.totalStates { parts.append("total_states=\(n)") }
                if let n = program?.peakStates { parts.append("peak_states=\(n)") }
                if let n = program?.verificationMicroseconds { parts.append("verification_us=\(n)") }
                if let stack = program?.stackDepth { parts.append("stack_depth=\(stack)") }
                if let n = shown["bytes_xlated"] as? Int { parts.append("bytes_xlated=\(n)") }
                if let n = shown["bytes_jited"] as? Int { parts.append("bytes_jited=\(n)") }
                figures.append(parts.joined(separator: " "))
                let processed = program?.processedInstructions.map { " (\($0) instructions processed)" } ?? ""
                findings.append(Finding(.info, "verifier.accepted", "the kernel verifier accepted \(name)\(processed)", at: location))
            } else if let program, let failure = program.failure {
                if program.sawLog, !program.tail.isEmpty {
                    findings.append(Finding(.error, "verifier.rejected",
                                            "the kernel verifier refused \(name) (\(failure)):\n\(VerifierLog.complaint(program.tail))", at: location))
                } else {
                    findings.append(Finding(.warning, "verifier.not-run",
                                            "the kernel would not load \(name) on this host (\(failure)) and gave no verifier log: it was not verified",
                                            at: location))
                    complete = false
                }
            } else {
                let why = result.status == 0 ? "the kernel did not report it loaded" : "loading stopped at another program of the object"
                findings.append(Finding(.warning, "verifier.not-run", "\(name) was not verified: \(why)", at: location))
                complete = false
            }
        }
        if result.status != 0, !load.log.programs.contains(where: { $0.failure != nil }) {
            // bpftool stopped before any program reached the kernel: the host may not load BPF
            // at all (no rights, a security module, a container), which says nothing of the
            // package; otherwise the object itself is at fault (maps, BTF, relocations).
            let message = load.log.other.filter { !$0.hasPrefix("Warning:") && !$0.hasPrefix("If it used") }.suffix(6).joined(separator: "\n")
            let host = ["probe", "Operation not permitted", "Permission denied", "Couldn't load trivial BPF program", "ulimit -l"]
            if host.contains(where: { message.contains($0) }) {
                findings.append(Finding(.warning, "verifier.not-run", "this host cannot load BPF programs, so \(path) was not verified:\n\(message)",
                                        at: path))
                complete = false
            } else {
                findings.append(Finding(.error, "verifier.load-failed", "\(path) could not be loaded:\n\(message)", at: path))
            }
        }
        return (findings, figures, complete)
    }
}
