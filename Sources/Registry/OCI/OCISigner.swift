import Crypto
import Foundation
import PackageFormat
import Signing

/// The repository's key for signatures OCI tools verify: cosign's form, an ECDSA P-256
/// signature (DER, over SHA-256) of a simple signing payload that names the manifest's digest.
/// Its public half is published as a PEM PKIX key.
public struct OCISigner: Sendable {
    public let key: P256.Signing.PrivateKey
    /// What payloads name as the image's repository: `host[:port]/`, or empty.
    public let referencePrefix: String

    public init(key: P256.Signing.PrivateKey, referencePrefix: String) {
        self.key = key
        self.referencePrefix = referencePrefix
    }

    public var publicKeyPEM: String { key.publicKey.pemRepresentation + "\n" }

    /// Loads the key from `file` (plain PKCS#8 PEM), making one on first use (mode 0600).
    public static func load(file: URL, referencePrefix: String) throws -> OCISigner {
        if let pem = try? String(contentsOf: file, encoding: .utf8) {
            return OCISigner(key: try SigningKeys.privateKey(pem: pem, passphrase: nil), referencePrefix: referencePrefix)
        }
        let key = P256.Signing.PrivateKey()
        do {
            try SecretFiles.save(key.pemRepresentation + "\n", to: file.path, exclusive: true)
            return OCISigner(key: key, referencePrefix: referencePrefix)
        } catch {
            // Another process made it first.
            guard let pem = try? String(contentsOf: file, encoding: .utf8) else { throw error }
            return OCISigner(key: try SigningKeys.privateKey(pem: pem, passphrase: nil), referencePrefix: referencePrefix)
        }
    }

    /// The simple signing payload for a manifest of `repository`.
    public func payload(repository: String, manifest: PackageFormat.SHA256Digest) -> Data {
        let object: [String: Any] = [
            "critical": [
                "identity": ["docker-reference": referencePrefix + repository],
                "image": ["docker-manifest-digest": manifest.description],
                "type": "cosign container image signature",
            ],
            "optional": ["creator": "epr"],
        ]
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
    }

    public func sign(_ payload: Data) throws -> String {
        try key.signature(for: payload).derRepresentation.base64EncodedString()
    }
}
