import Crypto
import Foundation
import SwiftASN1

/// Contributors' ECDSA P-256 signing keys, in the formats standard tools read: private keys as
/// PKCS#8 (encrypted with a passphrase, or plain), public keys as PEM PKIX
/// `SubjectPublicKeyInfo`, signatures as DER ECDSA over SHA-256.
public enum SigningKeys {
    public enum Failure: Error, CustomStringConvertible {
        case notAKey(String)
        case passphraseNeeded

        public var description: String {
            switch self {
            case let .notAKey(reason): "not an ECDSA P-256 key: \(reason)"
            case .passphraseNeeded: "this key is encrypted: give its passphrase"
            }
        }
    }

    /// A new key, and its private half as encrypted PKCS#8 PEM.
    public static func generate(passphrase: String, rounds: Int = EncryptedPrivateKey.rounds) throws -> (key: P256.Signing.PrivateKey, pem: String) {
        let key = P256.Signing.PrivateKey()
        return (key, try EncryptedPrivateKey.seal(pkcs8: Array(key.derRepresentation), passphrase: passphrase, rounds: rounds))
    }

    /// Reads a private key: encrypted PKCS#8 (with `passphrase`), plain PKCS#8 or SEC 1 (as
    /// `openssl ecparam -genkey` writes).
    public static func privateKey(pem: String, passphrase: String?) throws -> P256.Signing.PrivateKey {
        if pem.contains("-----BEGIN \(EncryptedPrivateKey.pemLabel)-----") {
            guard let passphrase else { throw Failure.passphraseNeeded }
            let der = try EncryptedPrivateKey.open(pem: pem, passphrase: passphrase)
            do { return try P256.Signing.PrivateKey(derRepresentation: der) } catch {
                // Well-formed DER of another kind of key was decrypted rightly; anything else is
                // what a wrong passphrase gives once in a while (garbage with valid padding).
                if (try? DER.parse(der)) != nil, der.count > 32 {
                    throw Failure.notAKey("the passphrase is right, but the key is not ECDSA P-256")
                }
                throw EncryptedPrivateKey.Failure.wrongPassphrase
            }
        }
        do { return try P256.Signing.PrivateKey(pemRepresentation: pem) } catch { throw Failure.notAKey("\(error)") }
    }

    public static func publicKey(pem: String) throws -> P256.Signing.PublicKey {
        do { return try P256.Signing.PublicKey(pemRepresentation: pem) } catch { throw Failure.notAKey("\(error)") }
    }

    /// The key's id: the SHA-256 of its DER `SubjectPublicKeyInfo`, in hex.
    public static func keyID(_ key: P256.Signing.PublicKey) -> String {
        SHA256.hash(data: key.derRepresentation).map { String(format: "%02x", $0) }.joined()
    }
}
