import Crypto
import Foundation
import PackageFormat
import X509

/// A package's signature: a DSSE envelope (the Dead Simple Signing Envelope) whose payload is an
/// in-toto Statement v1 naming the archive and every file in it by SHA-256, so that the archive
/// as a whole, and each file a loader takes out of it (the bytecode), can be checked. The
/// signature is ECDSA P-256 with SHA-256, DER-encoded, over the envelope's pre-authentication
/// encoding (PAE), which standard tools can check (`openssl dgst -sha256 -verify`).
public struct PackageSignature: Codable, Sendable, Equatable {
    public static let payloadType = "application/vnd.in-toto+json"
    public static let statementType = "https://in-toto.io/Statement/v1"
    /// What the statement says of its subjects: that this signer publishes them as the package.
    public static let predicateType = "https://epr.invalid/package-signature/v1"

    public struct Signature: Codable, Sendable, Equatable {
        public var keyid: String
        /// Base64 of the DER ECDSA signature over the PAE.
        public var sig: String
    }

    public var payloadType: String
    /// Base64 of the statement's JSON.
    public var payload: String
    public var signatures: [Signature]
    /// The signer's certificate and the intermediates up to the repository's root, as PEM
    /// (leaf first), when the key is certified.
    public var certificates: [String]?

    public struct Statement: Codable, Sendable, Equatable {
        public struct Subject: Codable, Sendable, Equatable {
            public var name: String
            public var digest: [String: String]
        }

        public struct Predicate: Codable, Sendable, Equatable {
            /// The package and version the manifest names.
            public var package: String
            public var version: String
        }

        public var _type: String
        public var subject: [Subject]
        public var predicateType: String
        public var predicate: Predicate
    }

    /// Whether one of `signatures` is `key`'s over the PAE of the payload.
    static func anyVerifies(_ signatures: [Signature], type: String, payload: [UInt8], key: P256.Signing.PublicKey) -> Bool {
        let message = pae(type: type, payload: payload)
        return signatures.contains { entry in
            guard let der = Data(base64Encoded: entry.sig), let signature = try? P256.Signing.ECDSASignature(derRepresentation: der) else { return false }
            return key.isValidSignature(signature, for: message)
        }
    }

    /// DSSE's pre-authentication encoding of a payload.
    public static func pae(type: String, payload: [UInt8]) -> [UInt8] {
        Array("DSSEv1 \(type.utf8.count) \(type) \(payload.count) ".utf8) + payload
    }

    /// The statement for an inspected archive: the archive under its artifact name, then each
    /// regular file as `<artifact>/<path>`.
    public static func statement(for report: PackageReport) throws -> Statement {
        guard let manifest = report.manifest else { throw Failure.invalidPackage("the package has no readable manifest") }
        var subjects = [Statement.Subject(name: manifest.artifact, digest: ["sha256": report.sha256.hex])]
        for file in report.files where file.kind == .file {
            guard let digest = file.sha256 else { continue }
            subjects.append(.init(name: "\(manifest.artifact)/\(file.path)", digest: ["sha256": digest.hex]))
        }
        return Statement(_type: statementType, subject: subjects, predicateType: predicateType,
                         predicate: .init(package: manifest.name.value, version: manifest.version.description))
    }

    public static func sign(_ report: PackageReport, with key: P256.Signing.PrivateKey, certificates: [Certificate]? = nil) throws -> PackageSignature {
        if let leaf = certificates?.first, P256.Signing.PublicKey(leaf.publicKey)?.rawRepresentation != key.publicKey.rawRepresentation {
            throw Failure.malformedEnvelope("the certificate is for another key")
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let payload = Array(try encoder.encode(try statement(for: report)))
        let signature = try key.signature(for: pae(type: payloadType, payload: payload))
        return PackageSignature(payloadType: payloadType, payload: Data(payload).base64EncodedString(),
                                signatures: [Signature(keyid: SigningKeys.keyID(key.publicKey),
                                                       sig: signature.derRepresentation.base64EncodedString())],
                                certificates: try certificates.map { try $0.map { try $0.serializeAsPEM().pemString } })
    }

    public enum Failure: Error, CustomStringConvertible, Equatable {
        case invalidPackage(String)
        case malformedEnvelope(String)
        case badSignature
        case noSignatureByKey(String)
        case digestMismatch(String)
        case fileNotSigned(String)
        case signedFileMissing(String)

        /// Which link of the check failed, for people and logs.
        public var description: String {
            switch self {
            case let .invalidPackage(reason): "the package cannot be read: \(reason)"
            case let .malformedEnvelope(reason): "the signature file is malformed: \(reason)"
            case .badSignature: "the signature does not verify with the key: the statement or the signature was changed, or another key signed it"
            case let .noSignatureByKey(id): "no signature by the key \(id)"
            case let .digestMismatch(name): "\(name) differs from what was signed"
            case let .fileNotSigned(name): "\(name) is in the package but not in the signed statement"
            case let .signedFileMissing(name): "\(name) was signed but is not in the package"
            }
        }
    }

    /// The statement, once the envelope's signature by `key` verifies.
    public func verifiedStatement(key: P256.Signing.PublicKey) throws -> Statement {
        guard payloadType == Self.payloadType else { throw Failure.malformedEnvelope("the payload type is \(payloadType), not \(Self.payloadType)") }
        guard let payload = Data(base64Encoded: payload) else { throw Failure.malformedEnvelope("the payload is not base64") }
        let id = SigningKeys.keyID(key)
        let mine = signatures.filter { $0.keyid == id || $0.keyid.isEmpty }
        guard !mine.isEmpty else { throw Failure.noSignatureByKey(id) }
        guard Self.anyVerifies(mine, type: payloadType, payload: Array(payload), key: key) else { throw Failure.badSignature }
        do { return try JSONDecoder().decode(Statement.self, from: payload) } catch {
            throw Failure.malformedEnvelope("the statement is not in-toto JSON: \(error)")
        }
    }

    /// The signature's part of trusted mode (no attestation): the signer's certificate chains
    /// to one of `roots` and allows this package, nothing of it is revoked in `revocations`,
    /// its key signed, and the package is exactly what was signed. Returns the statement and the
    /// signer.
    public func verify(_ report: PackageReport, trustedRoots roots: [Certificate], revocations: RevocationList? = nil,
                       at time: Date = Date()) async throws -> (statement: Statement, signer: String) {
        let content = try await revocations?.verifiedContent(roots: roots, at: time)
        let result = try await TrustedVerification.verify(digest: report.sha256, report: report, expected: nil, signature: self, attestation: nil,
                                                          anchors: TrustAnchors(roots: roots, revocations: content), at: time,
                                                          requireAttestation: false)
        guard let statement = claimedStatement() else { throw Failure.malformedEnvelope("the statement cannot be read") }
        return (statement, result.signer)
    }

    /// Checks the signature by `key` and that the package is exactly what was signed: the
    /// archive's digest, and every file's, with no file added or taken away.
    public func verify(_ report: PackageReport, key: P256.Signing.PublicKey) throws -> Statement {
        let signed = try verifiedStatement(key: key)
        guard signed._type == Self.statementType, signed.predicateType == Self.predicateType else {
            throw Failure.malformedEnvelope("the statement is not a package signature")
        }
        let actual = try Self.statement(for: report)
        // One digest per name: a statement naming a file twice is ambiguous, and refused.
        guard Set(signed.subject.map(\.name)).count == signed.subject.count else {
            throw Failure.malformedEnvelope("the statement names a file more than once")
        }
        let expected = Dictionary(signed.subject.map { ($0.name, $0.digest["sha256"] ?? "") }, uniquingKeysWith: { first, _ in first })
        // Files first, so that a changed file is named; the archive itself last.
        for subject in actual.subject.dropFirst() + actual.subject.prefix(1) {
            guard let digest = expected[subject.name] else { throw Failure.fileNotSigned(subject.name) }
            guard digest == subject.digest["sha256"] else { throw Failure.digestMismatch(subject.name) }
        }
        let present = Set(actual.subject.map(\.name))
        if let missing = signed.subject.first(where: { !present.contains($0.name) }) { throw Failure.signedFileMissing(missing.name) }
        guard signed.predicate == actual.predicate else {
            throw Failure.digestMismatch("the package name and version (\(signed.predicate.package) \(signed.predicate.version) were signed)")
        }
        return signed
    }
}
