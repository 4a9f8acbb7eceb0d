import Crypto
import Foundation
import PackageFormat
import Signing

/// The repository's key for signatures OCI tools verify: cosign's form, an ECDSA P-256
/// signature (DER, over SHA-256) of a simple signing payload that names the manifest's digest.
/// Its public half is published as a PEM PKIX key.
public struct OCISigner: Sendable {
    public let publicKey: P256.Signing.PublicKey
    /// What payloads name as the image's repository: `host[:port]/`, or empty.
    public let referencePrefix: String
    /// Signs a payload: base64 of the DER signature.
    let signature: @Sendable (Data) throws -> String

    public init(key: P256.Signing.PrivateKey, referencePrefix: String) {
        self.init(publicKey: key.publicKey, referencePrefix: referencePrefix) { payload in
            try key.signature(for: payload).derRepresentation.base64EncodedString()
        }
    }

    /// A signer whose key is held elsewhere (a signer process): `sign` signs a payload.
    public init(publicKey: P256.Signing.PublicKey, referencePrefix: String, sign: @escaping @Sendable (Data) throws -> String) {
        self.publicKey = publicKey
        self.referencePrefix = referencePrefix
        self.signature = sign
    }

    public var publicKeyPEM: String { publicKey.pemRepresentation + "\n" }

    /// Loads the key from `file` (PKCS#8 PEM), making one on first use (mode 0600); with a
    /// passphrase (the signing authority's), kept encrypted with it, and a key kept in the clear
    /// is encrypted in place.
    public static func load(file: URL, referencePrefix: String, passphrase: String? = nil) throws -> OCISigner {
        func open(_ pem: String) throws -> OCISigner {
            let key = try SigningKeys.privateKey(pem: pem, passphrase: passphrase)
            if passphrase != nil, !pem.contains("ENCRYPTED") { try SecretFiles.save(key, to: file, passphrase: passphrase) }
            return OCISigner(key: key, referencePrefix: referencePrefix)
        }
        if let pem = try? String(contentsOf: file, encoding: .utf8) { return try open(pem) }
        let key = P256.Signing.PrivateKey()
        let text = try passphrase.map { try EncryptedPrivateKey.seal(pkcs8: Array(key.derRepresentation), passphrase: $0) } ?? key.pemRepresentation + "\n"
        do {
            try SecretFiles.save(text, to: file.path, exclusive: true)
            return OCISigner(key: key, referencePrefix: referencePrefix)
        } catch {
            // Another process made it first.
            guard let pem = try? String(contentsOf: file, encoding: .utf8) else { throw error }
            return try open(pem)
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
        try signature(payload)
    }

    /// Whether `payload` is a simple signing payload as ``payload(repository:manifest:)`` makes
    /// them with `referencePrefix`: a manifest digest, one of this repository's package names,
    /// and nothing else. What a signer process agrees to sign.
    public static func isWellFormed(_ payload: Data, referencePrefix: String) -> Bool {
        guard payload.count <= 4096, let object = try? JSONSerialization.jsonObject(with: payload) as? [String: Any],
              Set(object.keys) == ["critical", "optional"],
              let optional = object["optional"] as? [String: Any], optional.count == 1, optional["creator"] as? String == "epr",
              let critical = object["critical"] as? [String: Any], Set(critical.keys) == ["identity", "image", "type"],
              critical["type"] as? String == "cosign container image signature",
              let identity = critical["identity"] as? [String: Any], identity.count == 1, let reference = identity["docker-reference"] as? String,
              reference.hasPrefix(referencePrefix), isPackageName(String(reference.dropFirst(referencePrefix.count))),
              let image = critical["image"] as? [String: Any], image.count == 1, let digest = image["docker-manifest-digest"] as? String,
              isDigest(digest) else { return false }
        return true
    }

    /// Whether `text` is a package's canonical name: a lower-case letter, then up to 63 of a-z, 0-9, `_` and `-`.
    static func isPackageName(_ text: String) -> Bool {
        let bytes = Array(text.utf8)
        guard (1...64).contains(bytes.count), (97...122).contains(bytes[0]) else { return false }
        return bytes.allSatisfy { (97...122).contains($0) || (48...57).contains($0) || $0 == 95 || $0 == 45 }
    }

    /// What payloads name as the repository's host for a public URL: `host[:port]/`, or empty without one.
    public static func referencePrefix(publicURL: String?) -> String {
        publicURL.flatMap { URL(string: $0) }.map { url in (url.host ?? "") + (url.port.map { ":\($0)" } ?? "") + "/" } ?? ""
    }

    /// Whether `text` is `sha256:` and 64 lower-case hexadecimal digits.
    public static func isDigest(_ text: String) -> Bool {
        let hex = text.utf8.dropFirst(7)
        return text.hasPrefix("sha256:") && hex.count == 64 && hex.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }
}
