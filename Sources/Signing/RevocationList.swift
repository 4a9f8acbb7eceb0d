import Crypto
import Foundation
import PackageFormat
import X509

/// The certificates the signing authority has revoked, as a signed document: a DSSE envelope
/// (signed by the authority's key, carrying its certificate) whose payload lists revoked
/// certificates by serial number. Nodes check it in trusted mode; a list that does not verify
/// to the trusted root counts for nothing.
public struct RevocationList: Codable, Sendable, Equatable {
    public static let payloadType = "application/vnd.epr.revocations+json"

    public struct Entry: Codable, Sendable, Equatable {
        /// The certificate's serial number, in lower-case hex.
        public var serial: String
        public var revoked_at: Date
        public var reason: String?

        public init(serial: String, revoked_at: Date, reason: String?) {
            self.serial = serial
            self.revoked_at = revoked_at
            self.reason = reason
        }
    }

    public struct Content: Codable, Sendable, Equatable {
        /// When the list was made: a newer list replaces an older one.
        public var updated: Date
        public var revoked: [Entry]

        public init(updated: Date, revoked: [Entry]) {
            self.updated = updated
            self.revoked = revoked
        }
    }

    public var payloadType: String
    public var payload: String
    public var signatures: [PackageSignature.Signature]
    /// The signing authority's certificate (PEM).
    public var certificates: [String]

    public static func serial(of certificate: Certificate) -> String {
        certificate.serialNumber.bytes.map { String(format: "%02x", $0) }.joined()
    }

    /// A list with `content`, signed by `authority`.
    public static func sign(_ content: Content, by authority: TrustRoot.Authority) throws -> RevocationList {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        let payload = Array(try encoder.encode(content))
        let signature = try authority.key.signature(for: PackageSignature.pae(type: payloadType, payload: payload))
        return RevocationList(payloadType: payloadType, payload: Data(payload).base64EncodedString(),
                              signatures: [.init(keyid: SigningKeys.keyID(authority.key.publicKey),
                                                 sig: signature.derRepresentation.base64EncodedString())],
                              certificates: [try authority.certificate.serializeAsPEM().pemString])
    }

    /// The list's content once its signer is shown to be a certificate authority under one of
    /// `roots` and its signature verifies.
    public func verifiedContent(roots: [Certificate], at time: Date = Date()) async throws -> Content {
        guard payloadType == Self.payloadType, let payload = Data(base64Encoded: payload),
              let pem = certificates.first, let signer = try? Certificate(pemEncoded: pem) else {
            throw TrustRoot.Failure.untrusted("the revocation list is malformed")
        }
        var verifier = Verifier(rootCertificates: CertificateStore(roots)) { RFC5280Policy(validationTime: time) }
        guard case .validCertificate = await verifier.validate(leaf: signer, intermediates: CertificateStore([])),
              let constraints = try? signer.extensions.basicConstraints, case .isCertificateAuthority = constraints,
              let key = P256.Signing.PublicKey(signer.publicKey) else {
            throw TrustRoot.Failure.untrusted("the revocation list is not signed by an authority of the trusted root")
        }
        guard PackageSignature.anyVerifies(signatures, type: payloadType, payload: Array(payload), key: key) else { throw TrustRoot.Failure.untrusted("the revocation list's signature does not verify") }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        do { return try decoder.decode(Content.self, from: payload) } catch {
            throw TrustRoot.Failure.untrusted("the revocation list is malformed: \(error)")
        }
    }
}
