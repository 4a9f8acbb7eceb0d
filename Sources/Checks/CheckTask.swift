import Foundation
import PackageFormat

/// How the registry's checks are set (the `verifier`, `sources_check` and `[scanner.NAME]`
/// settings), in a form a check worker receives with each job: the worker builds the check from
/// it, so a worker needs no configuration of its own but where its verifier machine is.
public struct CheckSettings: Codable, Sendable, Equatable {
    public struct Verifier: Codable, Sendable, Equatable {
        /// Seconds for all the package's objects together.
        public var timeout: Int
        /// Whether the objects are loaded into the worker host's own kernel (an operator's
        /// opt-in) instead of the verifier machine's.
        public var host: Bool

        public init(timeout: Int = 60, host: Bool = false) {
            self.timeout = timeout
            self.host = host
        }
    }

    public struct Sources: Codable, Sendable, Equatable {
        public var timeout: Int
        public init(timeout: Int = 300) { self.timeout = timeout }
    }

    public struct Scanner: Codable, Sendable, Equatable {
        public var name: String
        public var command: [String]
        public var timeout: Int
        /// Files and directories the scanner reads (its database, say), seen read-only in the
        /// worker's sandbox besides the toolchain (`/usr`) and the absolute paths of its command.
        public var paths: [String]

        public init(name: String, command: [String], timeout: Int = 300, paths: [String] = []) {
            self.name = name
            self.command = command
            self.timeout = timeout
            self.paths = paths
        }

        public var id: String { "scanner.\(name)" }
    }

    /// Nil: the check is off.
    public var verifier: Verifier?
    public var sources: Sources?
    public var scanners: [Scanner]

    public init(verifier: Verifier? = Verifier(), sources: Sources? = Sources(), scanners: [Scanner] = []) {
        self.verifier = verifier
        self.sources = sources
        self.scanners = scanners
    }

    /// The checks that run after the inspection, in order.
    public var jobs: [String] {
        (verifier == nil ? [] : [VerifierCheck.id]) + (sources == nil ? [] : [SourcesCheck.id]) + scanners.map(\.id)
    }

    /// The time limit of a check, in seconds; nil for a check these settings do not know.
    public func timeout(of check: String) -> Int? {
        if check == VerifierCheck.id { return verifier?.timeout }
        if check == SourcesCheck.id { return sources?.timeout }
        return scanners.first { $0.id == check }?.timeout
    }

    /// The longest time limit of any check.
    public var longestTimeout: Int {
        ([verifier?.timeout, sources?.timeout].compactMap { $0 } + scanners.map(\.timeout)).max() ?? 60
    }

    /// The checks as they run where these settings are applied, with the verifier machine
    /// installed in `machine` (unless the verifier runs in the host's kernel).
    public func suite(machine: URL = VerifierMachine.defaultDirectory) -> CheckSuite {
        let verifierCheck = verifier.map { settings in
            settings.host ? VerifierCheck(timeout: .seconds(settings.timeout), machine: nil, allowHost: true)
                : VerifierCheck(timeout: .seconds(settings.timeout), machine: VerifierMachine(directory: machine))
        }
        return CheckSuite(verifier: verifierCheck, sources: sources.map { SourcesCheck(timeout: .seconds($0.timeout)) },
                          scanners: scanners.map { ExternalScanner(name: $0.name, command: $0.command, timeout: .seconds($0.timeout)) })
    }
}

/// One check of one package, as a check worker process is given it (`epr check-job`): the
/// check, the package's inspection report and the settings; the archive comes beside it.
public struct CheckTask: Codable, Sendable {
    public var check: String
    public var report: PackageReport
    public var settings: CheckSettings

    public init(check: String, report: PackageReport, settings: CheckSettings) {
        self.check = check
        self.report = report
        self.settings = settings
    }

    /// Runs the check on the archive, unpacking it below `scratch`: what `epr check-job` does
    /// inside its sandbox. Throws when the check could not be carried out.
    public func perform(archive: String, scratch: URL, machine: URL = VerifierMachine.defaultDirectory,
                        cancellation: Cancellation? = nil) throws -> CheckResult {
        try settings.suite(machine: machine).run(check, archive: archive, report: report, scratch: scratch, cancellation: cancellation)
    }
}
