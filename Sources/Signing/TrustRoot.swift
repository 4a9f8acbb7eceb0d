import Crypto
import Foundation
import PackageFormat
import SwiftASN1
@_spi(FixedExpiryValidationTime) import X509

/// The repository's certificate authority: a root (its key kept offline) and an intermediate
/// that certifies contributors' signing keys with X.509 code-signing certificates. A
/// contributor's certificate names the user (`epr-signer:NAME`) and the package name patterns
/// they may sign (`epr-package:PATTERN`) as URIs in its subject alternative names.
public enum TrustRoot {
    public static let signerScheme = "epr-signer:"
    public static let packageScheme = "epr-package:"
    /// Names the repository in the certificate of the key it attests publications with.
    public static let repositoryScheme = "epr-repository:"

    public struct Authority: Sendable {
        public var certificate: Certificate
        public var key: P256.Signing.PrivateKey
        public init(certificate: Certificate, key: P256.Signing.PrivateKey) {
            self.certificate = certificate
            self.key = key
        }
    }

    /// A new root (valid `rootYears`) and an intermediate it certifies (valid `intermediateYears`).
    public static func create(name: String, now: Date = Date(), rootYears: Int = 20, intermediateYears: Int = 3) throws
        -> (root: Authority, intermediate: Authority) {
        let rootKey = P256.Signing.PrivateKey()
        let rootName = try DistinguishedName {
            OrganizationName(name)
            CommonName("\(name) root")
        }
        let root = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(rootKey.publicKey), notValidBefore: now.addingTimeInterval(-300),
            notValidAfter: now.addingTimeInterval(Double(rootYears) * 365 * 86400), issuer: rootName, subject: rootName,
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 1))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: .init(rootKey.publicKey))
            },
            issuerPrivateKey: .init(rootKey))
        let authority = Authority(certificate: root, key: rootKey)
        return (authority, try intermediate(name: name, by: authority, now: now, years: intermediateYears))
    }

    /// A new signing authority (intermediate) under `root`, valid `years` (never past the root).
    public static func intermediate(name: String, by root: Authority, now: Date = Date(), years: Int = 3) throws -> Authority {
        let key = P256.Signing.PrivateKey()
        let subject = try DistinguishedName {
            OrganizationName(name)
            CommonName("\(name) signing authority")
        }
        let certificate = try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(key.publicKey), notValidBefore: now.addingTimeInterval(-300),
            notValidAfter: min(now.addingTimeInterval(Double(years) * 365 * 86400), root.certificate.notValidAfter),
            issuer: root.certificate.subject, subject: subject, signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.isCertificateAuthority(maxPathLength: 0))
                Critical(KeyUsage(keyCertSign: true, cRLSign: true))
                SubjectKeyIdentifier(hash: .init(key.publicKey))
                AuthorityKeyIdentifier(keyIdentifier: try root.certificate.extensions.subjectKeyIdentifier?.keyIdentifier)
            },
            issuerPrivateKey: .init(root.key))
        return Authority(certificate: certificate, key: key)
    }

    /// A code-signing certificate for `user`'s key, allowing the package name patterns given.
    public static func certify(_ publicKey: P256.Signing.PublicKey, user: String, packages: [String], days: Int, by authority: Authority,
                               now: Date = Date()) throws -> Certificate {
        guard !packages.isEmpty else { throw Failure.invalid("name at least one package or pattern the key may sign") }
        let names = [GeneralName.uniformResourceIdentifier(signerScheme + user)] + packages.map { .uniformResourceIdentifier(packageScheme + $0) }
        return try leaf(publicKey, commonName: user, names: names, days: days, by: authority, now: now)
    }

    /// A certificate for the key the repository `name` signs its attestations with.
    public static func certifyRepository(_ publicKey: P256.Signing.PublicKey, name: String, days: Int, by authority: Authority,
                                         now: Date = Date()) throws -> Certificate {
        try leaf(publicKey, commonName: "\(name) attestations", names: [.uniformResourceIdentifier(repositoryScheme + name)], days: days,
                 by: authority, now: now)
    }

    /// A signing leaf: no CA, digitalSignature, code signing, the names given; never valid past
    /// its authority.
    static func leaf(_ publicKey: P256.Signing.PublicKey, commonName: String, names: [GeneralName], days: Int, by authority: Authority,
                     now: Date) throws -> Certificate {
        try Certificate(
            version: .v3, serialNumber: .init(), publicKey: .init(publicKey), notValidBefore: now.addingTimeInterval(-300),
            notValidAfter: min(now.addingTimeInterval(Double(days) * 86400), authority.certificate.notValidAfter),
            issuer: authority.certificate.subject, subject: try DistinguishedName { CommonName(commonName) },
            signatureAlgorithm: .ecdsaWithSHA256,
            extensions: try Certificate.Extensions {
                Critical(BasicConstraints.notCertificateAuthority)
                Critical(KeyUsage(digitalSignature: true))
                try ExtendedKeyUsage([.codeSigning])
                SubjectAlternativeNames(names)
                AuthorityKeyIdentifier(keyIdentifier: try authority.certificate.extensions.subjectKeyIdentifier?.keyIdentifier)
            },
            issuerPrivateKey: .init(authority.key))
    }

    /// The repository a certificate names (`epr-repository:NAME`), if any.
    public static func repository(of certificate: Certificate) -> String? {
        let names: SubjectAlternativeNames? = (try? certificate.extensions.subjectAlternativeNames) ?? nil
        for case let .uniformResourceIdentifier(uri) in names.map(Array.init) ?? [] where uri.hasPrefix(repositoryScheme) {
            return String(uri.dropFirst(repositoryScheme.count))
        }
        return nil
    }

    /// Who a certificate names and what it may sign.
    public static func grant(of certificate: Certificate) -> (signer: String?, packages: [String]) {
        let names: SubjectAlternativeNames? = (try? certificate.extensions.subjectAlternativeNames) ?? nil
        var signer: String?, packages: [String] = []
        for name in names.map(Array.init) ?? [] {
            guard case let .uniformResourceIdentifier(uri) = name else { continue }
            if uri.hasPrefix(signerScheme) { signer = String(uri.dropFirst(signerScheme.count)) }
            if uri.hasPrefix(packageScheme) { packages.append(String(uri.dropFirst(packageScheme.count))) }
        }
        return (signer, packages)
    }

    public enum Failure: Error, CustomStringConvertible, Equatable {
        case invalid(String)
        case untrusted(String)
        case notForThisPackage(signer: String, package: String, allowed: [String])
        case revoked(serial: String, reason: String?)

        public var description: String {
            switch self {
            case let .invalid(reason): reason
            case let .untrusted(reason): "the signing certificate is not trusted: \(reason)"
            case let .revoked(serial, reason): "the signing certificate \(serial) is revoked" + (reason.map { ": \($0)" } ?? "")
            case let .notForThisPackage(signer, package, allowed):
                "\(signer)'s key is certified for \(allowed.joined(separator: ", ")), not for \(package)"
            }
        }
    }

    /// Checks that `chain` (leaf first) leads to one of `roots` at `time`, that the leaf is a
    /// code-signing certificate, and that it allows `package`; returns the leaf's key.
    public static func verify(chain: [Certificate], roots: [Certificate], package: String, at time: Date = Date()) async throws
        -> (key: P256.Signing.PublicKey, signer: String) {
        guard let leaf = chain.first else { throw Failure.untrusted("the signature carries no certificate (the key is not certified)") }
        let key = try await validateSigner(leaf, intermediates: Array(chain.dropFirst()), roots: roots, at: time)
        let (signer, packages) = grant(of: leaf)
        guard let signer else { throw Failure.untrusted("it names no signer") }
        guard packages.contains(where: { PackageName.pattern($0, covers: package) }) else {
            throw Failure.notForThisPackage(signer: signer, package: package, allowed: packages)
        }
        return (key, signer)
    }

    /// Checks that `chain` (leaf first) is a repository attestation key's, under one of `roots`
    /// at `time`; returns its key.
    public static func verifyRepository(chain: [Certificate], roots: [Certificate], at time: Date = Date()) async throws -> P256.Signing.PublicKey {
        guard let leaf = chain.first else { throw Failure.untrusted("it carries no certificate") }
        let key = try await validateSigner(leaf, intermediates: Array(chain.dropFirst()), roots: roots, at: time)
        guard repository(of: leaf) != nil else { throw Failure.untrusted("its certificate is not a repository's") }
        return key
    }

    /// A signing leaf: chains to `roots` at `time`, signs, is no CA, is for code signing.
    static func validateSigner(_ leaf: Certificate, intermediates: [Certificate], roots: [Certificate], at time: Date) async throws
        -> P256.Signing.PublicKey {
        var verifier = Verifier(rootCertificates: CertificateStore(roots)) { RFC5280Policy(fixedExpiryValidationTime: time) }
        switch await verifier.validate(leaf: leaf, intermediates: CertificateStore(intermediates)) {
        case .validCertificate:
            break
        case let .couldNotValidate(failures):
            let expired = leaf.notValidAfter < time || leaf.notValidBefore > time
            throw Failure.untrusted(expired ? "the certificate is not valid at \(time.formatted(.iso8601)) (valid \(leaf.notValidBefore.formatted(.iso8601)) to \(leaf.notValidAfter.formatted(.iso8601)))"
                                            : "it does not chain to the trusted root (\(failures.map { "\($0)" }.joined(separator: "; ")))")
        }
        // The policy leaves key usages to the caller: a signer's certificate signs, and is no CA.
        guard let usage = try? leaf.extensions.extendedKeyUsage, usage.contains(.codeSigning),
              let keyUsage = try? leaf.extensions.keyUsage, keyUsage.digitalSignature,
              let constraints = try? leaf.extensions.basicConstraints, case .notCertificateAuthority = constraints else {
            throw Failure.untrusted("it is not a code-signing certificate")
        }
        guard let key = P256.Signing.PublicKey(leaf.publicKey) else { throw Failure.untrusted("its key is not ECDSA P-256") }
        return key
    }

    public static func pem(_ certificates: [Certificate]) throws -> String {
        try certificates.map { try $0.serializeAsPEM().pemString }.joined(separator: "\n") + "\n"
    }

    public static func certificates(pem: String) throws -> [Certificate] {
        do { return try PEMDocument.parseMultiple(pemString: pem).map { try Certificate(pemDocument: $0) } } catch {
            throw Failure.invalid("not PEM certificates: \(error)")
        }
    }
}
