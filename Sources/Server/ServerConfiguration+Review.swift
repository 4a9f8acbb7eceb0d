import Checks
import Foundation
import PackageFormat
import Registry

extension ServerConfiguration {
    /// An external scanner: a command given the unpacked package directory, printing findings
    /// as JSON (see ``ExternalScanner``).
    public struct Scanner: Sendable, Equatable {
        public var name: String
        public var command: [String]
        /// Seconds it gets per package.
        public var timeout: Int

        public init(name: String, command: [String], timeout: Int = 300) {
            self.name = name
            self.command = command
            self.timeout = timeout
        }
    }

    static let reviewKeys: [(file: String, environment: String)] = [
        ("approvals_required", "EPR_APPROVALS_REQUIRED"), ("auto_publish", "EPR_AUTO_PUBLISH"), ("check_workers", "EPR_CHECK_WORKERS"),
        ("verifier", "EPR_VERIFIER"), ("verifier_timeout", "EPR_VERIFIER_TIMEOUT"),
    ]

    static func applyReview(_ values: [String: String], to configuration: inout ServerConfiguration) throws {
        if let text = values["approvals_required"] {
            guard let count = Int(text), (1...10).contains(count) else { throw Invalid(description: "approvals_required \(text) is not a number from 1 to 10") }
            configuration.approvalsRequired = count
        }
        if let text = values["auto_publish"] {
            configuration.autoPublish = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        }
        if let text = values["check_workers"] {
            guard let count = Int(text), (1...64).contains(count) else { throw Invalid(description: "check_workers \(text) is not a number from 1 to 64") }
            configuration.checkWorkers = count
        }
        if let text = values["verifier"] {
            guard let flag = Bool(text) else { throw Invalid(description: "verifier \(text) is not true or false") }
            configuration.verifier = flag
        }
        if let text = values["verifier_timeout"] {
            guard let seconds = Int(text), (1...3600).contains(seconds) else {
                throw Invalid(description: "verifier_timeout \(text) is not a number of seconds from 1 to 3600")
            }
            configuration.verifierTimeout = seconds
        }
    }

    /// `[scanner.NAME]` tables: command (a list: the program and its arguments), timeout.
    static func scanners(_ value: TOMLValue?, file: String) throws -> [Scanner] {
        guard let value else { return [] }
        guard case let .table(tables) = value else { throw Invalid(description: "\(file): scanner must hold [scanner.NAME] tables") }
        return try tables.keys.sorted().map { name in
            guard case let .table(table)? = tables[name] else { throw Invalid(description: "\(file): scanner.\(name) must be a table") }
            guard name.range(of: "^[a-z0-9][a-z0-9-]{0,31}$", options: .regularExpression) != nil else {
                throw Invalid(description: "\(file): scanner.\(name): scanner names are 1 to 32 lower-case letters, digits and -")
            }
            for key in table.keys where !["command", "timeout"].contains(key) {
                throw Invalid(description: "\(file): unknown key scanner.\(name).\(key)")
            }
            guard case let .array(items)? = table["command"], !items.isEmpty else {
                throw Invalid(description: "\(file): scanner.\(name).command must list the program and its arguments")
            }
            let command = try items.map { item -> String in
                guard case let .string(text) = item else { throw Invalid(description: "\(file): scanner.\(name).command must list strings") }
                return text
            }
            var timeout = 300
            if let item = table["timeout"] {
                guard case let .integer(seconds) = item, (1...3600).contains(seconds) else {
                    throw Invalid(description: "\(file): scanner.\(name).timeout must be a number of seconds from 1 to 3600")
                }
                timeout = Int(seconds)
            }
            return Scanner(name: name, command: command, timeout: timeout)
        }
    }

    /// The checks and review rules the registry applies.
    public var checkSuite: CheckSuite {
        CheckSuite(verifier: verifier ? VerifierCheck(timeout: .seconds(verifierTimeout)) : nil,
                   scanners: scanners.map { ExternalScanner(name: $0.name, command: $0.command, timeout: .seconds($0.timeout)) })
    }

    public var reviewSettings: ReviewSettings {
        var settings = ReviewSettings()
        settings.approvalsRequired = approvalsRequired
        settings.autoPublish = Set(autoPublish)
        settings.workers = checkWorkers
        return settings
    }
}
