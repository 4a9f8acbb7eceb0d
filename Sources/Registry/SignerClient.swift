import Crypto
import Foundation
import PackageFormat
import Signing
import X509
#if canImport(Glibc)
import Glibc
#endif

/// The repository's keys held by a signer process, reached over its local socket.
public final class SignerClient: RepositoryKeys {
    public let path: String

    public init(path: String) { self.path = path }

    public struct Failure: Error, CustomStringConvertible {
        public var description: String
    }

    func call(_ request: SignerRequest) throws -> SignerResponse {
        let connection = try LocalSocket.connect(path: path)
        defer { close(connection) }
        LocalSocket.write(connection, try JSONEncoder().encode(request) + Data([10]))
        guard let line = LocalSocket.readLine(connection, limit: 64 << 20, within: .seconds(20)) else {
            throw Failure(description: "the signer at \(path) did not answer")
        }
        let response = try JSONDecoder().decode(SignerResponse.self, from: line)
        if let error = response.error { throw Failure(description: "the signer refused: \(error)") }
        return response
    }

    public func describe() throws -> SignerDescription {
        guard let description = try call(SignerRequest(op: "describe")).description else { throw Failure(description: "the signer described nothing") }
        return description
    }

    /// The signing authority whose keys the signer holds, and the OCI signer.
    public func authority(referencePrefix: String) throws -> (SigningAuthority, OCISigner) {
        let description = try describe()
        guard (description.reference_prefix ?? "") == referencePrefix else {
            throw Failure(description: "the signer signs OCI manifests under \"\(description.reference_prefix ?? "")\", this server's public_url gives \"\(referencePrefix)\": "
                          + "give the signer --public-url as the server's public_url")
        }
        guard let intermediate = try TrustRoot.certificates(pem: description.intermediate).first else {
            throw Failure(description: "the signer gave no intermediate certificate")
        }
        let authority = SigningAuthority(repository: description.repository, roots: try TrustRoot.certificates(pem: description.roots),
                                         intermediateCertificate: intermediate,
                                         attestationChain: try TrustRoot.certificates(pem: description.attestation_chain),
                                         certificateDays: description.certificate_days, keys: self)
        let client = self
        let oci = OCISigner(publicKey: try SigningKeys.publicKey(pem: description.oci_public_key), referencePrefix: referencePrefix) { payload in
            var request = SignerRequest(op: "oci-sign")
            request.payload = payload.base64EncodedString()
            guard let signature = try client.call(request).signature else { throw Failure(description: "the signer gave no signature") }
            return signature
        }
        return (authority, oci)
    }

    public func certify(_ key: P256.Signing.PublicKey, user: String, packages: [String], days: Int, now: Date) throws -> Certificate {
        var request = SignerRequest(op: "certify")
        (request.public_key, request.user, request.packages, request.days, request.now) = (key.pemRepresentation, user, packages, days, now)
        guard let pem = try call(request).certificate, let certificate = try TrustRoot.certificates(pem: pem).first,
              P256.Signing.PublicKey(certificate.publicKey)?.rawRepresentation == key.rawRepresentation else {
            throw Failure(description: "the signer's certificate is not for the key")
        }
        return certificate
    }

    public func signRevocations(_ content: RevocationList.Content) throws -> RevocationList {
        var request = SignerRequest(op: "revocations")
        request.content = content
        guard let list = try call(request).revocations else { throw Failure(description: "the signer gave no list") }
        return list
    }

    public func attest(_ predicate: RepositoryAttestation.Predicate, artifact: String, digest: PackageFormat.SHA256Digest) throws -> RepositoryAttestation {
        var request = SignerRequest(op: "attest")
        (request.predicate, request.artifact, request.digest) = (predicate, artifact, digest.description)
        guard let attestation = try call(request).attestation else { throw Failure(description: "the signer gave no attestation") }
        return attestation
    }

    public func renewAttestationKey(now: Date) throws -> [Certificate] {
        var request = SignerRequest(op: "renew")
        request.now = now
        return try TrustRoot.certificates(pem: try call(request).chain ?? "")
    }

    public func attestationChain() throws -> [Certificate] {
        try TrustRoot.certificates(pem: try call(SignerRequest(op: "chain")).chain ?? "")
    }

    public func offlineRevocations() throws -> Data? {
        try call(SignerRequest(op: "offline-revocations")).data.flatMap { Data(base64Encoded: $0) }
    }
}
