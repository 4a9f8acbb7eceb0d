import Crypto
import Foundation
import Logging
import PackageFormat
import NIOConcurrencyHelpers
import Signing
import X509

/// What the repository signs with its keys (the intermediate's and the attestation key), each
/// a statement the holder of the keys builds and can check itself: a contributor's certificate,
/// a revocation list, an attestation of a published archive. The keys are held in this
/// process (``LocalRepositoryKeys``) or by a signer process of their own (``SignerClient``).
public protocol RepositoryKeys: Sendable {
    /// A certificate for a contributor's key, for `packages`, valid `days` from `now`.
    func certify(_ key: P256.Signing.PublicKey, user: String, packages: [String], days: Int, now: Date) throws -> Certificate
    /// A revocation list with `content`, signed by the intermediate.
    func signRevocations(_ content: RevocationList.Content) throws -> RevocationList
    /// The attestation of the archive `artifact` with `digest`.
    func attest(_ predicate: RepositoryAttestation.Predicate, artifact: String, digest: PackageFormat.SHA256Digest) throws -> RepositoryAttestation
    /// A new attestation key, certified by the intermediate: its chain (its certificate, the intermediate's).
    func renewAttestationKey(now: Date) throws -> [Certificate]
    /// The attestation key's chain now (renewed elsewhere, it changes).
    func attestationChain() throws -> [Certificate]
    /// The revocation list of the authority's directory (`epr trust revoke` keeps it), as stored.
    func offlineRevocations() throws -> Data?
}

/// The repository's online signing authority: the intermediate certificate `epr trust init`
/// made (the root stays offline; only its certificate is here), the certificate of the key the
/// repository attests publications with, and the keys, held here or by a signer process.
public struct SigningAuthority: Sendable {
    /// The repository's name, in its attestation certificate (`epr-repository:NAME`).
    public var repository: String
    public var roots: [Certificate]
    public var intermediateCertificate: Certificate
    /// The attestation key's certificate, then the intermediate's.
    public var attestationChain: [Certificate]
    /// Days a contributor's certificate is valid.
    public var certificateDays: Int
    public var keys: any RepositoryKeys

    public init(repository: String, roots: [Certificate], intermediateCertificate: Certificate, attestationChain: [Certificate],
                certificateDays: Int, keys: any RepositoryKeys) {
        self.repository = repository
        self.roots = roots
        self.intermediateCertificate = intermediateCertificate
        self.attestationChain = attestationChain
        self.certificateDays = certificateDays
        self.keys = keys
    }

    /// The attestation key's id (the SHA-256 of its public key).
    public var attestationKeyID: String {
        attestationChain.first.flatMap { P256.Signing.PublicKey($0.publicKey) }.map(SigningKeys.keyID) ?? ""
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

    /// Refuses a trust directory that holds the root's key: it stays offline, never where a
    /// running repository reads.
    public static func refuseRootKey(in directory: URL) throws {
        // Earlier rotations left the old root's key in retired/: that is a root's key too.
        let retired = ((try? FileManager.default.contentsOfDirectory(atPath: directory.appendingPathComponent("retired").path)) ?? [])
            .filter { $0.hasPrefix("root-") && $0.hasSuffix(".key") }.map { directory.appendingPathComponent("retired/" + $0) }
        for file in [directory.appendingPathComponent("root.key")] + retired where FileManager.default.fileExists(atPath: file.path) {
            throw LoadError.invalid("\(file.path) is in the trust directory: the root's key stays offline. Move it out (epr trust commands look for it at "
                                    + directory.standardizedFileURL.path + "-root.key) and start again")
        }
    }

    /// Loads the authority from `directory` with its keys in this process (see
    /// ``LocalRepositoryKeys/load(directory:passphrase:state:repository:now:logger:)``).
    public static func load(directory: URL, passphrase: String?, state: URL, repository: String, certificateDays: Int,
                            now: Date = Date(), logger: Logger) throws -> SigningAuthority {
        let keys = try LocalRepositoryKeys.load(directory: directory, passphrase: passphrase, state: state, repository: repository,
                                                now: now, logger: logger)
        return SigningAuthority(repository: repository, roots: keys.roots, intermediateCertificate: keys.intermediate.certificate,
                                attestationChain: try keys.attestationChain(), certificateDays: certificateDays, keys: keys)
    }

    /// Whether the attestation certificate ends within the renewal window (or has ended).
    public func attestationKeyIsDue(now: Date = Date()) -> Bool {
        attestationChain.first.map { LocalRepositoryKeys.isDue($0, now: now) } ?? true
    }

    /// A new attestation key, certified by the intermediate.
    public mutating func renewAttestationKey(now: Date = Date()) throws {
        attestationChain = try keys.renewAttestationKey(now: now)
    }

    /// The revocation list the authority's directory holds, when there is one that verifies.
    public func offlineRevocations() async throws -> (list: RevocationList, content: RevocationList.Content)? {
        guard let data = try keys.offlineRevocations() else { return nil }
        let list = try JSONDecoder().decode(RevocationList.self, from: data)
        // An expired list still says what was revoked: its entries are kept, checked at the
        // time it was made.
        return (list, try await list.verifiedContent(roots: roots, at: list.signedTime))
    }
}

/// The repository's keys in this process: the intermediate's, decrypted from the trust
/// directory, and the attestation key, kept in `state` (encrypted with the same passphrase when
/// there is one), made and certified anew when missing, issued by another intermediate, or
/// within 30 days of its end.
public final class LocalRepositoryKeys: RepositoryKeys {
    public let repository: String
    public let roots: [Certificate]
    public let intermediate: TrustRoot.Authority
    let directory: URL
    let state: URL
    let passphrase: String?
    let logger: Logger
    private let attestation: NIOLockedValueBox<(key: P256.Signing.PrivateKey, chain: [Certificate])>

    init(repository: String, roots: [Certificate], intermediate: TrustRoot.Authority, directory: URL, state: URL, passphrase: String?,
         logger: Logger) {
        self.repository = repository
        self.roots = roots
        self.intermediate = intermediate
        self.directory = directory
        self.state = state
        self.passphrase = passphrase
        self.logger = logger
        attestation = NIOLockedValueBox((P256.Signing.PrivateKey(), []))
    }

    /// Loads the keys from `directory` (root.crt, intermediate.crt, intermediate.key, decrypted
    /// with `passphrase` when encrypted) and `state` (attestation.key and attestation.crt). A
    /// directory that holds root.key is refused.
    public static func load(directory: URL, passphrase: String?, state: URL, repository: String,
                            now: Date = Date(), logger: Logger) throws -> LocalRepositoryKeys {
        try SigningAuthority.refuseRootKey(in: directory)
        func read(_ name: String) throws -> String {
            let url = directory.appendingPathComponent(name)
            guard let text = try? String(contentsOf: url, encoding: .utf8) else { throw SigningAuthority.LoadError.missing(url.path) }
            return text
        }
        // During a change of root, roots.pem holds the new root and the old.
        let roots = try TrustRoot.certificates(pem: try read(FileManager.default.fileExists(atPath: directory.appendingPathComponent("roots.pem").path)
                                                             ? "roots.pem" : "root.crt"))
        guard let intermediateCertificate = try TrustRoot.certificates(pem: try read("intermediate.crt")).first else {
            throw SigningAuthority.LoadError.invalid("intermediate.crt holds no certificate")
        }
        let intermediateKey = try SigningKeys.privateKey(pem: try read("intermediate.key"), passphrase: passphrase)
        guard P256.Signing.PublicKey(intermediateCertificate.publicKey)?.rawRepresentation == intermediateKey.publicKey.rawRepresentation else {
            throw SigningAuthority.LoadError.invalid("intermediate.key is not the key of intermediate.crt")
        }
        guard intermediateCertificate.notValidAfter > now else {
            throw SigningAuthority.LoadError.invalid("the intermediate certificate expired on \(intermediateCertificate.notValidAfter): make a new one (epr trust rotate-intermediate)")
        }
        let keys = LocalRepositoryKeys(repository: repository, roots: roots,
                                       intermediate: TrustRoot.Authority(certificate: intermediateCertificate, key: intermediateKey),
                                       directory: directory, state: state, passphrase: passphrase, logger: logger)
        if let (key, certificate) = keys.existingAttestationKey(now: now) {
            keys.attestation.withLockedValue { $0 = (key, [certificate, intermediateCertificate]) }
        } else {
            _ = try keys.renewAttestationKey(now: now)
        }
        return keys
    }

    static let attestationKeyFile = "attestation.key", attestationCertificateFile = "attestation.crt"
    /// Days an attestation certificate is valid, and the days before its end it is renewed.
    static let attestationDays = 365, attestationRenewalDays = 30

    /// The attestation key kept in `state`, when its certificate is this repository's, issued by
    /// this intermediate, and not due for renewal. A key kept in the clear while there is a
    /// passphrase is encrypted in place.
    func existingAttestationKey(now: Date) -> (P256.Signing.PrivateKey, Certificate)? {
        let file = state.appendingPathComponent(Self.attestationKeyFile)
        guard let pem = try? String(contentsOf: file, encoding: .utf8),
              let key = try? SigningKeys.privateKey(pem: pem, passphrase: passphrase),
              let text = try? String(contentsOf: state.appendingPathComponent(Self.attestationCertificateFile), encoding: .utf8),
              let issued = try? TrustRoot.certificates(pem: text).first, issued.issuer == intermediate.certificate.subject,
              (try? issued.extensions.authorityKeyIdentifier?.keyIdentifier) == (try? intermediate.certificate.extensions.subjectKeyIdentifier?.keyIdentifier),
              P256.Signing.PublicKey(issued.publicKey)?.rawRepresentation == key.publicKey.rawRepresentation,
              TrustRoot.repository(of: issued) == repository, !Self.isDue(issued, now: now) else { return nil }
        if passphrase != nil, !pem.contains("ENCRYPTED") { try? save(key, to: file) }
        return (key, issued)
    }

    func save(_ key: P256.Signing.PrivateKey, to file: URL) throws {
        try SecretFiles.save(key, to: file, passphrase: passphrase)
    }

    /// Whether an attestation certificate ends within the renewal window (or has ended).
    static func isDue(_ certificate: Certificate, now: Date) -> Bool {
        certificate.notValidAfter <= now.addingTimeInterval(Double(attestationRenewalDays) * 86400)
    }

    public func certify(_ key: P256.Signing.PublicKey, user: String, packages: [String], days: Int, now: Date) throws -> Certificate {
        try TrustRoot.certify(key, user: user, packages: packages, days: days, by: intermediate, now: now)
    }

    public func signRevocations(_ content: RevocationList.Content) throws -> RevocationList {
        try RevocationList.sign(content, by: intermediate)
    }

    public func attest(_ predicate: RepositoryAttestation.Predicate, artifact: String, digest: PackageFormat.SHA256Digest) throws -> RepositoryAttestation {
        let (key, chain) = attestation.withLockedValue { $0 }
        return try RepositoryAttestation.sign(predicate, artifact: artifact, digest: digest, key: key, chain: chain)
    }

    public func attestationChain() throws -> [Certificate] { attestation.withLockedValue { $0.chain } }

    public func renewAttestationKey(now: Date) throws -> [Certificate] {
        let fresh = P256.Signing.PrivateKey()
        let issued = try TrustRoot.certifyRepository(fresh.publicKey, name: repository, days: Self.attestationDays, by: intermediate, now: now)
        // The certificate first: a key file without its certificate is made anew at start.
        try TrustRoot.pem([issued]).write(to: state.appendingPathComponent(Self.attestationCertificateFile + ".new"), atomically: true, encoding: .utf8)
        try save(fresh, to: state.appendingPathComponent(Self.attestationKeyFile))
        guard rename(state.appendingPathComponent(Self.attestationCertificateFile + ".new").path,
                     state.appendingPathComponent(Self.attestationCertificateFile).path) == 0 else {
            throw SigningAuthority.LoadError.invalid("cannot write \(state.appendingPathComponent(Self.attestationCertificateFile).path)")
        }
        let chain = [issued, intermediate.certificate]
        attestation.withLockedValue { $0 = (fresh, chain) }
        logger.notice("certified a new attestation key", metadata: ["key": "\(SigningKeys.keyID(fresh.publicKey))", "until": "\(issued.notValidAfter)"])
        return chain
    }

    public func offlineRevocations() throws -> Data? {
        try? Data(contentsOf: directory.appendingPathComponent("revocations.json"))
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
    /// Writes a private key readable by its owner only, encrypted with `passphrase` when there is one.
    public static func save(_ key: P256.Signing.PrivateKey, to file: URL, passphrase: String?) throws {
        if let passphrase {
            try save(try EncryptedPrivateKey.seal(pkcs8: Array(key.derRepresentation), passphrase: passphrase), to: file.path)
        } else {
            try save(key.pemRepresentation + "\n", to: file.path)
        }
    }

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
