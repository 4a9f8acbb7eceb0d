import Crypto
import Foundation
import PackageFormat
import X509

/// The repository's word that it published a version: a DSSE envelope, signed by the
/// repository's attestation key (certified by its signing authority), over an in-toto statement
/// whose subject is the archive and whose predicate says what the repository checked: who
/// published it, who signed it and when that signature was checked, which checks ran and which
/// reviewers approved it. A node in trusted mode runs nothing the repository did not attest.
public struct RepositoryAttestation: Codable, Sendable, Equatable {
    public static let predicateType = "https://epr.invalid/repository-attestation/v1"

    public struct Check: Codable, Sendable, Equatable {
        public var id: String
        public var status: String
        public init(id: String, status: String) {
            self.id = id
            self.status = status
        }
    }

    public struct Predicate: Codable, Sendable, Equatable {
        public var repository: String
        public var package: String
        public var version: String
        public var publisher: String
        public var published_at: Date
        /// The contributor who signed the package (`epr-signer` of the certificate), and the key.
        public var signer: String?
        public var signer_key_id: String?
        /// When the repository checked the contributor's signature: the time the signer's
        /// certificate must have been valid at.
        public var signature_checked_at: Date?
        public var checks: [Check]
        public var reviewers: [String]

        public init(repository: String, package: String, version: String, publisher: String, published_at: Date, signer: String?,
                    signer_key_id: String?, signature_checked_at: Date?, checks: [Check], reviewers: [String]) {
            self.repository = repository
            self.package = package
            self.version = version
            self.publisher = publisher
            self.published_at = published_at
            self.signer = signer
            self.signer_key_id = signer_key_id
            self.signature_checked_at = signature_checked_at
            self.checks = checks
            self.reviewers = reviewers
        }
    }

    public struct Statement: Codable, Sendable, Equatable {
        public var _type: String
        public var subject: [PackageSignature.Statement.Subject]
        public var predicateType: String
        public var predicate: Predicate
    }

    public var payloadType: String
    public var payload: String
    public var signatures: [PackageSignature.Signature]
    /// The attestation key's certificate and the signing authority's (PEM, leaf first).
    public var certificates: [String]

    static var encoder: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return encoder
    }

    /// The attestation of the archive `artifact` with `digest`, signed with `key` whose chain is `chain`.
    public static func sign(_ predicate: Predicate, artifact: String, digest: PackageFormat.SHA256Digest, key: P256.Signing.PrivateKey,
                            chain: [Certificate]) throws -> RepositoryAttestation {
        let statement = Statement(_type: PackageSignature.statementType,
                                  subject: [.init(name: artifact, digest: ["sha256": digest.hex])],
                                  predicateType: predicateType, predicate: predicate)
        let payload = Array(try encoder.encode(statement))
        let signature = try key.signature(for: PackageSignature.pae(type: PackageSignature.payloadType, payload: payload))
        return RepositoryAttestation(payloadType: PackageSignature.payloadType, payload: Data(payload).base64EncodedString(),
                                     signatures: [.init(keyid: SigningKeys.keyID(key.publicKey), sig: signature.derRepresentation.base64EncodedString())],
                                     certificates: try chain.map { try $0.serializeAsPEM().pemString })
    }

    public enum Failure: Error, CustomStringConvertible, Equatable {
        case malformed(String)
        case untrusted(String)
        case mismatch(String)

        public var description: String {
            switch self {
            case let .malformed(reason): "the repository attestation is malformed: \(reason)"
            case let .untrusted(reason): "the repository attestation is not trusted: \(reason)"
            case let .mismatch(reason): "the repository attestation is for something else: \(reason)"
            }
        }
    }

    /// The statement, once the attestation's certificate chains to one of `roots` at `time` as
    /// a repository's, no certificate of its chain is revoked, and its signature verifies.
    /// With `repository`, the attestation must be that repository's.
    public func verifiedStatement(roots: [Certificate], revocations: RevocationList.Content?, repository: String? = nil,
                                  at time: Date = Date()) async throws -> Statement {
        guard payloadType == PackageSignature.payloadType, let payload = Data(base64Encoded: payload) else {
            throw Failure.malformed("not a DSSE envelope of an in-toto statement")
        }
        let chain: [Certificate]
        do { chain = try certificates.map { try Certificate(pemEncoded: $0) } } catch { throw Failure.malformed("a certificate cannot be read") }
        if let revocations, let revoked = chain.first(where: { revocations.entry(for: $0) != nil }) {
            throw Failure.untrusted("its certificate \(RevocationList.serial(of: revoked)) is revoked")
        }
        let key: P256.Signing.PublicKey
        do { key = try await TrustRoot.verifyRepository(chain: chain, roots: roots, at: time) } catch let failure as TrustRoot.Failure {
            throw Failure.untrusted(failure.description)
        }
        guard PackageSignature.anyVerifies(signatures, type: payloadType, payload: Array(payload), key: key) else {
            throw Failure.untrusted("its signature does not verify")
        }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let statement: Statement
        do { statement = try decoder.decode(Statement.self, from: payload) } catch { throw Failure.malformed("\(error)") }
        guard statement._type == PackageSignature.statementType, statement.predicateType == Self.predicateType,
              statement.subject.count == 1 else {
            throw Failure.malformed("the statement is not a repository attestation")
        }
        // The repository the statement names is the one its certificate names.
        let certified = chain.first.flatMap(TrustRoot.repository(of:))
        guard statement.predicate.repository == certified else {
            throw Failure.untrusted("it names the repository \(statement.predicate.repository), but its certificate is \(certified ?? "no repository")'s")
        }
        if let repository, certified != repository {
            throw Failure.untrusted("it is the repository \(certified ?? "?")'s, not \(repository)'s")
        }
        return statement
    }
}
