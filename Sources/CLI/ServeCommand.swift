import ArgumentParser
import Foundation
import Hummingbird
import Logging
import Server
import ServiceLifecycle

struct ServeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve",
        abstract: "Run the registry: SQLite metadata and a content-addressed blob store under one data directory.",
        discussion: """
        Settings come from these flags, then EPR_* environment variables, then the [server] table of \
        the config file, then the defaults (docs/configuration.md). On first start with an empty data \
        directory an admin is created: its token is EPR_ADMIN_TOKEN if set, else generated and written \
        to <data>/admin-token.
        """
    )

    @Option(help: "The data directory (default: ./epr-data; EPR_DATA).")
    var data: String?

    @Option(help: "The address to listen on (default: 127.0.0.1; EPR_HOST).")
    var host: String?

    @Option(help: "The port to listen on, 0 for any free port (default: 8080; EPR_PORT).")
    var port: Int?

    @Option(help: "A TOML config file with a [server] table (EPR_CONFIG).")
    var config: String?

    @Option(help: "A PEM certificate chain: with --tls-key, serve HTTPS only (EPR_TLS_CERTIFICATE).")
    var tlsCertificate: String?

    @Option(help: "The PEM private key of --tls-certificate (EPR_TLS_KEY).")
    var tlsKey: String?

    @Option(help: "Started as root, switch to this unprivileged user once the data directory is its own (EPR_USER).")
    var user: String?

    @Flag(help: "Run as root without switching users (EPR_ALLOW_ROOT=true): only for verifier = \"host\".")
    var allowRoot = false

    /// The settings from the flags, the environment and the config file.
    func resolveConfiguration(_ environment: [String: String]) throws -> ServerConfiguration {
        var overrides: [String: String] = [:]
        if let data { overrides["data"] = data }
        if let host { overrides["host"] = host }
        if let port { overrides["port"] = String(port) }
        if let tlsCertificate { overrides["tls_certificate"] = tlsCertificate }
        if let tlsKey { overrides["tls_key"] = tlsKey }
        do {
            return try ServerConfiguration.resolve(file: config ?? environment["EPR_CONFIG"], environment: environment, overrides: overrides)
        } catch {
            Output.error("configuration: \(error)")
            throw ReportedFailure()
        }
    }

    /// Started as root: switches to the `--user` account, with the data directory and the files
    /// the server reads made its own, or refuses unless root is allowed. Called while the
    /// process has one thread (before the asynchronous runtime starts), so that the switch holds
    /// for every thread there will be.
    func giveUpRoot() throws {
        let environment = ProcessInfo.processInfo.environment
        let configuration = try resolveConfiguration(environment)
        do {
            guard let account = try ServeUser.account(named: user ?? environment["EPR_USER"].flatMap { $0.isEmpty ? nil : $0 },
                                                      allowRoot: allowRoot || environment["EPR_ALLOW_ROOT"] == "true") else { return }
            umask(0o077)
            try ServeUser.give(dataDirectory: configuration.dataDirectory, to: account)
            try ServeUser.give(files: ServeUser.filesRead(by: configuration, configFile: config ?? environment["EPR_CONFIG"]), to: account)
            try ServeUser.switchTo(account)
        } catch {
            Output.error("\(error)")
            throw ReportedFailure()
        }
    }

    func run() async throws {
        // Whatever the server makes (database, blobs, keys, scratch) is its user's alone.
        umask(0o077)
        let environment = ProcessInfo.processInfo.environment
        SecretEnvironment.scrub()
        let configuration = try resolveConfiguration(environment)
        // Still root here only when root is allowed (``giveUpRoot()`` ran before).
        do {
            _ = try ServeUser.account(named: nil, allowRoot: allowRoot || environment["EPR_ALLOW_ROOT"] == "true")
        } catch {
            Output.error("\(error)")
            throw ReportedFailure()
        }
        LoggingSystem.bootstrap { label in
            var handler = JSONLogHandler(label: label)
            handler.logLevel = Logger.Level(rawValue: configuration.logLevel) ?? .info
            return handler
        }
        let logger = Logger(label: "epr")
        if let user = getpwuid(geteuid()) { logger.notice("running as \(String(cString: user.pointee.pw_name))") }
        let server = try await RegistryServer.build(configuration: configuration, environment: environment, logger: logger)
        var group = ServiceGroupConfiguration(services: [server.application], gracefulShutdownSignals: [.sigterm, .sigint],
                                              logger: logger)
        // In-flight requests get this long to finish after SIGTERM; then the rest are cancelled.
        group.maximumGracefulShutdownDuration = .seconds(configuration.shutdownGracePeriod)
        do {
            try await ServiceGroup(configuration: group).run()
        } catch {
            try? await server.shutdown()
            throw error
        }
        try await server.shutdown()
        logger.notice("stopped")
    }
}
