import Checks
import Foundation
import Hummingbird
import Logging
import NIOPosix
import NIOSSL
import PackageFormat
import Registry
import Signing
import Storage

/// The running registry: its application and the pieces tests and commands need.
public struct RegistryServer {
    public let application: Application<RouterResponder<RegistryRequestContext>>
    public let registry: RegistryService
    /// A generated admin token, when this start created the admin (also written to `<data>/admin-token`).
    public let generatedAdminToken: String?
    /// Every route, as `METHOD /path` with `:parameters`.
    public let routes: [String]
    /// The descriptor holding the data directory's lock.
    let lock: Int32
    /// Event loops of its own, when configured with a thread count.
    let group: MultiThreadedEventLoopGroup?
    /// The background check workers and webhook deliveries.
    let background: [Task<Void, Never>]

    /// Stops the background work, closes the metadata store and releases the data directory.
    public func shutdown() async throws {
        defer { close(lock) }
        for task in background { task.cancel() }
        for task in background { await task.value }
        do {
            try await registry.metadata.close()
        } catch {
            try? await group?.shutdownGracefully()
            throw error
        }
        try await group?.shutdownGracefully()
    }
}

extension RegistryServer {
    /// The single wiring point: opens the data directory (SQLite metadata and a
    /// content-addressed file blob store), sweeps leftovers of a crash, creates the admin on
    /// first start, and builds the router.
    public static func build(configuration: ServerConfiguration, environment: [String: String], logger: Logger) async throws -> RegistryServer {
        let supplied = environment["EPR_ADMIN_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        let data = URL(fileURLWithPath: configuration.dataDirectory)
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try DataDirectoryModes.enforce(data)
        let lock = try DataDirectoryLock.acquire(data)
        let metadata = try await SQLiteMetadataStore.open(path: data.appendingPathComponent("epr.sqlite").path, logger: logger)
        try await metadata.migrate()
        let blobs = try FileBlobStore(root: data)
        var registry = RegistryService(metadata: metadata, accounts: metadata, blobs: blobs, logger: logger)
        registry.limits = RateLimits(tokenRequestsPerMinute: configuration.tokenRequestsPerMinute, publishesPerHour: configuration.publishesPerHour,
                                     authFailuresBeforeLockout: configuration.authFailuresBeforeLockout)
        registry.signIn = configuration.signInSettings
        registry.checks = configuration.checkSettings
        registry.checkProcess = CheckProcess(machine: URL(fileURLWithPath: configuration.verifierMachine))
        registry.checkProcess.forbidden = [data.path]
        registry.review = configuration.reviewSettings
        registry.scratch = data.appendingPathComponent("checks")
        registry.requireSignatures = configuration.requireSignatures
        registry.rebuildSources = configuration.rebuildSources
        registry.ociPushQuota = configuration.ociPushQuota > 0 ? configuration.ociPushQuota : nil
        _ = try await registry.sweep()
        let ociTokens: OCITokens
        do {
            let host: String? = OCISigner.referencePrefix(publicURL: configuration.publicURL)
            if let socket = configuration.signer {
                // The keys are the signer's: the server holds none of them.
                let (authority, oci) = try await Self.reachSigner(socket, referencePrefix: host ?? "", logger: logger)
                registry.signing = authority
                registry.ociSigner = oci
            } else {
                // Encrypted with the signing authority's passphrase when there is one.
                let passphrase = configuration.trustDirectory == nil ? nil : environment["EPR_TRUST_PASSPHRASE"].flatMap { $0.isEmpty ? nil : $0 }
                registry.ociSigner = try OCISigner.load(file: data.appendingPathComponent("oci-signing.key"), referencePrefix: host ?? "",
                                                        passphrase: passphrase)
            }
            ociTokens = try OCITokens.load(file: data.appendingPathComponent("oci-token.key"))
        } catch {
            try? await metadata.close()
            close(lock)
            throw error
        }
        if configuration.trustDirectory != nil || configuration.signer != nil {
            do {
                registry.signing = try await Self.signingAuthority(directory: configuration.trustDirectory.map { URL(fileURLWithPath: $0) },
                                                                   configuration: configuration, environment: environment, data: data,
                                                                   registry: registry, logger: logger)
            } catch {
                try? await metadata.close()
                close(lock)
                throw error
            }
        }

        var generated: String?
        let file = data.appendingPathComponent("admin-token")
        let bootstrap: RegistryService.AdminBootstrap
        do {
            bootstrap = try await registry.bootstrapAdmin(token: supplied, persist: { try Self.writeSecret($0 + "\n", to: file.path) })
        } catch {
            try? await metadata.close()
            close(lock)
            throw error
        }
        switch bootstrap {
        case let .generated(token):
            logger.notice("created the admin; its token is in the file named here until it is first used", metadata: ["file": "\(file.path)"])
            registry.adminTokenFile.set(file.path)
            generated = token
        case .created:
            logger.notice("created the admin with the token from EPR_ADMIN_TOKEN")
        case .existing:
            if supplied != nil { logger.info("an admin exists already; EPR_ADMIN_TOKEN is only used on first start") }
            // A token file left by an earlier start goes once the token is used.
            if FileManager.default.fileExists(atPath: file.path) { registry.adminTokenFile.set(file.path) }
        }

        let tls: NIOSSLContext?
        do {
            tls = try configuration.tlsCertificate.map { try TransportSecurity.context(certificate: $0, key: configuration.tlsKey ?? "") }
        } catch {
            try? await metadata.close()
            close(lock)
            throw error
        }
        let securityHeaders = TransportSecurity.headers(tls: tls != nil, hstsMaxAge: configuration.hstsMaxAge)
        let metrics = ServerMetrics()
        // HEAD is answered wherever GET is, with the same headers and no body.
        let router = Router(context: RegistryRequestContext.self, options: .autoGenerateHeadEndpoints)
        router.add(middleware: MetricsMiddleware(metrics: metrics))
        router.add(middleware: SecurityHeadersMiddleware(fields: securityHeaders))
        router.add(middleware: ProblemMiddleware())
        OperationsRoutes(registry: registry, metrics: metrics).add(to: router)
        let blobCache = MemoryCache<SHA256Digest>(capacity: Int(configuration.blobCacheSize), largestEntry: 8 << 20)
        let front = FrontCache(registry: registry, capacity: Int(clamping: configuration.answerCacheSize))
        let authenticator = Authenticator(registry: registry, trustedProxies: Set(configuration.trustedProxies),
                                          cookies: SessionCookies(secure: configuration.secureCookies, lifetime: TimeInterval(configuration.sessionHours) * 3600))
        PackageRoutes(registry: registry, configuration: configuration, authenticator: authenticator, metrics: metrics, front: front).add(to: router)
        let downloads = DownloadRoutes(registry: registry, metrics: metrics, blobCache: blobCache, front: front)
        downloads.add(to: router)
        OCIRoutes(registry: registry, authenticator: authenticator, downloads: downloads, front: front, tokens: ociTokens,
                  configuration: configuration, tls: tls != nil).add(to: router)
        AccountRoutes(registry: registry, authenticator: authenticator).add(to: router)
        SessionRoutes(registry: registry, authenticator: authenticator).add(to: router)
        OrganisationRoutes(registry: registry, authenticator: authenticator).add(to: router)
        TrustRoutes(registry: registry, authenticator: authenticator).add(to: router)
        BuildRoutes(registry: registry, authenticator: authenticator, configuration: configuration).add(to: router)
        CheckJobRoutes(registry: registry, authenticator: authenticator).add(to: router)
        let webhooks = WebhookDispatcher(
            webhooks: configuration.webhooks.map { .init(name: $0.name, url: $0.url, secret: $0.secret, events: $0.events.map(Set.init)) },
            registry: registry, store: metadata, http: .shared, logger: logger)
        SubmissionRoutes(registry: registry, authenticator: authenticator, metrics: metrics, webhooks: webhooks).add(to: router)
        OIDCRoutes(registry: registry, authenticator: authenticator, directory: OIDCDirectory(providers: configuration.oidcProviders),
                   flows: OIDCFlows(), publicURL: configuration.publicURL, tls: tls != nil).add(to: router)
        let routes = router.routes.map { "\($0.method) \($0.path)" }

        let group = configuration.threads == 0 ? nil : MultiThreadedEventLoopGroup(numberOfThreads: configuration.threads)
        let application = Application(
            router: router,
            server: .registry(cache: front, metrics: metrics, serverName: Self.serverName, tls: tls, extraHeaders: securityHeaders,
                              limits: configuration.connections),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: Self.serverName),
            onServerRunning: { channel in
                logger.notice("listening", metadata: ["address": "\(channel.localAddress.map { "\($0)" } ?? "?")",
                                                      "scheme": "\(tls == nil ? "http" : "https")"])
            },
            eventLoopGroupProvider: group.map { .shared($0) } ?? .singleton,
            logger: logger)
        // The data directory's lock makes this process the only worker of its store.
        // With no check workers of its own, the jobs' leases are its workers' elsewhere.
        let runner = configuration.checkWorkers > 0 ? CheckRunner(registry: registry) : nil, attesting = registry
        var background = [Task { await webhooks.run() }, Task { await attesting.runAttestations() }, Task { await attesting.runOCIPublication() }]
        if let runner { background.append(Task { await runner.run(exclusive: true) }) }
        return RegistryServer(application: application, registry: registry, generatedAdminToken: generated, routes: routes, lock: lock,
                              group: group, background: background)
    }

    static let serverName = "epr"

    /// Loads the signing authority and brings in the revocations its directory lists.
    static func signingAuthority(directory: URL?, configuration: ServerConfiguration, environment: [String: String], data: URL,
                                 registry: RegistryService, logger: Logger) async throws -> SigningAuthority {
        let authority: SigningAuthority
        if let directory {
            authority = try SigningAuthority.load(
                directory: directory, passphrase: environment["EPR_TRUST_PASSPHRASE"].flatMap { $0.isEmpty ? nil : $0 }, state: data,
                repository: configuration.repositoryName, certificateDays: configuration.certificateDays, logger: logger)
        } else if let signing = registry.signing {
            authority = signing
        } else {
            throw SigningAuthority.LoadError.invalid("no signing authority")
        }
        if let (list, content) = try await authority.offlineRevocations() {
            try await registry.importRevocations(list, content: content)
        }
        // A new attestation key (renewed, or under a new authority) attests everything again.
        let again = try await registry.trust.requestAttestations(unlessSignedBy: authority.attestationKeyID)
        if again > 0 { logger.notice("attesting published versions again with the current attestation key", metadata: ["versions": "\(again)"]) }
        logger.notice("signing authority loaded", metadata: [
            "intermediate": "\(authority.intermediateCertificate.subject)", "until": "\(authority.intermediateCertificate.notValidAfter)",
            "require_signatures": "\(configuration.requireSignatures)"])
        return authority
    }

    static func writeSecret(_ text: String, to path: String) throws { try SecretFiles.save(text, to: path) }

    /// The signer's authority, waiting up to 30 seconds for a signer that is still starting
    /// (decrypting its keys) to listen.
    static func reachSigner(_ socket: String, referencePrefix: String, logger: Logger) async throws -> (SigningAuthority, OCISigner) {
        let deadline = ContinuousClock.now + .seconds(30)
        var said = false
        while true {
            do {
                return try SignerClient(path: socket).authority(referencePrefix: referencePrefix)
            } catch let failure as SignerClient.Failure {
                throw failure
            } catch {
                guard ContinuousClock.now < deadline else { throw error }
                if !said { logger.notice("waiting for the signer", metadata: ["socket": "\(socket)", "error": "\(error)"]) }
                said = true
                try await Task.sleep(for: .milliseconds(250))
            }
        }
    }
}
