import ArgumentParser
import Crypto
import Foundation
import Signing
import X509

/// `epr trust rotate-intermediate` and `epr trust rotate-root`: new keys for the signing
/// authority, or for the whole trust root, with the old ones retired (and revoked when asked).
extension TrustCommand {
    struct RotateIntermediate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-intermediate",
            abstract: "Make a new signing authority under the root (needs the root's key); the old one is kept in DIR/retired.",
            discussion: """
                Certificates the old authority issued stay valid until they expire, unless --revoke-old puts it in the revocation list \
                (then every one of them stops verifying: contributors have their keys certified again). The repository takes the new \
                authority when restarted. The new key's passphrase is EPR_KEY_PASSPHRASE (or asked for); the root's, EPR_ROOT_PASSPHRASE.
                """)
        @Option(help: "The directory epr trust init wrote.") var trustDirectory: String
        @Option(help: "The root's key (default: DIR-root.key beside DIR).") var rootKey: String?
        @Flag(help: "Revoke the old authority (it was compromised), not just retire it.") var revokeOld = false
        @Option(help: "Why, when revoking.") var reason: String?

        func run() async throws {
            let directory = URL(fileURLWithPath: trustDirectory)
            let rootKeyFile = try TrustCommand.rootKey(rootKey, for: directory)
            try Rotation.requireFiles(["root.crt", "intermediate.crt", "intermediate.key"], in: directory, rootKey: rootKeyFile)
            let root = try Rotation.root(in: directory, key: rootKeyFile)
            let old = try Rotation.certificate(directory.appendingPathComponent("intermediate.crt"))
            var content = try await Rotation.currentList(in: directory)
            let fresh = try TrustRoot.intermediate(name: Rotation.organisation(of: root.certificate), by: root)
            let passphrase = try Passphrase.new(what: "the new signing authority's key")
            try Rotation.retire(["intermediate.crt", "intermediate.key"], serial: RevocationList.serial(of: old), in: directory)
            try Rotation.install(fresh, as: "intermediate", passphrase: passphrase, in: directory)
            if revokeOld { Rotation.revoke(old, reason: reason ?? "signing authority revoked", in: &content) }
            try Rotation.writeList(&content, by: fresh, in: directory)
            Output.line("new signing authority \(RevocationList.serial(of: fresh.certificate)) until \(fresh.certificate.notValidAfter.formatted(.iso8601)); "
                        + "the old one (\(RevocationList.serial(of: old))) is in \(directory.appendingPathComponent("retired").path)"
                        + (revokeOld ? " and revoked: contributors have their keys certified again" : ""))
            Output.line("restart the repository to use it; revocations.json is signed by it (number \(content.sequence))")
        }
    }

    struct RotateRoot: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-root",
            abstract: "Make a new root and signing authority; writes roots.pem (the new root and the old) for nodes during the change.",
            discussion: """
                Give nodes roots.pem, then restart the repository: packages certified under either root verify while nodes hold both. \
                Once every contributor's key is certified under the new root, give nodes root.crt alone: the old root is then trusted \
                by none. With --revoke-old the old signing authority is also listed as revoked at once. Passphrases: EPR_ROOT_PASSPHRASE \
                for the new root's key, EPR_KEY_PASSPHRASE for the new authority's (or asked for).
                """)
        @Option(help: "The directory epr trust init wrote.") var trustDirectory: String
        @Option(help: "The repository's name, in the certificates (default: the old root's).") var name: String?
        @Option(help: "The root's key (default: DIR-root.key beside DIR); the new one takes its place, the old is kept beside it.")
        var rootKey: String?
        @Flag(help: "Revoke the old signing authority (its key was compromised).") var revokeOld = false
        @Option(help: "Why, when revoking.") var reason: String?

        func run() async throws {
            let directory = URL(fileURLWithPath: trustDirectory)
            let oldRoot = try Rotation.certificate(directory.appendingPathComponent("root.crt"))
            let oldIntermediate = try Rotation.certificate(directory.appendingPathComponent("intermediate.crt"))
            var content = try await Rotation.currentList(in: directory)
            let rootKeyFile = try TrustCommand.rootKey(rootKey, for: directory)
            try Rotation.requireFiles(["root.crt", "intermediate.crt", "intermediate.key"], in: directory, rootKey: rootKeyFile)
            let (root, intermediate) = try TrustRoot.create(name: name ?? Rotation.organisation(of: oldRoot))
            let rootPassphrase = try Passphrase.new(variable: Passphrase.rootVariable, what: "the new root key")
            let passphrase = try Passphrase.new(what: "the new signing authority's key")
            let oldSerial = RevocationList.serial(of: oldRoot)
            try Rotation.retire(["root.crt"], serial: oldSerial, in: directory)
            let retiredKey = rootKeyFile.deletingLastPathComponent().appendingPathComponent(rootKeyFile.lastPathComponent + ".retired-\(oldSerial)")
            try FileManager.default.moveItem(at: rootKeyFile, to: retiredKey)
            try Rotation.retire(["intermediate.crt", "intermediate.key"], serial: RevocationList.serial(of: oldIntermediate), in: directory)
            try Rotation.install(root, as: "root", passphrase: rootPassphrase, in: directory, keyFile: rootKeyFile)
            try Rotation.install(intermediate, as: "intermediate", passphrase: passphrase, in: directory)
            try TrustRoot.pem([root.certificate, oldRoot]).write(to: directory.appendingPathComponent("roots.pem"), atomically: true, encoding: .utf8)
            if revokeOld { Rotation.revoke(oldIntermediate, reason: reason ?? "signing authority revoked", in: &content) }
            try Rotation.writeList(&content, by: intermediate, in: directory)
            Output.line("new root \(directory.appendingPathComponent("root.crt").path) and signing authority; "
                        + "give nodes \(directory.appendingPathComponent("roots.pem").path) (new and old roots) before restarting the repository")
        }
    }
}

enum Rotation {
    static func certificate(_ file: URL) throws -> Certificate {
        guard let certificate = try TrustRoot.certificates(pem: String(contentsOf: file, encoding: .utf8)).first else {
            throw ValidationError("\(file.path) holds no certificate")
        }
        return certificate
    }

    /// The root, its key (in `file`) opened with the root's passphrase.
    static func root(in directory: URL, key file: URL) throws -> TrustRoot.Authority {
        let certificate = try certificate(directory.appendingPathComponent("root.crt"))
        let key = try Passphrase.openKey(at: file.path, variable: Passphrase.rootVariable)
        guard P256.Signing.PublicKey(certificate.publicKey)?.rawRepresentation == key.publicKey.rawRepresentation else {
            throw ValidationError("\(file.path) is not the key of root.crt")
        }
        return TrustRoot.Authority(certificate: certificate, key: key)
    }

    /// The organisation a certificate's subject names (what `epr trust init --name` gave).
    static func organisation(of certificate: Certificate) -> String {
        for rdn in certificate.subject {
            for attribute in rdn where attribute.type == .RDNAttributeType.organizationName {
                let text = "\(attribute.value)"
                if !text.isEmpty { return text }
            }
        }
        return "epr"
    }

    /// The revocation list of the directory, verified to its roots (a list that does not verify
    /// would lose its revocations in the new one).
    static func currentList(in directory: URL) async throws -> RevocationList.Content {
        let file = directory.appendingPathComponent("revocations.json")
        let rootsFile = FileManager.default.fileExists(atPath: directory.appendingPathComponent("roots.pem").path) ? "roots.pem" : "root.crt"
        let roots = try TrustRoot.certificates(pem: String(contentsOf: directory.appendingPathComponent(rootsFile), encoding: .utf8))
        do {
            let current = try JSONDecoder().decode(RevocationList.self, from: Data(contentsOf: file))
            return try await current.verifiedContent(roots: roots, at: current.signedTime)
        } catch {
            throw ValidationError("\(file.path) is not a revocation list of this authority (\(error)); restore it first")
        }
    }

    /// Refuses to begin unless every file to be retired is there, so a rotation never stops
    /// half-way for want of one.
    static func requireFiles(_ files: [String], in directory: URL, rootKey: URL) throws {
        for file in files where !FileManager.default.fileExists(atPath: directory.appendingPathComponent(file).path) {
            throw ValidationError("\(directory.appendingPathComponent(file).path) is missing; nothing was changed")
        }
        guard FileManager.default.fileExists(atPath: rootKey.path) else {
            let inside = directory.appendingPathComponent("root.key").path
            throw ValidationError("the root's key \(rootKey.path) is missing; nothing was changed"
                                  + (FileManager.default.fileExists(atPath: inside) ? " (move \(inside) there: it is kept out of the trust directory)" : ""))
        }
    }

    /// Moves files into `retired/`, named by the certificate's serial.
    static func retire(_ files: [String], serial: String, in directory: URL) throws {
        let retired = directory.appendingPathComponent("retired")
        try FileManager.default.createDirectory(at: retired, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        for file in files {
            let parts = file.split(separator: ".")
            try FileManager.default.moveItem(at: directory.appendingPathComponent(file),
                                             to: retired.appendingPathComponent("\(parts[0])-\(serial).\(parts[1])"))
        }
    }

    static func install(_ authority: TrustRoot.Authority, as name: String, passphrase: String, in directory: URL, keyFile: URL? = nil) throws {
        try SecretFile.write(try EncryptedPrivateKey.seal(pkcs8: Array(authority.key.derRepresentation), passphrase: passphrase),
                             to: (keyFile ?? directory.appendingPathComponent("\(name).key")).path)
        try TrustRoot.pem([authority.certificate]).write(to: directory.appendingPathComponent("\(name).crt"), atomically: true, encoding: .utf8)
    }

    static func revoke(_ certificate: Certificate, reason: String, in content: inout RevocationList.Content) {
        guard content.entry(for: certificate) == nil else { return }
        content.revoked.append(.init(serial: RevocationList.serial(of: certificate),
                                     key_id: P256.Signing.PublicKey(certificate.publicKey).map(SigningKeys.keyID), revoked_at: Date(), reason: reason))
    }

    /// Signs the list anew (the next number, a fresh expiry) and writes it.
    static func writeList(_ content: inout RevocationList.Content, by authority: TrustRoot.Authority, in directory: URL) throws {
        content.sequence = RevocationList.nextSequence(after: content.sequence)
        content.updated = Date()
        content.expires = Date().addingTimeInterval(Double(RevocationList.lifetimeDays) * 86400)
        try RevocationList.write(content, by: authority, to: directory.appendingPathComponent("revocations.json"))
    }
}
