import Crypto
import Foundation
import Logging
import NIOConcurrencyHelpers
import Signing
import X509

/// The repository's online signing authority: the intermediate certificate and key `epr trust
/// init` made (the root stays offline; only its certificate is here), and the key the
/// repository attests publications with, certified by that intermediate.
public struct SigningAuthority: Sendable {
    /// The repository's name, in its attestation certificate (`epr-repository:NAME`).
    public var repository: String
    public var roots: [Certificate]
    public var intermediate: TrustRoot.Authority
    public var attestationKey: P256.Signing.PrivateKey
    /// The attestation key's certificate, then the intermediate's.
    public var attestationChain: [Certificate]
    /// Days a contributor's certificate is valid.
    public var certificateDays: Int
    /// The directory it was loaded from, whose revocation list (kept by the authority's own
    /// tools) the repository takes in.
    public var directory: URL?
    /// Where the attestation key is kept (the data directory).
    public var state: URL?

    public init(repository: String, roots: [Certificate], intermediate: TrustRoot.Authority, attestationKey: P256.Signing.PrivateKey,
                attestationChain: [Certificate], certificateDays: Int, directory: URL? = nil, state: URL? = nil) {
        self.directory = directory
        self.state = state
        self.repository = repository
        self.roots = roots
        self.intermediate = intermediate
        self.attestationKey = attestationKey
        self.attestationChain = attestationChain
        self.certificateDays = certificateDays
    }

    public enum LoadError: Error, CustomStringConvertible {
        case missing(String)
        case invalid(String)
        public var description: String {
            switch self {
            case let .missing(what): "the trust directory lacks \(what) (epr trust init writes it)"
            case let .invalid(reason): reason
            }
        }
    }

    /// Loads the authority from `directory` (root.crt, intermediate.crt, intermediate.key,
    /// decrypted with `passphrase` when encrypted), and the attestation key kept in `state`
    /// (attestation.key and attestation.crt), made and certified anew when missing, issued by
    /// another intermediate, or within 30 days of its end.
    public static func load(directory: URL, passphrase: String?, state: URL, repository: String, certificateDays: Int,
                            now: Date = Date(), logger: Logger) throws -> SigningAuthority {
        func read(_ name: String) throws -> String {
            let url = directory.appendingPathComponent(name)
            guard let text = try? String(contentsOf: url, encoding: .utf8) else { throw LoadError.missing(url.path) }
            return text
        }
        // During a change of root, roots.pem holds the new root and the old.
        let roots = try TrustRoot.certificates(pem: try read(FileManager.default.fileExists(atPath: directory.appendingPathComponent("roots.pem").path)
                                                             ? "roots.pem" : "root.crt"))
        guard let intermediateCertificate = try TrustRoot.certificates(pem: try read("intermediate.crt")).first else {
            throw LoadError.invalid("intermediate.crt holds no certificate")
        }
        let intermediateKey = try SigningKeys.privateKey(pem: try read("intermediate.key"), passphrase: passphrase)
        guard P256.Signing.PublicKey(intermediateCertificate.publicKey)?.rawRepresentation == intermediateKey.publicKey.rawRepresentation else {
            throw LoadError.invalid("intermediate.key is not the key of intermediate.crt")
        }
        guard intermediateCertificate.notValidAfter > now else {
            throw LoadError.invalid("the intermediate certificate expired on \(intermediateCertificate.notValidAfter): make a new one (epr trust rotate-intermediate)")
        }
        let intermediate = TrustRoot.Authority(certificate: intermediateCertificate, key: intermediateKey)

        var authority = SigningAuthority(repository: repository, roots: roots, intermediate: intermediate, attestationKey: P256.Signing.PrivateKey(),
                                         attestationChain: [], certificateDays: certificateDays, directory: directory, state: state)
        if let (key, certificate) = existingAttestationKey(state: state, repository: repository, intermediate: intermediateCertificate, now: now) {
            authority.attestationKey = key
            authority.attestationChain = [certificate, intermediateCertificate]
        } else {
            try authority.renewAttestationKey(now: now, logger: logger)
        }
        return authority
    }

    static let attestationKeyFile = "attestation.key", attestationCertificateFile = "attestation.crt"
    /// Days an attestation certificate is valid, and the days before its end it is renewed.
    static let attestationDays = 365, attestationRenewalDays = 30

    /// The attestation key kept in `state`, when its certificate is this repository's, issued by
    /// this intermediate, and not due for renewal.
    static func existingAttestationKey(state: URL, repository: String, intermediate: Certificate, now: Date) -> (P256.Signing.PrivateKey, Certificate)? {
        guard let pem = try? String(contentsOf: state.appendingPathComponent(attestationKeyFile), encoding: .utf8),
              let key = try? P256.Signing.PrivateKey(pemRepresentation: pem),
              let text = try? String(contentsOf: state.appendingPathComponent(attestationCertificateFile), encoding: .utf8),
              let issued = try? TrustRoot.certificates(pem: text).first, issued.issuer == intermediate.subject,
              (try? issued.extensions.authorityKeyIdentifier?.keyIdentifier) == (try? intermediate.extensions.subjectKeyIdentifier?.keyIdentifier),
              P256.Signing.PublicKey(issued.publicKey)?.rawRepresentation == key.publicKey.rawRepresentation,
              TrustRoot.repository(of: issued) == repository, !isDue(issued, now: now) else { return nil }
        return (key, issued)
    }

    /// Whether an attestation certificate ends within the renewal window (or has ended).
    static func isDue(_ certificate: Certificate, now: Date) -> Bool {
        certificate.notValidAfter <= now.addingTimeInterval(Double(attestationRenewalDays) * 86400)
    }

    /// Whether the attestation certificate ends within the renewal window (or has ended).
    public func attestationKeyIsDue(now: Date = Date()) -> Bool {
        attestationChain.first.map { Self.isDue($0, now: now) } ?? true
    }

    /// A new attestation key, certified by the intermediate and kept in the state directory.
    public mutating func renewAttestationKey(now: Date = Date(), logger: Logger) throws {
        guard let state else { throw LoadError.invalid("no directory to keep the attestation key in") }
        let fresh = P256.Signing.PrivateKey()
        let issued = try TrustRoot.certifyRepository(fresh.publicKey, name: repository, days: Self.attestationDays, by: intermediate, now: now)
        // The certificate first: a key file without its certificate is made anew at start.
        try TrustRoot.pem([issued]).write(to: state.appendingPathComponent(Self.attestationCertificateFile + ".new"), atomically: true, encoding: .utf8)
        try SecretFiles.save(fresh.pemRepresentation + "\n", to: state.appendingPathComponent(Self.attestationKeyFile).path)
        guard rename(state.appendingPathComponent(Self.attestationCertificateFile + ".new").path,
                     state.appendingPathComponent(Self.attestationCertificateFile).path) == 0 else {
            throw LoadError.invalid("cannot write \(state.appendingPathComponent(Self.attestationCertificateFile).path)")
        }
        attestationKey = fresh
        attestationChain = [issued, intermediate.certificate]
        logger.notice("certified a new attestation key", metadata: ["key": "\(SigningKeys.keyID(fresh.publicKey))", "until": "\(issued.notValidAfter)"])
    }

    /// The revocation list the authority's directory holds, when there is one that verifies.
    public static func offlineRevocations(directory: URL, roots: [Certificate]) async throws -> (list: RevocationList, content: RevocationList.Content)? {
        let url = directory.appendingPathComponent("revocations.json")
        guard let data = try? Data(contentsOf: url) else { return nil }
        let list = try JSONDecoder().decode(RevocationList.self, from: data)
        // An expired list still says what was revoked: its entries are kept, checked at the
        // time it was made.
        return (list, try await list.verifiedContent(roots: roots, at: list.signedTime))
    }
}

/// The signing authority, shared by every copy of the registry service.
final class SigningHolder: Sendable {
    private let box = NIOLockedValueBox<SigningAuthority?>(nil)
    var value: SigningAuthority? {
        get { box.withLockedValue { $0 } }
        set { box.withLockedValue { $0 = newValue } }
    }
}

/// Files only their owner reads.
public enum SecretFiles {
    /// Writes a file readable by its owner only from the first byte, and syncs it; with
    /// `exclusive`, never over an existing file.
    public static func save(_ text: String, to path: String, exclusive: Bool = false) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | (exclusive ? O_EXCL : O_TRUNC), 0o600)
        guard fd >= 0 else {
            throw CocoaError(errno == EEXIST ? .fileWriteFileExists : .fileWriteNoPermission, userInfo: [NSFilePathErrorKey: path])
        }
        defer { close(fd) }
        let bytes = Array(text.utf8)
        guard fchmod(fd, 0o600) == 0, write(fd, bytes, bytes.count) == bytes.count, fsync(fd) == 0 else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: path])
        }
    }
}
