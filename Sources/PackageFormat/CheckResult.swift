import Foundation

/// What a check found, and what it measured.
public struct CheckResult: Sendable, Equatable, Codable {
    public enum Outcome: String, Sendable, Codable {
        /// Nothing above info.
        case passed
        /// Warnings, no errors.
        case warnings
        /// At least one error.
        case failed
        /// The check could not run here (no kernel rights, no tool): never reported as passed.
        case notRun = "not-run"
    }

    public var outcome: Outcome
    public var findings: [Finding]
    /// Check-specific figures and logs (the verifier's instruction counts and log tail, ...).
    public var details: [String: String]

    public init(outcome: Outcome, findings: [Finding], details: [String: String] = [:]) {
        self.outcome = outcome
        self.findings = findings
        self.details = details
    }

    /// A result whose outcome follows from its findings: failed with an error, warnings with a
    /// warning, else passed, unless the check did not run.
    public init(findings: [Finding], ranFully: Bool = true, details: [String: String] = [:]) {
        let outcome: Outcome = findings.hasErrors ? .failed : !ranFully ? .notRun
            : findings.contains { $0.severity == .warning } ? .warnings : .passed
        self.init(outcome: outcome, findings: findings, details: details)
    }

    public var errors: Int { findings.count { $0.severity == .error } }
}

