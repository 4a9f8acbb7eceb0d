import Crypto
import Foundation
import PackageFormat
import X509

/// How a node treats packages: `trusted` runs only what verifies to its root, `normal` checks
/// nothing (its operator takes responsibility).
public enum TrustMode: String, Sendable, CaseIterable, Codable {
    case trusted, normal
}

/// What a node in trusted mode trusts: the repository's root certificates, and the signing
/// authority's current revocation list (already verified to those roots).
public struct TrustAnchors: Sendable {
    public var roots: [Certificate]
    public var revocations: RevocationList.Content?
    /// The repository whose attestations count (`epr-repository:NAME`); any under the roots when nil.
    public var repository: String?

    public init(roots: [Certificate], revocations: RevocationList.Content?, repository: String? = nil) {
        self.roots = roots
        self.revocations = revocations
        self.repository = repository
    }

    /// Roots from a PEM file (one or more certificates), and a revocation list file when given,
    /// which must verify to them.
    public static func load(root: String, revocations: String?, at time: Date = Date()) async throws -> TrustAnchors {
        let roots: [Certificate]
        do { roots = try TrustRoot.certificates(pem: String(contentsOfFile: root, encoding: .utf8)) } catch {
            throw TrustRoot.Failure.invalid("\(root): \(error)")
        }
        guard let revocations else { return TrustAnchors(roots: roots, revocations: nil) }
        let list: RevocationList
        do { list = try JSONDecoder().decode(RevocationList.self, from: Data(contentsOf: URL(fileURLWithPath: revocations))) } catch {
            throw TrustRoot.Failure.untrusted("the revocation list \(revocations) cannot be read: \(error)")
        }
        return TrustAnchors(roots: roots, revocations: try await list.verifiedContent(roots: roots, at: time))
    }
}

/// Why a package was refused in trusted mode: the link of the chain of trust that failed (a
/// stable code) and, for people and logs, what exactly.
public struct VerificationRefusal: Error, CustomStringConvertible, Equatable, Sendable {
    public enum Link: String, Sendable, CaseIterable {
        /// No signature at all.
        case unsigned
        /// The signature or its certificates cannot be read.
        case malformedSignature = "signature-malformed"
        /// The signing key carries no certificate.
        case uncertified
        /// The certificate does not chain to the root, was not valid when the signature was
        /// checked, or is no code-signing certificate.
        case untrusted
        case revoked
        /// The signer's certificate does not allow this package.
        case notAllowed = "not-allowed"
        /// The signature does not verify with the certified key.
        case badSignature = "signature-invalid"
        /// The signature is valid, for another package or version.
        case otherPackage = "other-package"
        /// The archive or a file in it differs from what was signed.
        case tampered
        case attestationMissing = "attestation-missing"
        case attestationUntrusted = "attestation-untrusted"
        /// The repository attested another archive, version or signer.
        case attestationMismatch = "attestation-mismatch"
        /// No current revocation list to check against (none fetched, or expired).
        case revocationsUnavailable = "revocations-unavailable"
        case unreadable
    }

    public var link: Link
    public var reason: String

    public init(_ link: Link, _ reason: String) {
        self.link = link
        self.reason = reason
    }

    public var description: String { reason }
}

/// A package that verified in trusted mode: who signed it, and what the repository says of it.
public struct VerifiedPackage: Sendable, Equatable {
    public var package: String
    public var version: String
    public var digest: PackageFormat.SHA256Digest
    public var signer: String
    public var keyID: String
    /// What the repository attested (nil when only the signature was checked).
    public var attestation: RepositoryAttestation.Predicate?
}

/// Trusted mode's whole check of a package archive, its signature and the repository's
/// attestation, in the order a chain of trust is followed; the first link that fails is named.
public enum TrustedVerification {
    /// Verifies the archive at `archive` (expected to be `expected`'s package and version, when
    /// the caller asked for them by name) against `anchors` at `now`.
    public static func verify(archive: URL, expected: (package: String, version: String)?, signature: PackageSignature?,
                              attestation: RepositoryAttestation?, anchors: TrustAnchors, at now: Date = Date(),
                              requireAttestation: Bool = true) async throws(VerificationRefusal) -> VerifiedPackage {
        let digest: PackageFormat.SHA256Digest
        do { digest = try sha256(of: archive) } catch { throw VerificationRefusal(.unreadable, "the archive cannot be read: \(error)") }
        // An archive that cannot be inspected is still checked against what was signed, so that
        // a changed byte is reported as a change.
        let report = try? PackageInspector().inspect(path: archive.path)
        return try await verify(digest: digest, report: report, expected: expected, signature: signature, attestation: attestation,
                                anchors: anchors, at: now, requireAttestation: requireAttestation)
    }

    /// The same, for an archive already hashed (and inspected when it could be). With
    /// `requireAttestation` false only the contributor's signature is checked (as the
    /// repository does on upload), and the attestation field of the result is nil.
    public static func verify(digest: PackageFormat.SHA256Digest, report: PackageReport?, expected: (package: String, version: String)?,
                              signature: PackageSignature?, attestation: RepositoryAttestation?, anchors: TrustAnchors,
                              at now: Date = Date(), requireAttestation: Bool = true) async throws(VerificationRefusal) -> VerifiedPackage {
        guard let signature else { throw VerificationRefusal(.unsigned, "the package is not signed") }

        // The repository's attestation, when there is one, gives the time the contributor's
        // signature was checked: their certificate must have been valid then.
        var attested: RepositoryAttestation.Statement?
        if let attestation {
            do {
                attested = try await attestation.verifiedStatement(roots: anchors.roots, revocations: anchors.revocations,
                                                                   repository: anchors.repository, at: now)
            } catch {
                throw VerificationRefusal(.attestationUntrusted, "\(error)")
            }
        }
        let signedAt = attested?.predicate.signature_checked_at ?? now

        let claimed = signature.claimedStatement()
        guard let package = expected?.package ?? report?.manifest?.name.value ?? claimed?.predicate.package,
              let version = expected?.version ?? report?.manifest?.version.description ?? claimed?.predicate.version else {
            throw VerificationRefusal(.unreadable, "neither the archive nor its signature names the package")
        }
        let chain: [Certificate]
        do { chain = try (signature.certificates ?? []).map { try Certificate(pemEncoded: $0) } } catch {
            throw VerificationRefusal(.malformedSignature, "a certificate in the signature cannot be read")
        }
        guard !chain.isEmpty else {
            throw VerificationRefusal(.uncertified, "the signing key \(signature.signatures.first?.keyid ?? "?") is not certified: the signature carries no certificate")
        }
        if let revocations = anchors.revocations {
            for certificate in chain {
                if let entry = revocations.entry(for: certificate) {
                    throw VerificationRefusal(.revoked, TrustRoot.Failure.revoked(serial: RevocationList.serial(of: certificate), reason: entry.reason).description)
                }
            }
        }
        let key: P256.Signing.PublicKey, signer: String
        do { (key, signer) = try await TrustRoot.verify(chain: chain, roots: anchors.roots, package: package, at: signedAt) } catch let failure as TrustRoot.Failure {
            if case .notForThisPackage = failure { throw VerificationRefusal(.notAllowed, failure.description) }
            throw VerificationRefusal(.untrusted, failure.description)
        } catch {
            throw VerificationRefusal(.untrusted, "\(error)")
        }
        let statement: PackageSignature.Statement
        do { statement = try signature.verifiedStatement(key: key) } catch {
            if case .malformedEnvelope = error as? PackageSignature.Failure { throw VerificationRefusal(.malformedSignature, "\(error)") }
            throw VerificationRefusal(.badSignature, "\(error)")
        }
        guard PackageName.canonicalForm(statement.predicate.package) == PackageName.canonicalForm(package), statement.predicate.version == version else {
            throw VerificationRefusal(.otherPackage, "the signature is for \(statement.predicate.package) \(statement.predicate.version), not \(package) \(version)")
        }
        guard let signedArchive = statement.subject.first, signedArchive.digest["sha256"] == digest.hex else {
            // Name the file that changed when the archive can be read.
            if let report {
                do { _ = try signature.verify(report, key: key) } catch { throw VerificationRefusal(.tampered, "\(error)") }
            }
            throw VerificationRefusal(.tampered, "the archive differs from what was signed (its sha256 is \(digest.hex))")
        }
        guard let report else { throw VerificationRefusal(.unreadable, "the archive that was signed cannot be read") }
        do { _ = try signature.verify(report, key: key) } catch { throw VerificationRefusal(.tampered, "\(error)") }

        let keyID = SigningKeys.keyID(key)
        guard requireAttestation else {
            return VerifiedPackage(package: package, version: version, digest: digest, signer: signer, keyID: keyID, attestation: nil)
        }
        guard let attested else {
            throw VerificationRefusal(.attestationMissing, "the repository has not attested \(package) \(version): it was never approved and published there")
        }
        let predicate = attested.predicate
        guard attested.subject.first?.digest["sha256"] == digest.hex else {
            throw VerificationRefusal(.attestationMismatch, "the repository attested another archive of \(package) \(version)")
        }
        guard PackageName.canonicalForm(predicate.package) == PackageName.canonicalForm(package), predicate.version == version else {
            throw VerificationRefusal(.attestationMismatch, "the attestation is for \(predicate.package) \(predicate.version), not \(package) \(version)")
        }
        guard predicate.signer_key_id == keyID else {
            throw VerificationRefusal(.attestationMismatch, "the repository attested a signature by another key (\(predicate.signer_key_id ?? "none"))")
        }
        return VerifiedPackage(package: package, version: version, digest: digest, signer: signer, keyID: keyID, attestation: predicate)
    }

    /// A signature and an attestation as files hold them: absent is nil, but present and
    /// unreadable is refused as such (never taken for absent).
    public static func documents(signature: Data?, attestation: Data?) throws(VerificationRefusal)
        -> (signature: PackageSignature?, attestation: RepositoryAttestation?) {
        var decoded: (PackageSignature?, RepositoryAttestation?) = (nil, nil)
        if let signature {
            do { decoded.0 = try JSONDecoder().decode(PackageSignature.self, from: signature) } catch {
                throw VerificationRefusal(.malformedSignature, "the signature is not a DSSE envelope: \(error)")
            }
        }
        if let attestation {
            do { decoded.1 = try JSONDecoder().decode(RepositoryAttestation.self, from: attestation) } catch {
                throw VerificationRefusal(.attestationUntrusted, "the repository attestation cannot be read: \(error)")
            }
        }
        return decoded
    }

    /// Trusted mode over documents as files hold them.
    public static func verify(archive: URL, expected: (package: String, version: String)?, signature: Data?, attestation: Data?,
                              anchors: TrustAnchors, at now: Date = Date()) async throws(VerificationRefusal) -> VerifiedPackage {
        let decoded = try documents(signature: signature, attestation: attestation)
        return try await verify(archive: archive, expected: expected, signature: decoded.signature, attestation: decoded.attestation,
                                anchors: anchors, at: now)
    }

    /// The SHA-256 of a file, read in pieces.
    public static func sha256(of file: URL) throws -> PackageFormat.SHA256Digest {
        let handle = try FileHandle(forReadingFrom: file)
        defer { try? handle.close() }
        var hasher = StreamingSHA256()
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            chunk.withUnsafeBytes { hasher.update($0) }
        }
        return hasher.finalize()
    }
}

extension PackageSignature {
    /// The statement as the envelope carries it, before any signature is checked: only to name
    /// what it claims to be.
    public func claimedStatement() -> Statement? {
        Data(base64Encoded: payload).flatMap { try? JSONDecoder().decode(Statement.self, from: $0) }
    }
}
