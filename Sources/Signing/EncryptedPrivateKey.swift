import Crypto
import Foundation
import SwiftASN1
import _CryptoExtras

/// A private key encrypted with a passphrase as PKCS#8 `EncryptedPrivateKeyInfo` (RFC 5958)
/// under PBES2 (RFC 8018): PBKDF2 with HMAC-SHA256, then AES-256-CBC. The PEM label is
/// `ENCRYPTED PRIVATE KEY`, which OpenSSL reads (`openssl pkey -in key.pem`).
public enum EncryptedPrivateKey {
    static let pbes2: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 1, 5, 13]
    static let pbkdf2: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 1, 5, 12]
    static let hmacSHA256: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 2, 9]
    /// PBKDF2's default pseudo-random function, when the parameters name none.
    static let hmacSHA1: ASN1ObjectIdentifier = [1, 2, 840, 113_549, 2, 7]
    static let aes256CBC: ASN1ObjectIdentifier = [2, 16, 840, 1, 101, 3, 4, 1, 42]
    public static let pemLabel = "ENCRYPTED PRIVATE KEY"
    /// PBKDF2 rounds for new keys.
    public static let rounds = 600_000

    public enum Failure: Error, CustomStringConvertible, Equatable {
        case wrongPassphrase
        case unsupported(String)
        case malformed(String)

        public var description: String {
            switch self {
            case .wrongPassphrase: "the passphrase does not open this key"
            case let .unsupported(what): "the key is encrypted with \(what), which epr does not read (it reads PBES2 with PBKDF2-HMAC-SHA256 and AES-256-CBC)"
            case let .malformed(reason): "the encrypted key is malformed: \(reason)"
            }
        }
    }

    /// Encrypts PKCS#8 `PrivateKeyInfo` DER with `passphrase`, as PEM.
    public static func seal(pkcs8 der: [UInt8], passphrase: String, rounds: Int = Self.rounds) throws -> String {
        let salt = (0..<16).map { _ in UInt8.random(in: 0...255) }
        let iv = (0..<16).map { _ in UInt8.random(in: 0...255) }
        let key = try KDF.Insecure.PBKDF2.deriveKey(from: Array(passphrase.utf8), salt: salt, using: .sha256, outputByteCount: 32,
                                                    unsafeUncheckedRounds: rounds)
        let encrypted = try AES._CBC.encrypt(der, using: key, iv: try AES._CBC.IV(ivBytes: iv))
        var serializer = DER.Serializer()
        try serializer.appendConstructedNode(identifier: .sequence) { info in
            try info.appendConstructedNode(identifier: .sequence) { algorithm in
                try algorithm.serialize(pbes2)
                try algorithm.appendConstructedNode(identifier: .sequence) { parameters in
                    try parameters.appendConstructedNode(identifier: .sequence) { kdf in
                        try kdf.serialize(pbkdf2)
                        try kdf.appendConstructedNode(identifier: .sequence) { kdfParameters in
                            try kdfParameters.serialize(ASN1OctetString(contentBytes: ArraySlice(salt)))
                            try kdfParameters.serialize(rounds)
                            try kdfParameters.serialize(32)
                            try kdfParameters.appendConstructedNode(identifier: .sequence) { prf in
                                try prf.serialize(hmacSHA256)
                                try prf.serialize(ASN1Null())
                            }
                        }
                    }
                    try parameters.appendConstructedNode(identifier: .sequence) { cipher in
                        try cipher.serialize(aes256CBC)
                        try cipher.serialize(ASN1OctetString(contentBytes: ArraySlice(iv)))
                    }
                }
            }
            try info.serialize(ASN1OctetString(contentBytes: ArraySlice(encrypted)))
        }
        return PEMDocument(type: pemLabel, derBytes: serializer.serializedBytes).pemString
    }

    /// Decrypts an `ENCRYPTED PRIVATE KEY` PEM to PKCS#8 `PrivateKeyInfo` DER.
    public static func open(pem: String, passphrase: String) throws -> [UInt8] {
        let document: PEMDocument
        do { document = try PEMDocument(pemString: pem) } catch { throw Failure.malformed("not PEM") }
        guard document.discriminator == pemLabel else { throw Failure.malformed("the PEM block is \(document.discriminator), not \(pemLabel)") }
        let salt: [UInt8], rounds: Int, keyLength: Int, iv: [UInt8], ciphertext: [UInt8]
        do {
            let root = try DER.parse(document.derBytes)
            (salt, rounds, keyLength, iv, ciphertext) = try DER.sequence(root, identifier: .sequence) { nodes in
                let (salt, rounds, keyLength, iv) = try DER.sequence(try next(&nodes), identifier: .sequence) { algorithm in
                    let scheme = try ASN1ObjectIdentifier(derEncoded: try next(&algorithm))
                    guard scheme == pbes2 else { throw Failure.unsupported("\(scheme)") }
                    return try DER.sequence(try next(&algorithm), identifier: .sequence) { parameters in
                        let (salt, rounds, keyLength) = try DER.sequence(try next(&parameters), identifier: .sequence) { kdf in
                            let function = try ASN1ObjectIdentifier(derEncoded: try next(&kdf))
                            guard function == pbkdf2 else { throw Failure.unsupported("key derivation \(function)") }
                            return try DER.sequence(try next(&kdf), identifier: .sequence) { values -> ([UInt8], Int, Int) in
                                let salt = Array(try ASN1OctetString(derEncoded: try next(&values)).bytes)
                                let rounds = try Int(derEncoded: try next(&values))
                                var keyLength = 32
                                var prf = hmacSHA1
                                while let node = values.next() {
                                    if node.identifier == .integer {
                                        keyLength = try Int(derEncoded: node)
                                    } else {
                                        prf = try DER.sequence(node, identifier: .sequence) { prf in
                                            let id = try ASN1ObjectIdentifier(derEncoded: try next(&prf))
                                            while prf.next() != nil {}
                                            return id
                                        }
                                    }
                                }
                                guard prf == hmacSHA256 else { throw Failure.unsupported("PBKDF2 with \(prf)") }
                                return (salt, rounds, keyLength)
                            }
                        }
                        let iv = try DER.sequence(try next(&parameters), identifier: .sequence) { cipher -> [UInt8] in
                            let algorithm = try ASN1ObjectIdentifier(derEncoded: try next(&cipher))
                            guard algorithm == aes256CBC else { throw Failure.unsupported("the cipher \(algorithm)") }
                            return Array(try ASN1OctetString(derEncoded: try next(&cipher)).bytes)
                        }
                        return (salt, rounds, keyLength, iv)
                    }
                }
                let ciphertext = Array(try ASN1OctetString(derEncoded: try next(&nodes)).bytes)
                return (salt, rounds, keyLength, iv, ciphertext)
            }
        } catch let failure as Failure {
            throw failure
        } catch {
            throw Failure.malformed("\(error)")
        }
        guard keyLength == 32, iv.count == 16, (1...10_000_000).contains(rounds), !salt.isEmpty else {
            throw Failure.unsupported("these parameters (key length \(keyLength), \(rounds) rounds)")
        }
        let key = try KDF.Insecure.PBKDF2.deriveKey(from: Array(passphrase.utf8), salt: salt, using: .sha256, outputByteCount: 32,
                                                    unsafeUncheckedRounds: rounds)
        do {
            return Array(try AES._CBC.decrypt(ciphertext, using: key, iv: try AES._CBC.IV(ivBytes: iv)))
        } catch {
            // A wrong passphrase gives a wrong key, and the padding does not check out.
            throw Failure.wrongPassphrase
        }
    }

    static func next(_ nodes: inout ASN1NodeCollection.Iterator) throws -> ASN1Node {
        guard let node = nodes.next() else { throw Failure.malformed("a field is missing") }
        return node
    }
}

