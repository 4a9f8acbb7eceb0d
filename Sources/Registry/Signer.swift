import Crypto
import Foundation
import Logging
import PackageFormat
import Signing
import X509
#if canImport(Glibc)
import Glibc
#endif

/// A request to the signer process: one JSON document on a line of its own, over its local
/// socket. `op` is `describe`, `certify`, `revocations`, `attest`, `oci-sign`, `renew` or
/// `offline-revocations`.
public struct SignerRequest: Codable, Sendable {
    public var op: String
    public var public_key: String?
    public var user: String?
    public var packages: [String]?
    public var days: Int?
    public var now: Date?
    public var content: RevocationList.Content?
    public var predicate: RepositoryAttestation.Predicate?
    public var artifact: String?
    public var digest: String?
    /// Base64.
    public var payload: String?

    public init(op: String) { self.op = op }
}

/// What the signer publishes of itself: certificates and public keys only.
public struct SignerDescription: Codable, Sendable {
    public var repository: String
    /// PEM: the roots, the intermediate's certificate, the attestation key's chain.
    public var roots: String
    public var intermediate: String
    public var attestation_chain: String
    /// PEM: the key OCI signatures are checked with.
    public var oci_public_key: String
    public var certificate_days: Int
    /// What OCI payloads must name as the repository's host (`host[:port]/`, or empty).
    public var reference_prefix: String?
}

/// The signer's answer, on one line: `error` when it refused.
public struct SignerResponse: Codable, Sendable {
    public var error: String?
    public var certificate: String?
    public var chain: String?
    public var revocations: RevocationList?
    public var attestation: RepositoryAttestation?
    public var signature: String?
    /// Base64.
    public var data: String?
    public var description: SignerDescription?

    public init(error: String? = nil) { self.error = error }
}

/// The signer process's work (`epr signer`): it holds the intermediate's key, the attestation
/// key and the OCI signing key, and signs only statements it builds and checks itself from a
/// request: a certificate for a P-256 key of a user name for valid package patterns, no longer
/// than its certificate days; a revocation list whose number grows within the bound nodes
/// accept and which keeps every revocation of the last list it signed and of the trust
/// directory's; an attestation for this repository of an archive named by its SHA-256; a simple
/// signing payload of a manifest digest, as the server makes them. Every signature is logged.
public final class SignerService: Sendable {
    public let keys: LocalRepositoryKeys
    let oci: P256.Signing.PrivateKey
    let certificateDays: Int
    /// What OCI payloads name as the repository's host (the server's `public_url`'s).
    let referencePrefix: String
    let logger: Logger
    /// Where the last revocation list it signed is kept (its number and entries).
    let lastListFile: URL
    private let lastList = NSLockedList()

    public init(keys: LocalRepositoryKeys, oci: P256.Signing.PrivateKey, certificateDays: Int, referencePrefix: String = "", state: URL,
                logger: Logger) throws {
        self.keys = keys
        self.referencePrefix = referencePrefix
        self.oci = oci
        self.certificateDays = certificateDays
        self.logger = logger
        lastListFile = state.appendingPathComponent("last-revocations.json")
        if FileManager.default.fileExists(atPath: lastListFile.path) {
            // What keeps revocation from rolling back must be read, or the signer does not start.
            guard let data = try? Data(contentsOf: lastListFile), let content = try? Self.decoder.decode(RevocationList.Content.self, from: data) else {
                throw SigningAuthority.LoadError.invalid("\(lastListFile.path) cannot be read: restore it (or remove it to start from the trust directory's list)")
            }
            lastList.set(content)
        }
    }

    static var decoder: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }

    /// The content of the trust directory's own list (made offline with the root's or the
    /// intermediate's key, in the signer's own directory).
    func offlineContent() -> RevocationList.Content? {
        guard let data = try? keys.offlineRevocations(), let list = try? JSONDecoder().decode(RevocationList.self, from: data),
              let payload = Data(base64Encoded: list.payload) else { return nil }
        return try? Self.decoder.decode(RevocationList.Content.self, from: payload)
    }

    /// Refuses a list that would roll revocation back: a number not above the last list's (the
    /// signer's last, or the trust directory's) or past what nodes accept, or one that leaves
    /// out a revocation either of them holds.
    func checkSuccession(_ content: RevocationList.Content, after last: RevocationList.Content?, now: Date) throws {
        let earlier = [last, offlineContent()].compactMap { $0 }
        let floor = earlier.map(\.sequence).max() ?? 0
        guard content.sequence > floor, content.sequence <= RevocationList.highestSequence(at: now) else {
            throw Refusal(reason: "the list's number \(content.sequence) is not above \(floor) and within a day of now")
        }
        let given = Set(content.revoked.map(\.serial))
        let missing = Set(earlier.flatMap { $0.revoked.map(\.serial) }).subtracting(given)
        guard missing.isEmpty else {
            throw Refusal(reason: "the list leaves out revocations already listed: \(missing.sorted().prefix(5).joined(separator: ", "))")
        }
    }

    /// Loads the OCI signing key from `file`, made on first use; kept encrypted with
    /// `passphrase` (a key kept in the clear is encrypted in place).
    public static func ociKey(file: URL, passphrase: String?) throws -> P256.Signing.PrivateKey {
        func save(_ key: P256.Signing.PrivateKey) throws { try SecretFiles.save(key, to: file, passphrase: passphrase) }
        if let pem = try? String(contentsOf: file, encoding: .utf8) {
            let key = try SigningKeys.privateKey(pem: pem, passphrase: passphrase)
            if passphrase != nil, !pem.contains("ENCRYPTED") { try save(key) }
            return key
        }
        let key = P256.Signing.PrivateKey()
        try save(key)
        return key
    }

    /// Whether `name` is a user name: 1 to 39 of a-z, 0-9, `_` and `-`, beginning with a letter or digit.
    static func isUserName(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        func allowed(_ byte: UInt8) -> Bool { (97...122).contains(byte) || (48...57).contains(byte) }
        return (1...39).contains(bytes.count) && allowed(bytes[0]) && bytes.allSatisfy { allowed($0) || $0 == 95 || $0 == 45 }
    }

    public func describe() throws -> SignerDescription {
        SignerDescription(repository: keys.repository, roots: try TrustRoot.pem(keys.roots), intermediate: try TrustRoot.pem([keys.intermediate.certificate]),
                          attestation_chain: try TrustRoot.pem(try keys.attestationChain()), oci_public_key: oci.publicKey.pemRepresentation + "\n",
                          certificate_days: certificateDays, reference_prefix: referencePrefix)
    }

    /// Answers one request.
    public func handle(_ request: SignerRequest) -> SignerResponse {
        do {
            return try answer(request)
        } catch let refusal as Refusal {
            logger.warning("refused", metadata: ["op": "\(request.op)", "reason": "\(refusal.reason)"])
            return SignerResponse(error: refusal.reason)
        } catch {
            logger.error("failed", metadata: ["op": "\(request.op)", "error": "\(error)"])
            return SignerResponse(error: "\(error)")
        }
    }

    struct Refusal: Error { var reason: String }

    func answer(_ request: SignerRequest) throws -> SignerResponse {
        var response = SignerResponse()
        let now = request.now ?? Date()
        guard abs(now.timeIntervalSinceNow) < 600 else { throw Refusal(reason: "the request's time is not now") }
        switch request.op {
        case "describe":
            response.description = try describe()
        case "certify":
            guard let pem = request.public_key, let key = try? SigningKeys.publicKey(pem: pem) else { throw Refusal(reason: "public_key is not a P-256 key") }
            guard let user = request.user, Self.isUserName(user) else { throw Refusal(reason: "user is not a user name") }
            guard let packages = request.packages, (1...100).contains(packages.count) else { throw Refusal(reason: "name 1 to 100 packages") }
            for pattern in packages {
                do { try RegistryService.validatePattern(pattern) } catch { throw Refusal(reason: "\(pattern) is not a package pattern") }
            }
            guard let days = request.days, (1...certificateDays).contains(days) else { throw Refusal(reason: "days is 1 to \(certificateDays)") }
            let certificate = try keys.certify(key, user: user, packages: packages, days: days, now: now)
            response.certificate = try TrustRoot.pem([certificate])
            logger.notice("signed", metadata: ["op": "certify", "user": "\(user)", "key": "\(SigningKeys.keyID(key))",
                                               "packages": "\(packages.joined(separator: " "))", "serial": "\(RevocationList.serial(of: certificate))"])
        case "revocations":
            guard let content = request.content else { throw Refusal(reason: "no content") }
            let lifetime = Double(RevocationList.lifetimeDays + 1) * 86400
            guard content.revoked.count <= 100_000, content.expires > content.updated,
                  content.expires.timeIntervalSince(content.updated) <= lifetime, abs(content.updated.timeIntervalSinceNow) < 600 else {
                throw Refusal(reason: "the list's dates or size are not those of a new list")
            }
            try lastList.withLock { last in
                try checkSuccession(content, after: last, now: Date())
                response.revocations = try keys.signRevocations(content)
                let encoder = JSONEncoder()
                encoder.dateEncodingStrategy = .iso8601
                let temporary = lastListFile.appendingPathExtension("new")
                try encoder.encode(content).write(to: temporary)
                guard rename(temporary.path, lastListFile.path) == 0 else { throw Refusal(reason: "cannot keep the list signed") }
                return content
            }
            logger.notice("signed", metadata: ["op": "revocations", "sequence": "\(content.sequence)", "revoked": "\(content.revoked.count)"])
        case "attest":
            guard let predicate = request.predicate, predicate.repository == keys.repository else {
                throw Refusal(reason: "the predicate is not this repository's")
            }
            guard let artifact = request.artifact, (1...255).contains(artifact.utf8.count), !artifact.contains("/"),
                  let digest = request.digest, OCISigner.isDigest(digest) else { throw Refusal(reason: "artifact and digest must name an archive") }
            let attestation = try keys.attest(predicate, artifact: artifact, digest: SHA256Digest(hex: String(digest.dropFirst(7))))
            response.attestation = attestation
            logger.notice("signed", metadata: ["op": "attest", "package": "\(predicate.package)", "version": "\(predicate.version)",
                                               "digest": "\(digest)", "key": "\(attestation.signatures.first?.keyid ?? "")"])
        case "oci-sign":
            guard let text = request.payload, let payload = Data(base64Encoded: text), OCISigner.isWellFormed(payload, referencePrefix: referencePrefix) else {
                throw Refusal(reason: "the payload is not a simple signing payload of a manifest of this repository's")
            }
            response.signature = try oci.signature(for: payload).derRepresentation.base64EncodedString()
            let object = try? JSONSerialization.jsonObject(with: payload) as? [String: Any]
            let critical = object?["critical"] as? [String: Any]
            logger.notice("signed", metadata: ["op": "oci-sign",
                                               "reference": "\((critical?["identity"] as? [String: Any])?["docker-reference"] ?? "")",
                                               "digest": "\((critical?["image"] as? [String: Any])?["docker-manifest-digest"] ?? "")"])
        case "renew":
            let chain = try keys.attestationChain()
            guard chain.first.map({ LocalRepositoryKeys.isDue($0, now: now) }) ?? true else {
                throw Refusal(reason: "the attestation key is not due for renewal")
            }
            response.chain = try TrustRoot.pem(try keys.renewAttestationKey(now: now))
        case "chain":
            response.chain = try TrustRoot.pem(try keys.attestationChain())
        case "offline-revocations":
            response.data = try keys.offlineRevocations()?.base64EncodedString()
        default:
            throw Refusal(reason: "no such operation: \(request.op)")
        }
        return response
    }

    /// The most connections served at once, and the time a connection has to send its request.
    static let connections = 16
    static let requestTime: Duration = .seconds(10)
    /// The largest request: a revocation list of 100,000 entries with their reasons.
    static let requestLimit = 64 << 20

    /// Serves requests on the local socket `path` until the process ends: one request per
    /// connection, from processes of the user `client` (or this process's own user) alone, at
    /// most ``connections`` at once, each within ``requestTime``.
    public func serve(socket path: String, client: uid_t?) throws -> Never {
        // A client that goes away before its answer must not end the signer.
        signal(SIGPIPE, SIG_IGN)
        let listener = try LocalSocket.listen(path: path)
        let slots = DispatchSemaphore(value: Self.connections)
        logger.notice("signer listening", metadata: ["socket": "\(path)"])
        while true {
            let connection = accept(listener, nil, nil)
            if connection < 0 {
                // Out of descriptors, say: wait a little rather than spin.
                usleep(100_000)
                continue
            }
            guard let peer = LocalSocket.peerUser(connection), peer == getuid() || peer == client else {
                logger.warning("refused a connection from another user", metadata: ["uid": "\(LocalSocket.peerUser(connection).map { "\($0)" } ?? "?")"])
                close(connection)
                continue
            }
            guard slots.wait(timeout: .now() + .seconds(1)) == .success else {
                logger.warning("refused a connection: \(Self.connections) are being served")
                close(connection)
                continue
            }
            let service = self
            Thread.detachNewThread {
                defer { close(connection); slots.signal() }
                LocalSocket.limitSending(connection)
                guard let line = LocalSocket.readLine(connection, limit: Self.requestLimit, within: Self.requestTime) else {
                    service.logger.warning("refused a request: not a line within \(Self.requestTime) and \(Self.requestLimit) bytes")
                    return
                }
                let response: SignerResponse
                do { response = service.handle(try JSONDecoder().decode(SignerRequest.self, from: line)) } catch {
                    service.logger.warning("refused a request: not JSON of a signer request")
                    response = SignerResponse(error: "the request is not JSON of a signer request")
                }
                if let data = try? JSONEncoder().encode(response) { LocalSocket.write(connection, data + Data([10])) }
            }
        }
    }
}

/// The last revocation list signed, shared between threads: one list is checked and signed
/// at a time.
final class NSLockedList: @unchecked Sendable {
    private let lock = NSLock()
    private var content: RevocationList.Content?

    func set(_ new: RevocationList.Content) { lock.withLock { content = new } }

    /// Runs `body` with the last list, holding the lock; what it returns becomes the last list.
    func withLock(_ body: (RevocationList.Content?) throws -> RevocationList.Content) throws {
        lock.lock()
        defer { lock.unlock() }
        content = try body(content)
    }
}
