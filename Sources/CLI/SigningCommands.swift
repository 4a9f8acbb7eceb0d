import ArgumentParser
import Crypto
import Foundation
#if canImport(Glibc)
import Glibc
#endif
import PackageFormat
import Registry
import Signing
import X509

/// `epr key ...`: contributors' signing keys, made and kept on their own machines.
struct KeyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "key", abstract: "Make and show ECDSA P-256 signing keys (the private key never leaves this machine).",
        subcommands: [Generate.self, Public.self, Certify.self, List.self, Revoke.self])

    struct Generate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a signing key: NAME.key (PKCS#8, encrypted with a passphrase, mode 0600) and NAME.pub (PEM public key).",
            discussion: "The passphrase comes from EPR_KEY_PASSPHRASE, or is asked for twice on the terminal.")
        @Option(name: .shortAndLong, help: "The directory to write the key files into.") var output = "."
        @Option(help: "The files' base name.") var name = "epr-signing"
        @Flag(help: "Print the key's id and files as JSON.") var json = false

        func run() throws {
            let passphrase = try Passphrase.new()
            let (key, pem) = try SigningKeys.generate(passphrase: passphrase)
            let directory = URL(fileURLWithPath: output)
            let privatePath = directory.appendingPathComponent("\(name).key").path, publicPath = directory.appendingPathComponent("\(name).pub").path
            for path in [privatePath, publicPath] where FileManager.default.fileExists(atPath: path) {
                throw ValidationError("\(path) exists already; choose another --name or directory")
            }
            try SecretFile.write(pem, to: privatePath)
            try key.publicKey.pemRepresentation.appending("\n").write(toFile: publicPath, atomically: true, encoding: .utf8)
            let id = SigningKeys.keyID(key.publicKey)
            if json { try Output.json(["key_id": id, "private_key": privatePath, "public_key": publicPath]); return }
            Output.line("key \(id)\n  private \(privatePath) (encrypted; keep it, and its passphrase, to yourself)\n  public  \(publicPath)")
        }
    }

    struct Public: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the PEM public key (and its id) of a private key.")
        @Argument(help: "The private key file.") var key: String

        func run() throws {
            let privateKey = try Passphrase.openKey(at: key)
            Output.line(privateKey.publicKey.pemRepresentation)
            FileHandle.standardError.write(Data("key id \(SigningKeys.keyID(privateKey.publicKey))\n".utf8))
        }
    }
}

/// `epr sign FILE`: a detached signature over the archive and every file in it.
struct SignCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sign", abstract: "Sign a package archive: writes FILE.sig, a DSSE envelope over an in-toto statement of its digests.")
    @Argument(help: "The package archive (.tar.gz).") var file: String
    @Option(help: "The private key (from epr key generate).") var key: String
    @Option(help: "The key's certificate chain (PEM, leaf first), to carry in the signature.") var certificate: String?
    @Option(name: .shortAndLong, help: "Where to write the signature (default: FILE.sig).") var output: String?

    func run() throws {
        let report = try Inspection.report(file)
        guard report.isValid else {
            throw ValidationError("the package is invalid (epr inspect says why); it is not signed")
        }
        let chain = try certificate.map { try TrustRoot.certificates(pem: String(contentsOfFile: $0, encoding: .utf8)) }
        let signature = try PackageSignature.sign(report, with: try Passphrase.openKey(at: key), certificates: chain)
        let destination = output ?? file + ".sig"
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try (encoder.encode(signature) + Data("\n".utf8)).write(to: URL(fileURLWithPath: destination), options: .atomic)
        Output.line("signed \(file) with key \(signature.signatures[0].keyid): \(destination)")
    }
}

/// `epr verify FILE --key PUB`: is the package exactly what the key's holder signed?
struct VerifyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify", abstract: "Check a package archive against its signature: with a public key, or in trusted mode against the repository's root.",
        discussion: """
            Trusted mode (--trusted-root) checks the whole chain a node checks: the signer's certificate chains to the root and \
            allows the package, nothing of it is revoked (--revocations), the signature and every digest match, and the \
            repository attested the version (FILE.attestation, or --attestation). --signature-only leaves the attestation out, \
            to check a signature before publishing. Exits with status 1, naming the link that failed.
            """)
    @Argument(help: "The package archive (.tar.gz).") var file: String
    @Option(help: "The signature (default: FILE.sig).") var signature: String?
    @Option(help: "The signer's PEM public key (to check a signature without certificates).") var key: String?
    @Option(help: "The repository's root certificate: the signer's certificate must chain to it and allow this package.")
    var trustedRoot: String?
    @Option(help: "The signing authority's revocation list (with --trusted-root).") var revocations: String?
    @Option(help: "The repository's attestation (default: FILE.attestation; with --trusted-root).") var attestation: String?
    @Flag(help: "With --trusted-root, check the signature alone, without the repository's attestation.") var signatureOnly = false
    @Flag(help: "Print the result as JSON.") var json = false

    func validate() throws {
        guard (key == nil) != (trustedRoot == nil) else { throw ValidationError("give either --key or --trusted-root") }
        if revocations != nil || attestation != nil || signatureOnly, trustedRoot == nil {
            throw ValidationError("--revocations, --attestation and --signature-only go with --trusted-root")
        }
    }

    func run() async throws {
        let signaturePath = signature ?? file + ".sig"
        let envelope: PackageSignature
        do { envelope = try JSONDecoder().decode(PackageSignature.self, from: Data(contentsOf: URL(fileURLWithPath: signaturePath))) } catch {
            try refuse(PackageSignature.Failure.malformedEnvelope("\(signaturePath): \(error)").description)
        }
        let report = try Inspection.report(file)
        do {
            let statement: PackageSignature.Statement, signer: String
            var notes: [String: String] = [:]
            if let trustedRoot {
                let anchors = try await TrustAnchors.load(root: trustedRoot, revocations: revocations)
                let attestationPath = attestation ?? file + ".attestation"
                var attested: RepositoryAttestation?
                if !signatureOnly, FileManager.default.fileExists(atPath: attestationPath) {
                    do { attested = try JSONDecoder().decode(RepositoryAttestation.self, from: Data(contentsOf: URL(fileURLWithPath: attestationPath))) } catch {
                        try refuse("the attestation \(attestationPath) cannot be read: \(error)")
                    }
                }
                let result: VerifiedPackage
                do {
                    result = try await TrustedVerification.verify(archive: URL(fileURLWithPath: file), expected: nil, signature: envelope,
                                                                  attestation: attested, anchors: anchors, requireAttestation: !signatureOnly)
                } catch {
                    try refuse(error.reason)
                }
                // The signature verified with the certified key: the statement is the signed one.
                guard let signed = envelope.claimedStatement() else { try refuse("the statement cannot be read") }
                statement = signed
                signer = result.signer
                if let attested = result.attestation { notes["attested_by"] = attested.repository }
                notes["revocations_checked"] = anchors.revocations == nil ? "false" : "true"
            } else {
                let publicKey: P256.Signing.PublicKey
                do { publicKey = try SigningKeys.publicKey(pem: String(contentsOfFile: key ?? "", encoding: .utf8)) } catch {
                    throw TrustRoot.Failure.invalid("\(key ?? ""): \(error)")
                }
                statement = try envelope.verify(report, key: publicKey)
                signer = "key \(SigningKeys.keyID(publicKey))"
            }
            if json {
                try Output.json(["verified": "true", "package": statement.predicate.package, "version": statement.predicate.version,
                                 "signer": signer, "files": String(statement.subject.count - 1)].merging(notes) { $1 })
                return
            }
            Output.line("verified: \(statement.predicate.package) \(statement.predicate.version), the archive and its "
                        + "\(statement.subject.count - 1) files, signed by \(signer)"
                        + (notes["attested_by"].map { ", attested by the repository \($0)" } ?? "")
                        + (notes["revocations_checked"] == "false" ? " (revocations not checked: give --revocations)" : ""))
        } catch let failure as PackageSignature.Failure {
            try refuse(failure.description)
        } catch let failure as TrustRoot.Failure {
            try refuse(failure.description)
        }
    }

    func refuse(_ reason: String) throws -> Never {
        if json { try Output.json(["verified": "false", "reason": reason]) } else { Output.error("\(file): not verified: \(reason)") }
        throw ReportedFailure()
    }
}

enum Inspection {
    /// The archive's inspection report, or a failure naming what is wrong with the archive.
    static func report(_ file: String) throws -> PackageReport {
        do { return try PackageInspector().inspect(path: file) } catch {
            Output.error("\(file): \(error.description) [\(error.code)]")
            throw ReportedFailure()
        }
    }
}

/// `epr trust ...`: the repository's certificate authority.
struct TrustCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trust", abstract: "Make the repository's root and signing authority, and certify contributors' keys.",
        subcommands: [Initialise.self, Certify.self, Revoke.self, RotateIntermediate.self, RotateRoot.self])

    struct Initialise: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "init",
            abstract: "Make a root certificate and an intermediate signing authority: root.crt, intermediate.crt, intermediate.key, and the root's key apart.",
            discussion: """
                The intermediate's key is encrypted with EPR_KEY_PASSPHRASE (or one asked for), the root's with EPR_ROOT_PASSPHRASE when \
                set (else the same one). The root's key is written outside the directory (--root-key, by default DIR-root.key beside \
                DIR): the repository refuses a trust directory that holds it. Keep it offline: it is needed only to make a new \
                intermediate or root.
                """)
        @Option(name: .shortAndLong, help: "The directory to write into (created; must not hold a root already).") var output: String
        @Option(help: "The repository's name, in the certificates.") var name = "epr"
        @Option(help: "Where to write the root's key (default: DIR-root.key beside DIR).") var rootKey: String?

        func run() throws {
            let directory = URL(fileURLWithPath: output)
            let rootKeyFile = try TrustCommand.rootKey(rootKey, for: directory)
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            try FileManager.default.createDirectory(at: rootKeyFile.deletingLastPathComponent(), withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
            for file in ["root.key", "root.crt", "intermediate.key", "intermediate.crt", "revocations.json"]
            where FileManager.default.fileExists(atPath: directory.appendingPathComponent(file).path) {
                throw ValidationError("\(directory.appendingPathComponent(file).path) exists: \(output) holds a trust root already")
            }
            if FileManager.default.fileExists(atPath: rootKeyFile.path) {
                throw ValidationError("\(rootKeyFile.path) exists: a root's key is there already")
            }
            let passphrase = try Passphrase.new(what: "the signing authority's key")
            // The root's own passphrase when one is given (EPR_ROOT_PASSPHRASE), else the same.
            let rootPassphrase = ProcessInfo.processInfo.environment[Passphrase.rootVariable].flatMap { $0.isEmpty ? nil : $0 } != nil
                ? try Passphrase.new(variable: Passphrase.rootVariable, what: "the root key") : passphrase
            let (root, intermediate) = try TrustRoot.create(name: name)
            for (file, authority, secret) in [("root", root, rootPassphrase), ("intermediate", intermediate, passphrase)] {
                let keyFile = file == "root" ? rootKeyFile : directory.appendingPathComponent("\(file).key")
                try SecretFile.write(try EncryptedPrivateKey.seal(pkcs8: Array(authority.key.derRepresentation), passphrase: secret), to: keyFile.path)
                try TrustRoot.pem([authority.certificate]).write(to: directory.appendingPathComponent("\(file).crt"), atomically: true, encoding: .utf8)
            }
            // An empty revocation list to begin with, so nodes have one to check from the start.
            try RevocationList.write(RevocationList.Content(sequence: RevocationList.nextSequence(after: 0), updated: Date(), expires: Date().addingTimeInterval(Double(RevocationList.lifetimeDays) * 86400),
                                                            revoked: []), by: intermediate, to: directory.appendingPathComponent("revocations.json"))
            Output.line("root \(directory.appendingPathComponent("root.crt").path) (give this to nodes in trusted mode)\n"
                        + "signing authority \(directory.appendingPathComponent("intermediate.crt").path)\n"
                        + "root key \(rootKeyFile.path) (keep it offline: only rotations need it)")
        }
    }

    struct Certify: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Certify a contributor's public key for some packages with the signing authority: prints the certificate chain.")
        @Argument(help: "The contributor's PEM public key.") var publicKey: String
        @Option(help: "The directory epr trust init wrote.") var trustDirectory: String
        @Option(help: "The contributor's user name.") var user: String
        @Option(help: "A package name or pattern (l3af-*) the key may sign; repeat for more.") var package: [String] = []
        @Option(help: "Days the certificate is valid.") var days = 365
        @Option(name: .shortAndLong, help: "Write the chain here instead of printing it.") var output: String?

        func run() throws {
            guard (1...3650).contains(days) else { throw ValidationError("--days is 1 to 3650") }
            let authority = try TrustCommand.authority(in: URL(fileURLWithPath: trustDirectory))
            let key = try SigningKeys.publicKey(pem: String(contentsOfFile: publicKey, encoding: .utf8))
            let certificate = try TrustRoot.certify(key, user: user, packages: package, days: days, by: authority)
            let chain = try TrustRoot.pem([certificate, authority.certificate])
            if let output { try chain.write(toFile: output, atomically: true, encoding: String.Encoding.utf8) } else { Output.line(chain) }
        }
    }
}

extension TrustCommand {
    /// Where the root's key of the trust directory `directory` is: `given`, or DIR-root.key
    /// beside the directory; never inside it.
    static func rootKey(_ given: String?, for directory: URL) throws -> URL {
        let directory = directory.standardizedFileURL
        let file = given.map { URL(fileURLWithPath: $0).standardizedFileURL }
            ?? directory.deletingLastPathComponent().appendingPathComponent(directory.lastPathComponent + "-root.key")
        guard !file.path.hasPrefix(directory.path + "/") else {
            throw ValidationError("\(file.path) is inside \(directory.path): the root's key is kept apart from the directory the repository reads")
        }
        return file
    }

    /// The signing authority epr trust init wrote into `directory` (its key asks for the passphrase).
    static func authority(in directory: URL) throws -> TrustRoot.Authority {
        TrustRoot.Authority(
            certificate: try Certificate(pemEncoded: String(contentsOf: directory.appendingPathComponent("intermediate.crt"), encoding: .utf8)),
            key: try Passphrase.openKey(at: directory.appendingPathComponent("intermediate.key").path))
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Revoke a contributor's certificate: adds it to the signed revocation list DIR/revocations.json.")
        @Option(help: "The directory epr trust init wrote.") var trustDirectory: String
        @Option(help: "The certificate to revoke (PEM; the first of a chain).") var certificate: String
        @Option(help: "Why.") var reason: String?

        func run() async throws {
            let directory = URL(fileURLWithPath: trustDirectory)
            let authority = try TrustCommand.authority(in: directory)
            guard let revoked = try TrustRoot.certificates(pem: String(contentsOfFile: certificate, encoding: .utf8)).first else {
                throw ValidationError("\(certificate) holds no certificate")
            }
            let file = directory.appendingPathComponent("revocations.json")
            // The current list must be the authority's own: a damaged or replaced one would
            // otherwise lose every revocation in it.
            let roots = try TrustRoot.certificates(pem: String(contentsOf: directory.appendingPathComponent("root.crt"), encoding: .utf8))
            var content: RevocationList.Content
            do {
                let current = try JSONDecoder().decode(RevocationList.self, from: Data(contentsOf: file))
                content = try await current.verifiedContent(roots: roots, at: current.signedTime)
            } catch {
                throw ValidationError("\(file.path) is not a revocation list of this authority (\(error)); restore it before revoking")
            }
            if content.entry(for: revoked) == nil {
                content.revoked.append(.init(serial: RevocationList.serial(of: revoked),
                                             key_id: P256.Signing.PublicKey(revoked.publicKey).map(SigningKeys.keyID), revoked_at: Date(), reason: reason))
            }
            content.sequence = RevocationList.nextSequence(after: content.sequence)
            content.updated = Date()
            content.expires = Date().addingTimeInterval(Double(RevocationList.lifetimeDays) * 86400)
            try RevocationList.write(content, by: authority, to: file)
            let serial = RevocationList.serial(of: revoked)
            Output.line("revoked \(serial) and its key; \(file.path) (number \(content.sequence), good for \(RevocationList.lifetimeDays) days) "
                        + "lists \(content.revoked.count) certificate(s): give it to nodes in trusted mode")
        }
    }
}

/// Passphrases of signing keys: EPR_KEY_PASSPHRASE, or the terminal. The root's key has its
/// own: EPR_ROOT_PASSPHRASE (or the terminal), so that what unlocks the online intermediate
/// does not unlock the offline root.
enum Passphrase {
    static let keyVariable = "EPR_KEY_PASSPHRASE", rootVariable = "EPR_ROOT_PASSPHRASE"

    static func new(variable: String = keyVariable, what: String = "the new key") throws -> String {
        if let given = ProcessInfo.processInfo.environment[variable], !given.isEmpty {
            if let problem = check(given) { throw ValidationError(problem) }
            return given
        }
        let first = try Prompt.secret("Passphrase for \(what): ")
        if let problem = check(first) { throw ValidationError(problem) }
        if isatty(STDIN_FILENO) == 1, try Prompt.secret("Again: ") != first { throw ValidationError("the passphrases differ") }
        return first
    }

    /// Why a passphrase is too weak, if it is.
    static func check(_ passphrase: String) -> String? {
        passphrase.count < 10 ? "a passphrase needs at least 10 characters" : nil
    }

    static func openKey(at path: String, variable: String = keyVariable) throws -> P256.Signing.PrivateKey {
        let pem = try String(contentsOfFile: path, encoding: .utf8)
        guard pem.contains("ENCRYPTED PRIVATE KEY") else { return try SigningKeys.privateKey(pem: pem, passphrase: nil) }
        let given = ProcessInfo.processInfo.environment[variable].flatMap { $0.isEmpty ? nil : $0 }
        let passphrase = try given ?? Prompt.secret("Passphrase for \(path): ")
        return try SigningKeys.privateKey(pem: pem, passphrase: passphrase)
    }
}

/// Files readable by their owner only, from the first byte, never written over.
enum SecretFile {
    static func write(_ text: String, to path: String) throws {
        do { try SecretFiles.save(text, to: path, exclusive: true) } catch {
            throw ValidationError("cannot create \(path): \(error.localizedDescription)")
        }
    }
}
