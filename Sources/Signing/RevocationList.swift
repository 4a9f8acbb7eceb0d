import Crypto
import Foundation
import PackageFormat
@_spi(FixedExpiryValidationTime) import X509

/// The certificates the signing authority has revoked, as a signed document: a DSSE envelope
/// (signed by the authority's key, carrying its certificate) whose payload lists revoked
/// certificates by serial number. Nodes check it in trusted mode; a list that does not verify
/// to the trusted root counts for nothing.
public struct RevocationList: Codable, Sendable, Equatable {
    public static let payloadType = "application/vnd.epr.revocations+json"

    public struct Entry: Codable, Sendable, Equatable {
        /// The certificate's serial number, in lower-case hex.
        public var serial: String
        /// The id of the certificate's key (see ``SigningKeys/keyID(_:)``): every certificate
        /// for that key is revoked with it.
        public var key_id: String?
        public var revoked_at: Date
        public var reason: String?

        public init(serial: String, key_id: String? = nil, revoked_at: Date, reason: String?) {
            self.serial = serial
            self.key_id = key_id
            self.revoked_at = revoked_at
            self.reason = reason
        }
    }

    public struct Content: Codable, Sendable, Equatable {
        /// Counts up with each list the authority signs: a node keeps the highest it has seen.
        public var sequence: Int
        public var updated: Date
        /// After this the list is refused, so that an old one cannot be handed out for ever.
        public var expires: Date
        public var revoked: [Entry]

        public init(sequence: Int, updated: Date, expires: Date, revoked: [Entry]) {
            self.sequence = sequence
            self.updated = updated
            self.expires = expires
            self.revoked = revoked
        }

        /// The entry that revokes `certificate`: by its serial number, or by its key.
        public func entry(for certificate: Certificate) -> Entry? {
            let serial = RevocationList.serial(of: certificate)
            let key = P256.Signing.PublicKey(certificate.publicKey).map(SigningKeys.keyID)
            return revoked.first { $0.serial == serial || ($0.key_id != nil && $0.key_id == key) }
        }
    }

    /// Days a list is good for.
    public static let lifetimeDays = 30

    /// The number of the next list: above the last one, and at least the time in seconds since
    /// 1970, so that lists signed in different places (the repository, the authority's own
    /// tools) follow each other in the order they were made rather than collide.
    public static func nextSequence(after previous: Int, now: Date = Date()) -> Int {
        max(previous + 1, Int(now.timeIntervalSince1970))
    }

    /// The highest sequence number a list may carry at `time`: numbers count up with time, so
    /// one far ahead of it could shut out every later list.
    public static func highestSequence(at time: Date) -> Int { Int(time.timeIntervalSince1970) + 86400 }

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

    /// Signs `content` and writes the list to `file`.
    public static func write(_ content: Content, by authority: TrustRoot.Authority, to file: URL) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        try encoder.encode(try sign(content, by: authority)).write(to: file, options: .atomic)
    }

    /// When the list says it was made (unverified), to check an expired list one replaces.
    public var signedTime: Date {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return Data(base64Encoded: payload).flatMap { try? decoder.decode(Content.self, from: $0).updated } ?? Date()
    }

    /// The signing authority's certificate, unverified (to see who signed a list).
    public var signer: Certificate? { certificates.first.flatMap { try? Certificate(pemEncoded: $0) } }

    /// The list's content once its signer is shown to be a certificate authority under one of
    /// `roots` and its signature verifies.
    public func verifiedContent(roots: [Certificate], at time: Date = Date()) async throws -> Content {
        guard payloadType == Self.payloadType, let payload = Data(base64Encoded: payload),
              let pem = certificates.first, let signer = try? Certificate(pemEncoded: pem) else {
            throw TrustRoot.Failure.untrusted("the revocation list is malformed")
        }
        var verifier = Verifier(rootCertificates: CertificateStore(roots)) { RFC5280Policy(fixedExpiryValidationTime: time) }
        guard case .validCertificate = await verifier.validate(leaf: signer, intermediates: CertificateStore([])),
              let constraints = try? signer.extensions.basicConstraints, case .isCertificateAuthority = constraints,
              let usage = try? signer.extensions.keyUsage, usage.cRLSign,
              let key = P256.Signing.PublicKey(signer.publicKey) else {
            throw TrustRoot.Failure.untrusted("the revocation list is not signed by an authority of the trusted root")
        }
        guard PackageSignature.anyVerifies(signatures, type: payloadType, payload: Array(payload), key: key) else { throw TrustRoot.Failure.untrusted("the revocation list's signature does not verify") }
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        let content: Content
        do { content = try decoder.decode(Content.self, from: payload) } catch {
            throw TrustRoot.Failure.untrusted("the revocation list is malformed: \(error)")
        }
        guard content.expires > time else { throw TrustRoot.Failure.untrusted("the revocation list expired on \(content.expires); get a current one") }
        // A list made in the future, living longer than lists live, or numbered beyond what the
        // time allows, is no list its authority would make.
        guard content.updated <= time.addingTimeInterval(300),
              content.expires.timeIntervalSince(content.updated) <= Double(Self.lifetimeDays + 1) * 86400,
              content.sequence <= Self.highestSequence(at: max(time, content.updated)) else {
            throw TrustRoot.Failure.untrusted("the revocation list's dates or number are out of bounds")
        }
        guard content.entry(for: signer) == nil else { throw TrustRoot.Failure.untrusted("the revocation list's own signer is revoked") }
        return content
    }
}
