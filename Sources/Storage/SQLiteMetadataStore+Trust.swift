import Foundation
import NIOCore
import SQLiteNIO

extension SQLiteMetadataStore: TrustStore {
    /// Signatures checked on upload, attestations, grants, certificates and revocations.
    static let trustMigration = [
        "ALTER TABLE submissions ADD COLUMN signature BLOB",
        "ALTER TABLE submissions ADD COLUMN signer TEXT",
        "ALTER TABLE submissions ADD COLUMN signer_key_id TEXT",
        "ALTER TABLE submissions ADD COLUMN signature_checked_at REAL",
        "ALTER TABLE versions ADD COLUMN signature BLOB",
        "ALTER TABLE versions ADD COLUMN signer TEXT",
        "ALTER TABLE versions ADD COLUMN signer_key_id TEXT",
        "ALTER TABLE versions ADD COLUMN signature_checked_at REAL",
        "ALTER TABLE versions ADD COLUMN attestation BLOB",
        "ALTER TABLE versions ADD COLUMN attestation_pending INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX versions_attestation_pending ON versions(attestation_pending) WHERE attestation_pending = 1",
        """
        CREATE TABLE signing_grants (id INTEGER PRIMARY KEY AUTOINCREMENT, user TEXT NOT NULL REFERENCES users(name),
            pattern TEXT NOT NULL, granted_by TEXT NOT NULL, created_at REAL NOT NULL, UNIQUE (user, pattern))
        """,
        """
        CREATE TABLE signing_certificates (serial TEXT PRIMARY KEY, key_id TEXT NOT NULL, user TEXT NOT NULL REFERENCES users(name),
            public_key TEXT NOT NULL, chain TEXT NOT NULL, packages TEXT NOT NULL, not_before REAL NOT NULL, not_after REAL NOT NULL,
            created_at REAL NOT NULL, revoked_at REAL, revoke_reason TEXT)
        """,
        "CREATE INDEX signing_certificates_key ON signing_certificates(key_id)",
        "CREATE INDEX signing_certificates_user ON signing_certificates(user, created_at)",
        """
        CREATE TABLE revocations (serial TEXT PRIMARY KEY, key_id TEXT, revoked_at REAL NOT NULL, reason TEXT)
        """,
        "CREATE TABLE revocation_lists (sequence INTEGER PRIMARY KEY, document BLOB NOT NULL, created_at REAL NOT NULL)",
    ]

    /// Which attestation key made each attestation, so that a new key attests everything again.
    static let attestationKeyMigration = ["ALTER TABLE versions ADD COLUMN attestation_key TEXT"]

    public func addGrant(_ grant: SigningGrant) async throws -> SigningGrant {
        try await transaction { writer in
            guard try await !writer.query("SELECT 1 FROM users WHERE name = ?", [.text(grant.user)]).isEmpty else {
                throw TrustStoreError.userNotFound(grant.user)
            }
            _ = try await writer.query("""
                INSERT INTO signing_grants (user, pattern, granted_by, created_at) VALUES (?, ?, ?, ?) ON CONFLICT (user, pattern) DO NOTHING
                """, [.text(grant.user), .text(grant.pattern), .text(grant.grantedBy), .float(grant.createdAt.timeIntervalSince1970)])
            let rows = try await writer.query("SELECT * FROM signing_grants WHERE user = ? AND pattern = ?", [.text(grant.user), .text(grant.pattern)])
            return rows.first.map(Self.grant) ?? grant
        }
    }

    public func grants(user: String?) async throws -> [SigningGrant] {
        if let user {
            return try await reader.query("SELECT * FROM signing_grants WHERE user = ? ORDER BY pattern", [.text(user)]).map(Self.grant)
        }
        return try await reader.query("SELECT * FROM signing_grants ORDER BY user, pattern").map(Self.grant)
    }

    public func removeGrant(id: Int) async throws -> SigningGrant? {
        try await transaction { writer in
            guard let grant = try await writer.query("SELECT * FROM signing_grants WHERE id = ?", [.integer(id)]).first.map(Self.grant) else { return nil }
            _ = try await writer.query("DELETE FROM signing_grants WHERE id = ?", [.integer(id)])
            return grant
        }
    }

    public func insertCertificate(_ certificate: SigningCertificateRecord) async throws {
        try await execute("""
            INSERT INTO signing_certificates (serial, key_id, user, public_key, chain, packages, not_before, not_after, created_at)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            """, [.text(certificate.serial), .text(certificate.keyID), .text(certificate.user), .text(certificate.publicKey),
                  .text(certificate.chain), .text(certificate.packages.joined(separator: "\n")),
                  .float(certificate.notBefore.timeIntervalSince1970), .float(certificate.notAfter.timeIntervalSince1970),
                  .float(certificate.createdAt.timeIntervalSince1970)])
    }

    public func certificates(user: String?, keyID: String?) async throws -> [SigningCertificateRecord] {
        var clauses: [String] = [], binds: [SQLiteData] = []
        if let user { clauses.append("user = ?"); binds.append(.text(user)) }
        if let keyID { clauses.append("key_id = ?"); binds.append(.text(keyID)) }
        let filter = clauses.isEmpty ? "" : "WHERE " + clauses.joined(separator: " AND ")
        return try await reader.query("SELECT * FROM signing_certificates \(filter) ORDER BY created_at DESC, serial", binds).map(Self.certificate)
    }

    public func revokeKey(_ keyID: String, at time: Date, reason: String?) async throws -> [SigningCertificateRecord] {
        try await transaction { writer in
            let issued = try await writer.query("SELECT * FROM signing_certificates WHERE key_id = ? AND revoked_at IS NULL",
                                                [.text(keyID)]).map(Self.certificate)
            let known = try await !writer.query("SELECT 1 FROM signing_certificates WHERE key_id = ?", [.text(keyID)]).isEmpty
            guard known else { throw TrustStoreError.keyNotFound(keyID) }
            _ = try await writer.query("UPDATE signing_certificates SET revoked_at = ?, revoke_reason = ? WHERE key_id = ? AND revoked_at IS NULL",
                                       [.float(time.timeIntervalSince1970), Self.optional(reason), .text(keyID)])
            for certificate in issued {
                _ = try await writer.query("INSERT INTO revocations (serial, key_id, revoked_at, reason) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                                           [.text(certificate.serial), .text(keyID), .float(time.timeIntervalSince1970), Self.optional(reason)])
            }
            return issued.map { var revoked = $0; revoked.revokedAt = time; revoked.revokeReason = reason; return revoked }
        }
    }

    public func addRevocations(_ entries: [RevokedCertificate]) async throws {
        guard !entries.isEmpty else { return }
        try await transaction { writer in
            for entry in entries {
                _ = try await writer.query("INSERT INTO revocations (serial, key_id, revoked_at, reason) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                                           [.text(entry.serial), Self.optional(entry.keyID), .float(entry.revokedAt.timeIntervalSince1970),
                                            Self.optional(entry.reason)])
                _ = try await writer.query("""
                    UPDATE signing_certificates SET revoked_at = ?, revoke_reason = ? WHERE revoked_at IS NULL AND (serial = ? OR key_id = ?)
                    """, [.float(entry.revokedAt.timeIntervalSince1970), Self.optional(entry.reason), .text(entry.serial),
                          Self.optional(entry.keyID)])
            }
        }
    }

    public func revocations() async throws -> [RevokedCertificate] {
        try await reader.query("SELECT * FROM revocations ORDER BY revoked_at, serial").map { row in
            RevokedCertificate(serial: row.column("serial")?.string ?? "", keyID: row.column("key_id")?.string,
                               revokedAt: Date(timeIntervalSince1970: row.column("revoked_at")?.double ?? 0), reason: row.column("reason")?.string)
        }
    }

    public func revocationList() async throws -> (sequence: Int, document: Data)? {
        guard let row = try await reader.query("SELECT sequence, document FROM revocation_lists ORDER BY sequence DESC LIMIT 1").first,
              let sequence = row.column("sequence")?.integer, let document = row.column("document")?.blob else { return nil }
        return (sequence, Data(document.readableBytesView))
    }

    public func saveRevocationList(sequence: Int, document: Data) async throws -> Bool {
        try await transaction { writer in
            let current = try await writer.query("SELECT COALESCE(MAX(sequence), 0) AS s FROM revocation_lists").first?.column("s")?.integer ?? 0
            guard sequence > current else { return false }
            _ = try await writer.query("INSERT INTO revocation_lists (sequence, document, created_at) VALUES (?, ?, ?)",
                                       [.integer(sequence), .blob(ByteBuffer(bytes: document)), .float(Date().timeIntervalSince1970)])
            // Older lists are of no use to anyone once a newer one is signed.
            _ = try await writer.query("DELETE FROM revocation_lists WHERE sequence < ?", [.integer(sequence)])
            return true
        }
    }

    public func pendingAttestations(limit: Int) async throws -> [PendingAttestation] {
        try await reader.query("""
            SELECT canonical, version, submission FROM versions WHERE attestation_pending = 1 ORDER BY published_at LIMIT ?
            """, [.integer(limit)]).map { row in
            PendingAttestation(canonical: row.column("canonical")?.string ?? "", version: row.column("version")?.string ?? "",
                               submission: row.column("submission")?.string ?? "")
        }
    }

    public func setAttestation(canonical: String, version: String, document: Data, keyID: String) async throws {
        try await execute("""
            UPDATE versions SET attestation = ?, attestation_key = ?, attestation_pending = 0 WHERE canonical = ? AND version_key = ?
            """, [.blob(ByteBuffer(bytes: document)), .text(keyID), .text(canonical), .text(Self.versionKey(version))])
    }

    public func requestAttestations(unlessSignedBy keyID: String) async throws -> Int {
        try await writeLock.withLock { [writer] in
            _ = try await writer.query("""
                UPDATE versions SET attestation_pending = 1
                WHERE attestation IS NOT NULL AND attestation_pending = 0 AND (attestation_key IS NULL OR attestation_key != ?)
                """, [.text(keyID)])
            return try await Self.changes(writer)
        }
    }

    private static func grant(_ row: SQLiteRow) -> SigningGrant {
        SigningGrant(id: row.column("id")?.integer ?? 0, user: row.column("user")?.string ?? "", pattern: row.column("pattern")?.string ?? "",
                     grantedBy: row.column("granted_by")?.string ?? "", createdAt: Date(timeIntervalSince1970: row.column("created_at")?.double ?? 0))
    }

    private static func certificate(_ row: SQLiteRow) -> SigningCertificateRecord {
        func date(_ name: String) -> Date { Date(timeIntervalSince1970: row.column(name)?.double ?? 0) }
        return SigningCertificateRecord(
            serial: row.column("serial")?.string ?? "", keyID: row.column("key_id")?.string ?? "", user: row.column("user")?.string ?? "",
            publicKey: row.column("public_key")?.string ?? "", chain: row.column("chain")?.string ?? "",
            packages: (row.column("packages")?.string ?? "").split(separator: "\n").map(String.init), notBefore: date("not_before"),
            notAfter: date("not_after"), createdAt: date("created_at"), revokedAt: row.column("revoked_at")?.double.map(Date.init(timeIntervalSince1970:)),
            revokeReason: row.column("revoke_reason")?.string)
    }
}
