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

    func run() async throws {
        // Whatever the server makes (database, blobs, keys, scratch) is its user's alone.
        umask(0o077)
        let environment = ProcessInfo.processInfo.environment
        var overrides: [String: String] = [:]
        if let data { overrides["data"] = data }
        if let host { overrides["host"] = host }
        if let port { overrides["port"] = String(port) }
        if let tlsCertificate { overrides["tls_certificate"] = tlsCertificate }
        if let tlsKey { overrides["tls_key"] = tlsKey }
        let configuration: ServerConfiguration
        do {
            configuration = try ServerConfiguration.resolve(file: config ?? environment["EPR_CONFIG"], environment: environment,
                                                            overrides: overrides)
        } catch {
            Output.error("configuration: \(error)")
            throw ReportedFailure()
        }
        LoggingSystem.bootstrap { label in
            var handler = JSONLogHandler(label: label)
            handler.logLevel = Logger.Level(rawValue: configuration.logLevel) ?? .info
            return handler
        }
        let logger = Logger(label: "epr")
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
