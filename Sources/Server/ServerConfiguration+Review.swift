import Checks
import Foundation
import PackageFormat
import Registry

extension ServerConfiguration {
    /// An external scanner: a command given the unpacked package directory, printing findings
    /// as JSON (see ``ExternalScanner``), as the check workers receive it.
    public typealias Scanner = CheckSettings.Scanner

    /// A webhook: where submissions' events are posted, signed with its secret.
    public struct Webhook: Sendable, Equatable {
        public var name: String
        public var url: String
        public var secret: String
        /// Event names it wants (`submission.published`, ...); nil for all.
        public var events: [String]?

        public init(name: String, url: String, secret: String, events: [String]? = nil) {
            self.name = name
            self.url = url
            self.secret = secret
            self.events = events
        }
    }

    static let webhookEvents: Set<String> = Set(["submitted", "awaiting-review", "changes-requested", "rejected", "withdrawn",
                                                 "published", "approved", "commented"].map { "submission.\($0)" })

    /// `[webhook.NAME]` tables: url, secret (or EPR_WEBHOOK_<NAME>_SECRET), events.
    static func webhooks(_ value: TOMLValue?, file: String, environment: [String: String]) throws -> [Webhook] {
        try namedTables(value, "webhook", file: file, keys: ["url", "secret", "events"]).map { name, table in
            guard case let .string(url)? = table["url"], let parsed = URL(string: url), ["http", "https"].contains(parsed.scheme ?? ""),
                  parsed.host != nil else {
                throw Invalid(description: "\(file): webhook.\(name).url must be an http(s) URL")
            }
            let variable = "EPR_WEBHOOK_\(name.uppercased().replacingOccurrences(of: "-", with: "_"))_SECRET"
            var secret = environment[variable].flatMap { $0.isEmpty ? nil : $0 }
            if secret == nil, case let .string(text)? = table["secret"] { secret = text }
            guard let secret, secret.utf8.count >= 16 else {
                throw Invalid(description: "\(file): webhook.\(name) needs a secret of at least 16 bytes (secret, or \(variable))")
            }
            var events: [String]?
            if let item = table["events"] {
                guard case let .array(list) = item else { throw Invalid(description: "\(file): webhook.\(name).events must list event names") }
                events = try list.map { entry in
                    guard case let .string(event) = entry, webhookEvents.contains(event) else {
                        throw Invalid(description: "\(file): webhook.\(name).events: events are " + webhookEvents.sorted().joined(separator: ", "))
                    }
                    return event
                }
            }
            return Webhook(name: name, url: url, secret: secret, events: events)
        }
    }

    /// The `[section.NAME]` tables of a config file, by name: each name 1 to 32 lower-case
    /// letters, digits and -, each key one of `keys`.
    static func namedTables(_ value: TOMLValue?, _ section: String, file: String, keys: Set<String>) throws -> [(String, TOMLTable)] {
        guard let value else { return [] }
        guard case let .table(tables) = value else { throw Invalid(description: "\(file): \(section) must hold [\(section).NAME] tables") }
        return try tables.keys.sorted().map { name in
            guard case let .table(table)? = tables[name] else { throw Invalid(description: "\(file): \(section).\(name) must be a table") }
            guard name.range(of: "^[a-z0-9][a-z0-9-]{0,31}$", options: .regularExpression) != nil else {
                throw Invalid(description: "\(file): \(section).\(name): names are 1 to 32 lower-case letters, digits and -")
            }
            for key in table.keys where !keys.contains(key) {
                throw Invalid(description: "\(file): unknown key \(section).\(name).\(key)")
            }
            return (name, table)
        }
    }

    static let reviewKeys: [(file: String, environment: String)] = [
        ("approvals_required", "EPR_APPROVALS_REQUIRED"), ("auto_publish", "EPR_AUTO_PUBLISH"), ("check_workers", "EPR_CHECK_WORKERS"),
        ("verifier", "EPR_VERIFIER"), ("verifier_machine", "EPR_VERIFIER_MACHINE"), ("verifier_timeout", "EPR_VERIFIER_TIMEOUT"), ("sources_check", "EPR_SOURCES_CHECK"),
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
            guard let count = Int(text), (0...64).contains(count) else { throw Invalid(description: "check_workers \(text) is not a number from 0 to 64") }
            configuration.checkWorkers = count
        }
        if let text = values["verifier"] {
            switch text {
            case "true", "machine": (configuration.verifier, configuration.verifierHost) = (true, false)
            case "host": (configuration.verifier, configuration.verifierHost) = (true, true)
            case "false": configuration.verifier = false
            default: throw Invalid(description: "verifier \(text) is not machine (or true), host or false")
            }
        }
        if let directory = values["verifier_machine"] { configuration.verifierMachine = directory }
        try flag(values, "sources_check", into: &configuration.sourcesCheck)
        if let text = values["verifier_timeout"] {
            guard let seconds = Int(text), (1...3600).contains(seconds) else {
                throw Invalid(description: "verifier_timeout \(text) is not a number of seconds from 1 to 3600")
            }
            configuration.verifierTimeout = seconds
        }
    }

    /// `[scanner.NAME]` tables: command (a list: the program and its arguments), timeout,
    /// paths (what else it reads, a list of absolute paths).
    static func scanners(_ value: TOMLValue?, file: String) throws -> [Scanner] {
        try namedTables(value, "scanner", file: file, keys: ["command", "timeout", "paths"]).map { name, table in
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
            var paths: [String] = []
            if let item = table["paths"] {
                guard case let .array(items) = item else { throw Invalid(description: "\(file): scanner.\(name).paths must list absolute paths") }
                paths = try items.map { item in
                    guard case let .string(text) = item, text.hasPrefix("/"), !text.split(separator: "/").contains("..") else {
                        throw Invalid(description: "\(file): scanner.\(name).paths must list absolute paths")
                    }
                    return text
                }
            }
            return Scanner(name: name, command: command, timeout: timeout, paths: paths)
        }
    }

    /// The checks the registry applies, as its check workers receive them.
    public var checkSettings: CheckSettings {
        CheckSettings(verifier: verifier ? CheckSettings.Verifier(timeout: verifierTimeout, host: verifierHost) : nil,
                      sources: sourcesCheck ? CheckSettings.Sources() : nil,
                      scanners: scanners)
    }

    public var reviewSettings: ReviewSettings {
        var settings = ReviewSettings()
        settings.approvalsRequired = approvalsRequired
        settings.autoPublish = Set(autoPublish)
        settings.workers = checkWorkers
        return settings
    }
}
