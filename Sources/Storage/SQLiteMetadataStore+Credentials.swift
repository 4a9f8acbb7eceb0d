import Foundation
import SQLiteNIO

extension SQLiteMetadataStore: CredentialStore {
    // MARK: Passwords and second factors

    public func credentials(user: String) async throws -> CredentialRecord? {
        guard let row = try await reader.query("SELECT * FROM credentials WHERE user = ?", [.text(user)]).first else { return nil }
        return CredentialRecord(user: user, passwordHash: row.column("password_hash")?.string,
                                passwordChangedAt: row.column("password_changed_at")?.double.map(Date.init(timeIntervalSince1970:)),
                                totpSecret: row.column("totp_secret")?.string, totpEnabled: row.column("totp_enabled")?.integer == 1,
                                totpLastStep: Int64(row.column("totp_last_step")?.integer ?? 0))
    }

    public func setPassword(user: String, hash: String, at: Date, endSessions: Bool) async throws {
        try await transaction { writer in
            try await Self.requireUser(user, writer)
            _ = try await writer.query("""
                INSERT INTO credentials (user, password_hash, password_changed_at) VALUES (?1, ?2, ?3)
                ON CONFLICT(user) DO UPDATE SET password_hash = ?2, password_changed_at = ?3
                """, [.text(user), .text(hash), .float(at.timeIntervalSince1970)])
            if endSessions { _ = try await writer.query("DELETE FROM sessions WHERE user = ?", [.text(user)]) }
        }
    }

    public func setTOTP(user: String, secret: String?, enabled: Bool, recoveryCodeHashes: [String], step: Int64) async throws {
        try await transaction { writer in
            try await Self.requireUser(user, writer)
            _ = try await writer.query("""
                INSERT INTO credentials (user, totp_secret, totp_enabled, totp_last_step) VALUES (?1, ?2, ?3, ?4)
                ON CONFLICT(user) DO UPDATE SET totp_secret = ?2, totp_enabled = ?3, totp_last_step = MAX(totp_last_step, ?4)
                """, [.text(user), secret.map(SQLiteData.text) ?? .null, .integer(enabled && secret != nil ? 1 : 0), .integer(Int(step))])
            if enabled || secret == nil {
                _ = try await writer.query("DELETE FROM recovery_codes WHERE user = ?", [.text(user)])
            }
            for hash in recoveryCodeHashes where enabled {
                _ = try await writer.query("INSERT OR IGNORE INTO recovery_codes (user, hash) VALUES (?, ?)", [.text(user), .text(hash)])
            }
        }
    }

    public func beginTOTP(user: String, secret: String) async throws -> Bool {
        try await transaction { writer in
            try await Self.requireUser(user, writer)
            _ = try await writer.query("""
                INSERT INTO credentials (user, totp_secret, totp_enabled) VALUES (?1, ?2, 0)
                ON CONFLICT(user) DO UPDATE SET totp_secret = ?2 WHERE totp_enabled = 0
                """, [.text(user), .text(secret)])
            return try await Self.changes(writer) == 1
        }
    }

    public func useTOTPStep(user: String, step: Int64) async throws -> Bool {
        try await writeLock.withLock { [writer] in
            _ = try await writer.query("UPDATE credentials SET totp_last_step = ?1 WHERE user = ?2 AND totp_last_step < ?1",
                                       [.integer(Int(step)), .text(user)])
            return try await Self.changes(writer) == 1
        }
    }

    public func useRecoveryCode(user: String, hash: String, at: Date) async throws -> Bool {
        try await writeLock.withLock { [writer] in
            _ = try await writer.query("UPDATE recovery_codes SET used_at = ? WHERE user = ? AND hash = ? AND used_at IS NULL",
                                       [.float(at.timeIntervalSince1970), .text(user), .text(hash)])
            return try await Self.changes(writer) == 1
        }
    }

    public func recoveryCodesLeft(user: String) async throws -> Int {
        try await reader.query("SELECT COUNT(*) AS n FROM recovery_codes WHERE user = ? AND used_at IS NULL", [.text(user)])
            .first?.column("n")?.integer ?? 0
    }

    // MARK: Registration

    public func register(_ user: UserRecord, passwordHash: String?, invitationHash: String?, identity: ExternalIdentity?, at: Date) async throws {
        try await transaction { writer in
            if let invitationHash {
                _ = try await writer.query("""
                    UPDATE signup_invitations SET used_by = ?1, used_at = ?3 WHERE hash = ?2 AND used_at IS NULL AND expires_at > ?3
                    """, [.text(user.name), .text(invitationHash), .float(at.timeIntervalSince1970)])
                guard try await Self.changes(writer) == 1 else { throw CredentialStoreError.invitationUnusable }
            }
            _ = try await writer.query("INSERT OR IGNORE INTO users (name, role, created_at, disabled) VALUES (?, ?, ?, 0)",
                                       [.text(user.name), .text(user.role), .float(user.createdAt.timeIntervalSince1970)])
            guard try await Self.changes(writer) == 1 else { throw AccountStoreError.userExists(user.name) }
            if let passwordHash {
                _ = try await writer.query("INSERT INTO credentials (user, password_hash, password_changed_at) VALUES (?, ?, ?)",
                                           [.text(user.name), .text(passwordHash), .float(at.timeIntervalSince1970)])
            }
            if let identity { try await Self.insertIdentity(identity, writer) }
        }
    }

    // MARK: Sessions

    public func insertSession(_ session: SessionRecord, hash: String) async throws {
        try await writeLock.withLock { [writer] in
            try await Self.requireUser(session.user, writer)
            _ = try await writer.query("""
                INSERT INTO sessions (id, hash, user, csrf, created_at, expires_at, last_seen_at, address, method)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, [.text(session.id), .text(hash), .text(session.user), .text(session.csrf), .float(session.createdAt.timeIntervalSince1970),
                      .float(session.expiresAt.timeIntervalSince1970), .float(session.lastSeenAt.timeIntervalSince1970),
                      session.address.map(SQLiteData.text) ?? .null, .text(session.method)])
        }
    }

    public func session(hash: String) async throws -> SessionRecord? {
        try await reader.query("SELECT * FROM sessions WHERE hash = ?", [.text(hash)]).first.map(Self.session)
    }

    public func sessions(user: String) async throws -> [SessionRecord] {
        try await reader.query("SELECT * FROM sessions WHERE user = ? ORDER BY created_at", [.text(user)]).map(Self.session)
    }

    public func touchSession(id: String, at: Date) async throws {
        try await writeLock.withLock { [writer] in
            _ = try await writer.query("UPDATE sessions SET last_seen_at = ?1 WHERE id = ?2 AND last_seen_at < ?1 - 60",
                                       [.float(at.timeIntervalSince1970), .text(id)])
        }
    }

    public func deleteSession(id: String) async throws -> Bool {
        try await writeLock.withLock { [writer] in
            _ = try await writer.query("DELETE FROM sessions WHERE id = ?", [.text(id)])
            return try await Self.changes(writer) == 1
        }
    }

    public func deleteSessions(user: String) async throws {
        try await writeLock.withLock { [writer] in _ = try await writer.query("DELETE FROM sessions WHERE user = ?", [.text(user)]) }
    }

    // MARK: Sign-up invitations

    public func insertSignupInvitation(_ invitation: SignupInvitation, hash: String) async throws {
        try await writeLock.withLock { [writer] in
            _ = try await writer.query("""
                INSERT INTO signup_invitations (id, hash, role, created_by, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)
                """, [.text(invitation.id), .text(hash), .text(invitation.role), .text(invitation.createdBy),
                      .float(invitation.createdAt.timeIntervalSince1970), .float(invitation.expiresAt.timeIntervalSince1970)])
        }
    }

    public func signupInvitations() async throws -> [SignupInvitation] {
        try await reader.query("SELECT * FROM signup_invitations ORDER BY created_at, id").map { row in
            SignupInvitation(id: row.column("id")?.string ?? "", role: row.column("role")?.string ?? "user",
                             createdBy: row.column("created_by")?.string ?? "", createdAt: Self.date(row, "created_at"),
                             expiresAt: Self.date(row, "expires_at"), usedBy: row.column("used_by")?.string,
                             usedAt: row.column("used_at")?.double.map(Date.init(timeIntervalSince1970:)))
        }
    }

    // MARK: External identities

    public func identity(issuer: String, subject: String) async throws -> ExternalIdentity? {
        try await reader.query("SELECT * FROM identities WHERE issuer = ? AND subject = ?", [.text(issuer), .text(subject)]).first.map(Self.identity)
    }

    public func identities(user: String) async throws -> [ExternalIdentity] {
        try await reader.query("SELECT * FROM identities WHERE user = ? ORDER BY linked_at", [.text(user)]).map(Self.identity)
    }

    public func link(_ identity: ExternalIdentity) async throws {
        try await transaction { writer in
            try await Self.requireUser(identity.user, writer)
            try await Self.insertIdentity(identity, writer)
        }
    }

    public func unlink(user: String, provider: String?) async throws -> Int {
        try await writeLock.withLock { [writer] in
            _ = try await writer.query("DELETE FROM identities WHERE user = ?1 AND (?2 IS NULL OR provider = ?2)",
                                       [.text(user), provider.map(SQLiteData.text) ?? .null])
            return try await Self.changes(writer)
        }
    }

    private static func insertIdentity(_ identity: ExternalIdentity, _ writer: SQLiteConnection) async throws {
        _ = try await writer.query("""
            INSERT OR IGNORE INTO identities (issuer, subject, user, provider, email, linked_at) VALUES (?, ?, ?, ?, ?, ?)
            """, [.text(identity.issuer), .text(identity.subject), .text(identity.user), .text(identity.provider),
                  identity.email.map(SQLiteData.text) ?? .null, .float(identity.linkedAt.timeIntervalSince1970)])
        guard try await changes(writer) == 1 else { throw CredentialStoreError.identityLinked }
    }

    // MARK: Rows

    private static func requireUser(_ user: String, _ writer: SQLiteConnection) async throws {
        guard try await !writer.query("SELECT 1 FROM users WHERE name = ?", [.text(user)]).isEmpty else {
            throw AccountStoreError.userNotFound(user)
        }
    }

    private static func date(_ row: SQLiteRow, _ name: String) -> Date {
        Date(timeIntervalSince1970: row.column(name)?.double ?? 0)
    }

    private static func session(_ row: SQLiteRow) -> SessionRecord {
        SessionRecord(id: row.column("id")?.string ?? "", user: row.column("user")?.string ?? "", csrf: row.column("csrf")?.string ?? "",
                      createdAt: date(row, "created_at"), expiresAt: date(row, "expires_at"), lastSeenAt: date(row, "last_seen_at"),
                      address: row.column("address")?.string, method: row.column("method")?.string ?? "")
    }

    private static func identity(_ row: SQLiteRow) -> ExternalIdentity {
        ExternalIdentity(issuer: row.column("issuer")?.string ?? "", subject: row.column("subject")?.string ?? "",
                         user: row.column("user")?.string ?? "", provider: row.column("provider")?.string ?? "",
                         email: row.column("email")?.string, linkedAt: date(row, "linked_at"))
    }
}
