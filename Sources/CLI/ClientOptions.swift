import ArgumentParser
import Client
import Foundation
import PackageFormat

/// Where the registry is and how to authenticate: flags, then EPR_REGISTRY / EPR_TOKEN, then
/// the [client] table of ~/.config/epr/config.toml (or EPR_CONFIG).
struct ClientOptions: ParsableArguments {
    @Option(help: "The registry URL (EPR_REGISTRY; default http://127.0.0.1:8080).")
    var registry: String?

    @Option(help: "An API token (EPR_TOKEN).")
    var token: String?

    @Option(help: "PEM certificates of the authorities to trust for an https registry, instead of the system's (EPR_CA_BUNDLE).")
    var caBundle: String?

    @Flag(help: "Print data as JSON.")
    var json = false

    func client() throws -> RegistryClient {
        let environment = ProcessInfo.processInfo.environment
        var file: [String: String] = [:]
        let home = environment["HOME"] ?? NSHomeDirectory()
        let path = environment["EPR_CONFIG"] ?? "\(home)/.config/epr/config.toml"
        if let text = try? String(contentsOfFile: path, encoding: .utf8) {
            let document = try TOMLParser.parse(text)
            if case let .table(table)? = document["client"] {
                for key in table.keys { if case let .string(value)? = table[key] { file[key] = value } }
            }
        }
        func variable(_ name: String) -> String? { environment[name].flatMap { $0.isEmpty ? nil : $0 } }
        let url = registry ?? variable("EPR_REGISTRY") ?? file["registry"] ?? "http://127.0.0.1:8080"
        guard url.hasPrefix("http://") || url.hasPrefix("https://") else {
            throw ValidationError("the registry URL must start with http:// or https://")
        }
        let token = token ?? variable("EPR_TOKEN") ?? file["token"]
        let bundle = caBundle ?? variable("EPR_CA_BUNDLE") ?? file["ca_bundle"]
        guard url.hasPrefix("https://") || bundle != nil else { return RegistryClient(baseURL: url, token: token) }
        do {
            return RegistryClient(baseURL: url, token: token, http: try HTTPClients.trusting(bundle: bundle))
        } catch {
            throw ValidationError("the CA bundle \(bundle ?? "") cannot be used: \(error)")
        }
    }
}

/// NAME or NAME@VERSION.
struct PackageReference: ExpressibleByArgument {
    var name: String
    var version: String?

    init?(argument: String) {
        let parts = argument.split(separator: "@", maxSplits: 1).map(String.init)
        guard let first = parts.first, !first.isEmpty else { return nil }
        name = first
        version = parts.count == 2 ? parts[1] : nil
    }
}

/// A progress line on standard error, only when it is a terminal.
struct ProgressLine: Sendable {
    let label: String
    let enabled = isatty(STDERR_FILENO) == 1

    func update(_ done: Int64, _ total: Int64?) {
        guard enabled else { return }
        let mib = { (bytes: Int64) in String(format: "%.1f", Double(bytes) / 1_048_576) }
        var text = "\r\(label) \(mib(done)) MiB"
        if let total, total > 0 {
            let fraction = Double(done) / Double(total)
            let filled = Int(fraction * 30)
            text = "\r\(label) [\(String(repeating: "#", count: filled))\(String(repeating: " ", count: 30 - filled))] \(Int(fraction * 100))% \(mib(done))/\(mib(total)) MiB"
        }
        FileHandle.standardError.write(Data(text.utf8))
    }

    func finish() {
        if enabled { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

/// Runs a client call, printing the server's problem in plain words when it fails.
func reportingProblems<T>(_ body: () async throws -> T) async throws -> T {
    do {
        return try await body()
    } catch let problem as RegistryProblem {
        Output.error(problem.detail + " [\(problem.code)]")
        for finding in problem.findings { Output.error("  " + finding.description) }
        throw ReportedFailure()
    } catch let error as ClientError {
        Output.error(error.description)
        throw ReportedFailure()
    }
}
