import Crypto
import Foundation
import NIOPosix
import PackageFormat
import RegistryAPI
import Signing
import Storage
import X509

/// Signing: grants, certificates for contributors' keys, revocations and the signed list nodes
/// fetch, signatures checked on upload, and the repository's attestations of what it published.
extension RegistryService {
    func authority() throws -> SigningAuthority {
        guard let signing else { throw RegistryError.signingNotConfigured }
        return signing
    }

    public func trustInfo() throws -> TrustInfo {
        guard let signing else {
            return TrustInfo(configured: false, repository: nil, root_certificates: nil, intermediate_certificate: nil, attestation_chain: nil,
                             require_signatures: requireSignatures, certificate_days: nil)
        }
        return TrustInfo(configured: true, repository: signing.repository, root_certificates: try TrustRoot.pem(signing.roots),
                         intermediate_certificate: try TrustRoot.pem([signing.intermediateCertificate]),
                         attestation_chain: try TrustRoot.pem(signing.attestationChain), require_signatures: requireSignatures,
                         certificate_days: signing.certificateDays)
    }

    // MARK: Grants

    /// The organisation whose admins may grant `pattern`, if any (else only admins may): an
    /// exact name in its namespace (`acme`, `acme-...`, the longest organisation name that fits)
    /// that is not a package of another organisation or of none, or `acme-*` when no other
    /// organisation's name lies under it.
    func grantingOrganisation(of pattern: String) async throws -> String? {
        let canonical = PackageName.canonicalForm(pattern)
        let names = try await organisations.organisations().map(\.name)
        if !pattern.contains("*") {
            guard let org = names.filter({ canonical == $0 || canonical.hasPrefix($0 + "-") }).max(by: { $0.count < $1.count }) else { return nil }
            if try await metadata.package(canonical: canonical) != nil, try await organisations.organisation(ofPackage: canonical) != org { return nil }
            return org
        }
        guard let org = names.first(where: { canonical == $0 + "-*" }),
              !names.contains(where: { $0 != org && $0.hasPrefix(org + "-") }) else { return nil }
        return org
    }

    /// Grants `user` signing for each pattern, once every one of them is allowed.
    public func grantSigning(user: String, packages: [String], by principal: Principal?) async throws -> [SigningGrantBody] {
        guard !packages.isEmpty else { throw RegistryError.invalidRequest("name at least one package or pattern") }
        for pattern in packages {
            try Self.validatePattern(pattern)
            let org = try await grantingOrganisation(of: pattern)
            try await authorize(.grantSigning(org: org), principal, owners: try await org.asyncMap { try await organisationAdmins($0) },
                                target: user)
        }
        var granted: [SigningGrantBody] = []
        for pattern in packages {
            let grant: SigningGrant
            do {
                grant = try await trust.addGrant(SigningGrant(user: user, pattern: pattern, grantedBy: principal?.name ?? "", createdAt: Date()))
            } catch TrustStoreError.userNotFound { throw RegistryError.userNotFound(user) }
            await audit("signing-grant.add", principal, target: user, detail: pattern)
            granted.append(Self.body(grant))
        }
        return granted
    }

    /// A user's grants (their own, or anyone's for admins), or every grant (admins).
    public func signingGrants(user: String?, by principal: Principal?) async throws -> [SigningGrantBody] {
        guard let principal else { throw RegistryError.unauthenticated }
        if user != principal.name { try await authorize(.manageUsers, principal, target: user) }
        return try await trust.grants(user: user).map(Self.body)
    }

    public func revokeGrant(id: Int, by principal: Principal?) async throws {
        guard principal != nil else { throw RegistryError.unauthenticated }
        guard let grant = try await trust.grants(user: nil).first(where: { $0.id == id }) else { throw RegistryError.signingGrantNotFound(id) }
        let org = try await grantingOrganisation(of: grant.pattern)
        try await authorize(.grantSigning(org: org), principal, owners: try await org.asyncMap { try await organisationAdmins($0) },
                            target: grant.user)
        _ = try await trust.removeGrant(id: id)
        await audit("signing-grant.remove", principal, target: grant.user, detail: grant.pattern)
    }

    static func validatePattern(_ pattern: String) throws {
        let allowed = pattern.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "-_*".contains($0)) }
        guard !pattern.isEmpty, pattern.count <= 64, allowed else {
            throw RegistryError.invalidRequest("\"\(pattern)\" is not a package name or pattern (letters, digits, - and _, with * for any run of them)")
        }
    }

    static func body(_ grant: SigningGrant) -> SigningGrantBody {
        SigningGrantBody(id: grant.id, user: grant.user, pattern: grant.pattern, granted_by: grant.grantedBy, created_at: grant.createdAt)
    }

    // MARK: Certificates

    /// Certifies the caller's key for packages their grants cover, once they show they hold it.
    public func certifyKey(_ request: SigningKeyRequest, by principal: Principal?) async throws -> SigningCertificateBody {
        try await authorize(.certifyKey, principal, target: nil)
        let signing = try authority()
        let user = principal?.name ?? ""
        let key: P256.Signing.PublicKey
        do { key = try SigningKeys.publicKey(pem: request.public_key) } catch {
            throw RegistryError.invalidRequest("public_key is not a PEM ECDSA P-256 public key")
        }
        let keyID = SigningKeys.keyID(key)
        let message = Data(SigningKeyRequest.proofMessage(user: user, keyID: keyID).utf8)
        guard let der = Data(base64Encoded: request.proof), let proof = try? P256.Signing.ECDSASignature(derRepresentation: der),
              key.isValidSignature(proof, for: message) else {
            throw RegistryError.invalidRequest("the proof is not the key's signature of \"\(String(decoding: message, as: UTF8.self))\"")
        }
        let revoked = try await trust.revocations()
        let issued = try await trust.certificates(user: nil, keyID: keyID)
        if revoked.contains(where: { $0.keyID == keyID }) || issued.contains(where: { $0.revokedAt != nil }) {
            throw RegistryError.signingKeyRevoked(keyID)
        }
        // A key belongs to one user: another's key is not certified for this one.
        if let holder = issued.first?.user, holder != user { throw RegistryError.forbidden("the key \(keyID) is certified for another user") }
        let grants = try await trust.grants(user: user).map(\.pattern)
        let wanted = request.packages ?? grants
        guard !wanted.isEmpty else { throw RegistryError.signingNotGranted(["any package"]) }
        for pattern in wanted { try Self.validatePattern(pattern) }
        // A pattern asked for is granted when a grant covers it as text: every name it
        // matches, that grant's pattern matches too.
        let uncovered = wanted.filter { asked in !grants.contains { PackageName.pattern($0, covers: asked) } }
        guard uncovered.isEmpty else { throw RegistryError.signingNotGranted(uncovered) }
        // A token limited to some packages certifies for those only.
        if let principal, !principal.packages.isEmpty {
            let beyond = wanted.filter { asked in !principal.packages.contains { PackageName.pattern($0, covers: asked) } }
            guard beyond.isEmpty else {
                throw RegistryError.forbidden("this token is limited to packages \(principal.packages.joined(separator: ", ")), not \(beyond.joined(separator: ", "))")
            }
        }
        let now = Date()
        let days = max(1, min(signing.certificateDays, Int(signing.intermediateCertificate.notValidAfter.timeIntervalSince(now) / 86400)))
        let keys = signing.keys
        let certificate = try await Self.signing { try keys.certify(key, user: user, packages: wanted, days: days, now: now) }
        let record = SigningCertificateRecord(
            serial: RevocationList.serial(of: certificate), keyID: keyID, user: user, publicKey: key.pemRepresentation,
            chain: try TrustRoot.pem([certificate, signing.intermediateCertificate]), packages: wanted,
            notBefore: certificate.notValidBefore, notAfter: certificate.notValidAfter, createdAt: now)
        try await trust.insertCertificate(record)
        await audit("signing-key.certify", principal, target: user, detail: "\(keyID) serial \(record.serial) for \(wanted.joined(separator: " "))")
        logger.info("certified a signing key", metadata: ["user": "\(user)", "key": "\(keyID)", "serial": "\(record.serial)"])
        return Self.body(record, now: now)
    }

    /// Certificates issued: the caller's own, another user's (admins), or all (admins, user nil
    /// with `all`).
    public func signingCertificates(user: String?, all: Bool, by principal: Principal?) async throws -> [SigningCertificateBody] {
        guard let principal else { throw RegistryError.unauthenticated }
        let subject = all ? nil : (user ?? principal.name)
        if subject != principal.name { try await authorize(.manageUsers, principal, target: subject) }
        let now = Date()
        return try await trust.certificates(user: subject, keyID: nil).map { Self.body($0, now: now) }
    }

    /// Revokes every certificate of a key (its holder, or an admin) and signs a new revocation list.
    public func revokeKey(_ keyID: String, reason: String?, by principal: Principal?) async throws -> [SigningCertificateBody] {
        guard principal != nil else { throw RegistryError.unauthenticated }
        // Every certificate of the key is listed with the reason: it stays short.
        if let reason, reason.utf8.count > 256 { throw RegistryError.invalidRequest("reason is at most 256 bytes") }
        guard let owner = try await trust.certificates(user: nil, keyID: keyID).first?.user else { throw RegistryError.signingKeyNotFound(keyID) }
        try await authorize(.revokeKey(user: owner), principal, target: keyID)
        let revoked: [SigningCertificateRecord]
        do { revoked = try await trust.revokeKey(keyID, at: Date(), reason: reason) } catch TrustStoreError.keyNotFound {
            throw RegistryError.signingKeyNotFound(keyID)
        }
        await audit("signing-key.revoke", principal, target: owner, detail: "\(keyID)" + (reason.map { ": \($0)" } ?? ""))
        logger.notice("revoked a signing key", metadata: ["key": "\(keyID)", "certificates": "\(revoked.count)"])
        // Revoked now, listed now; should signing fail, the next request for the list signs it.
        if signing != nil {
            do { _ = try await revocationList(forceNew: true) } catch {
                logger.error("could not sign the revocation list", metadata: ["error": "\(error)"])
            }
        }
        let now = Date()
        return revoked.map { Self.body($0, now: now) }
    }

    static func body(_ record: SigningCertificateRecord, now: Date) -> SigningCertificateBody {
        let status = record.revokedAt != nil ? "revoked" : record.notAfter < now ? "expired" : "active"
        return SigningCertificateBody(serial: record.serial, key_id: record.keyID, user: record.user, packages: record.packages,
                                      not_before: record.notBefore, not_after: record.notAfter, created_at: record.createdAt, status: status,
                                      revoked_at: record.revokedAt, revoke_reason: record.revokeReason, chain: record.chain)
    }

    // MARK: Revocations

    /// Brings in the revocations of the authority's own list (made offline with `epr trust
    /// revoke`), so that the list the repository serves keeps them.
    public func importRevocations(_ list: RevocationList, content: RevocationList.Content) async throws {
        try await trust.addRevocations(content.revoked.map {
            RevokedCertificate(serial: $0.serial, keyID: $0.key_id, revokedAt: $0.revoked_at, reason: $0.reason)
        })
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        _ = try await trust.saveRevocationList(sequence: content.sequence, document: try encoder.encode(list))
    }

    /// The signed revocation list: the stored one while it is current (it names every
    /// revocation and has more than half its life left), else a new one with the next sequence.
    public func revocationList(forceNew: Bool = false, now: Date = Date()) async throws -> Data {
        let signing = try authority()
        for _ in 0..<5 {
            let revoked = try await trust.revocations()
            let stored = try await trust.revocationList()
            if !forceNew, let stored, let list = try? JSONDecoder().decode(RevocationList.self, from: stored.document),
               let content = try? await list.verifiedContent(roots: signing.roots, at: now),
               content.expires.timeIntervalSince(now) > Double(RevocationList.lifetimeDays) * 86400 / 2,
               Set(content.revoked.map(\.serial)) == Set(revoked.map(\.serial)) {
                return stored.document
            }
            let sequence = RevocationList.nextSequence(after: stored?.sequence ?? 0, now: now)
            let content = Self.content(revoked, sequence: sequence, now: now, lifetime: Double(RevocationList.lifetimeDays) * 86400)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let keys = signing.keys
            let document = try encoder.encode(try await Self.signing { try keys.signRevocations(content) })
            if try await trust.saveRevocationList(sequence: sequence, document: document) {
                logger.info("signed a revocation list", metadata: ["sequence": "\(sequence)", "revoked": "\(revoked.count)"])
                return document
            }
            // Another request signed one meanwhile: look again.
        }
        throw RegistryError.rateLimited(retryAfter: 1, reason: "the revocation list is being signed anew")
    }

    /// Revocations as the repository knows them now, for checking uploads.
    func currentRevocations(now: Date) async throws -> RevocationList.Content {
        Self.content(try await trust.revocations(), sequence: 0, now: now, lifetime: 60)
    }

    static func content(_ revoked: [RevokedCertificate], sequence: Int, now: Date, lifetime: TimeInterval) -> RevocationList.Content {
        RevocationList.Content(sequence: sequence, updated: now, expires: now.addingTimeInterval(lifetime),
                               revoked: revoked.map { .init(serial: $0.serial, key_id: $0.keyID, revoked_at: $0.revokedAt, reason: $0.reason) })
    }

    /// Takes in the revocations of the authority's directory (made with `epr trust revoke` or a
    /// rotation) when its list changed since `seen` (a digest of the list); returns the list's digest.
    public func importOfflineRevocations(seen: String?) async -> String? {
        guard let signing else { return seen }
        let data: Data
        do {
            let keys = signing.keys
            guard let stored = try await Self.signing({ try keys.offlineRevocations() }) else { return seen }
            data = stored
        } catch {
            logger.error("the authority's revocation list cannot be read", metadata: ["error": "\(error)"])
            return seen
        }
        let digest = PackageFormat.SHA256Digest(of: Array(data)).description
        if digest == seen { return seen }
        do {
            let list = try JSONDecoder().decode(RevocationList.self, from: data)
            // An expired list still says what was revoked: its entries are kept, checked at the
            // time it was made.
            try await importRevocations(list, content: try await list.verifiedContent(roots: signing.roots, at: list.signedTime))
        } catch {
            logger.error("the authority's revocation list cannot be taken in", metadata: ["error": "\(error)"])
        }
        return digest
    }

    // MARK: Signatures on upload

    /// Checks an upload's signature: it chains to the repository's root, is not revoked, allows
    /// the package, and covers exactly this archive and its files.
    func checkSignature(_ envelope: Data?, report: PackageReport) async throws -> SignatureRecord? {
        guard let envelope else {
            if requireSignatures { throw RegistryError.signatureRequired }
            return nil
        }
        let signing = try authority()
        let signature: PackageSignature
        do { signature = try JSONDecoder().decode(PackageSignature.self, from: envelope) } catch {
            throw RegistryError.signatureRefused(link: VerificationRefusal.Link.malformedSignature.rawValue,
                                                 reason: "the signature is not a DSSE envelope (JSON with payloadType, payload, signatures)")
        }
        let now = Date()
        let anchors = TrustAnchors(roots: signing.roots, revocations: try await currentRevocations(now: now))
        do {
            let verified = try await TrustedVerification.verify(digest: report.sha256, report: report, expected: nil, signature: signature,
                                                                attestation: nil, anchors: anchors, at: now, requireAttestation: false)
            return SignatureRecord(envelope: envelope, signer: verified.signer, keyID: verified.keyID, checkedAt: now)
        } catch {
            throw RegistryError.signatureRefused(link: error.link.rawValue, reason: error.reason)
        }
    }

    public func signature(_ name: String, _ version: String) async throws -> Data {
        let record = try await self.version(name, version)
        guard let signature = record.signature else { throw RegistryError.signatureNotFound(package: record.package, version: record.version) }
        return signature.envelope
    }

    public func attestation(_ name: String, _ version: String) async throws -> Data {
        let record = try await self.version(name, version)
        guard let attestation = record.attestation else { throw RegistryError.attestationNotFound(package: record.package, version: record.version) }
        return attestation
    }

    // MARK: Attestations

    /// Renews the attestation key when its certificate nears its end, and attests everything
    /// again with the new one, so that attestations never outlive their certificate.
    public func renewAttestationKeyIfDue(now: Date = Date()) async throws {
        guard var authority = signing else { return }
        // A signer renews its key at its own start too: take its chain when it changed.
        let keys = authority.keys
        let current = try await Self.signing { try keys.attestationChain() }
        if let first = current.first, first != authority.attestationChain.first {
            authority.attestationChain = current
            signing = authority
            let again = try await trust.requestAttestations(unlessSignedBy: authority.attestationKeyID)
            logger.notice("attesting published versions again with the signer's attestation key", metadata: ["versions": "\(again)"])
        }
        guard authority.attestationKeyIsDue(now: now) else { return }
        try authority.renewAttestationKey(now: now)
        signing = authority
        let again = try await trust.requestAttestations(unlessSignedBy: authority.attestationKeyID)
        logger.notice("attesting published versions again with the renewed attestation key", metadata: ["versions": "\(again)"])
    }

    /// Attests what is waiting whenever a submission moves, and every minute (a version
    /// published while the signing authority was away, or before a crash, is attested here);
    /// takes in the authority's own revocation list when it changed.
    public func runAttestations() async {
        var revocationsSeen: String?
        while !Task.isCancelled {
            let generation = notices.generation
            revocationsSeen = await importOfflineRevocations(seen: revocationsSeen)
            do { try await renewAttestationKeyIfDue() } catch {
                logger.error("could not renew the attestation key", metadata: ["error": "\(error)"])
            }
            do { try await attestPending() } catch {
                logger.error("could not attest published versions", metadata: ["error": "\(error)"])
            }
            await notices.wait(after: generation, upTo: .seconds(60))
        }
    }

    /// Attests every published version waiting for it; returns how many it attested. Without a
    /// signing authority, versions wait.
    @discardableResult
    public func attestPending() async throws -> Int {
        guard let signing else { return 0 }
        var count = 0
        for pending in try await trust.pendingAttestations(limit: 100) {
            guard let version = try await metadata.version(canonical: pending.canonical, version: pending.version) else { continue }
            let checks = try await submissions.jobs(submission: pending.submission).compactMap { job in
                job.result.map { RepositoryAttestation.Check(id: job.check, status: $0.outcome.rawValue) }
            }
            let reviewers = Array(Set(try await submissions.events(submission: pending.submission).filter { $0.kind == .approve }.map(\.actor))).sorted()
            let predicate = RepositoryAttestation.Predicate(
                repository: signing.repository, package: version.package, version: version.version, publisher: version.publisher,
                published_at: version.publishedAt, signer: version.signature?.signer, signer_key_id: version.signature?.keyID,
                signature_checked_at: version.signature?.checkedAt, checks: checks.sorted { $0.id < $1.id }, reviewers: reviewers)
            let keys = signing.keys, artifact = version.artifact, digest = version.digest
            let attestation = try await Self.signing { try keys.attest(predicate, artifact: artifact, digest: digest) }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            try await trust.setAttestation(canonical: pending.canonical, version: pending.version, document: try encoder.encode(attestation),
                                           keyID: attestation.signatures.first?.keyid ?? signing.attestationKeyID)
            cache.invalidate(pending.canonical)
            logger.info("attested", metadata: ["package": "\(version.package)", "version": "\(version.version)", "digest": "\(version.digest)"])
            count += 1
        }
        return count
    }
}

extension Optional {
    func asyncMap<T>(_ transform: (Wrapped) async throws -> T) async rethrows -> T? {
        guard let self else { return nil }
        return try await transform(self)
    }
}

extension RegistryService {
    /// Runs a signing operation (a signer's round trip, or a signature here) on the thread pool,
    /// never on the threads requests share.
    static func signing<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await NIOThreadPool.singleton.runIfActive(body)
    }
}
