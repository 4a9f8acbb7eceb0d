import ArgumentParser
import Foundation
import Logging
import Registry
#if canImport(Glibc)
import Glibc
#endif

/// `epr signer`: the repository's keys in a process of their own. It holds the signing
/// authority's intermediate key, the attestation key and the OCI signing key, as its own user,
/// and signs for the server (`signer` in its configuration) over a local socket: certificates,
/// revocation lists, attestations and OCI signatures, each a statement it builds and checks
/// itself, each logged.
struct SignerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "signer",
        abstract: "Hold the repository's signing keys apart from the server, and sign for it over a local socket.",
        discussion: """
            The intermediate's passphrase comes from EPR_TRUST_PASSPHRASE, read once and wiped. The attestation and OCI signing \
            keys are kept in --keys, encrypted with it. It refuses a trust directory that holds root.key. Only processes of \
            --client-user (the server's user) and of its own user are answered. Started as root, it switches to --user first.
            """)

    @Option(help: "The directory epr trust init wrote (root.crt, intermediate.crt, intermediate.key).") var trustDirectory: String
    @Option(help: "Where the attestation and OCI signing keys are kept (created, mode 0700).") var keys: String
    @Option(help: "The local socket to listen at.") var socket: String
    @Option(help: "The user the server runs as: its processes are answered.") var clientUser: String?
    @Option(help: "When started as root: the user to run as (not the server's).") var user: String?
    @Option(help: "The repository's name, as the server's repository_name.") var repositoryName = "epr"
    @Option(help: "The most days a contributor's certificate is valid, as the server's certificate_days.") var certificateDays = 365
    @Option(help: "The server's public_url, when it has one: OCI signatures name its host.") var publicURL: String?

    func validate() throws {
        guard (1...3650).contains(certificateDays) else { throw ValidationError("--certificate-days is 1 to 3650") }
    }

    /// Called while the process has one thread: gives the keys directory and the trust
    /// directory's files it reads to `--user`, and switches to it.
    func giveUpRoot() throws {
        do {
            guard let account = try ServeUser.account(named: user, allowRoot: false, command: "epr signer") else { return }
            umask(0o077)
            try ServeUser.give(dataDirectory: keys, to: account)
            // The trust directory (not what is below it but the files read) is the signer's.
            try ServeUser.give(files: [trustDirectory] + ["root.crt", "roots.pem", "intermediate.crt", "intermediate.key", "revocations.json"]
                .map { URL(fileURLWithPath: trustDirectory).appendingPathComponent($0).path }
                .filter { FileManager.default.fileExists(atPath: $0) }, to: account)
            // The socket's directory, made here when missing, is the signer's to write and
            // everyone's to pass through (connections are checked by their user).
            let socketDirectory = URL(fileURLWithPath: socket).deletingLastPathComponent().path
            if !FileManager.default.fileExists(atPath: socketDirectory) {
                try FileManager.default.createDirectory(atPath: socketDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
                try ServeUser.give(files: [socketDirectory], to: account)
            }
            try ServeUser.switchTo(account)
        } catch {
            Output.error("\(error)")
            throw ReportedFailure()
        }
    }

    func run() throws {
        umask(0o077)
        let passphrase = ProcessInfo.processInfo.environment["EPR_TRUST_PASSPHRASE"].flatMap { $0.isEmpty ? nil : $0 }
        SecretEnvironment.scrub()
        do { _ = try ServeUser.account(named: nil, allowRoot: false, command: "epr signer") } catch {
            Output.error("\(error)")
            throw ReportedFailure()
        }
        var client: uid_t?
        if let clientUser {
            guard let entry = getpwnam(clientUser) else { throw ValidationError("--client-user \(clientUser): there is no such user") }
            client = entry.pointee.pw_uid
        }
        LoggingSystem.bootstrap { label in JSONLogHandler(label: label) }
        let logger = Logger(label: "epr-signer")
        let directory = URL(fileURLWithPath: keys)
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            let held = try LocalRepositoryKeys.load(directory: URL(fileURLWithPath: trustDirectory), passphrase: passphrase, state: directory,
                                                    repository: repositoryName, logger: logger)
            let oci = try SignerService.ociKey(file: directory.appendingPathComponent("oci-signing.key"), passphrase: passphrase)
            try (try SignerService(keys: held, oci: oci, certificateDays: certificateDays, referencePrefix: OCISigner.referencePrefix(publicURL: publicURL),
                              state: directory, logger: logger)).serve(socket: socket, client: client)
        } catch {
            Output.error("\(error)")
            throw ReportedFailure()
        }
    }
}
