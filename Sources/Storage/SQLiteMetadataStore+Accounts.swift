import Foundation
import SQLiteNIO

extension SQLiteMetadataStore: AccountStore {
    // MARK: Users

    public func insertUser(_ user: UserRecord) async throws {
        try await writeLock.withLock { [writer] in
            _ = try await writer.query("INSERT OR IGNORE INTO users (name, role, created_at, disabled) VALUES (?, ?, ?, ?)",
                                       [.text(user.name), .text(user.role), .float(user.createdAt.timeIntervalSince1970),
                                        .integer(user.disabled ? 1 : 0)])
            guard try await Self.changes(writer) == 1 else { throw AccountStoreError.userExists(user.name) }
        }
    }

    public func user(name: String) async throws -> UserRecord? {
        try await reader.query("SELECT * FROM users WHERE name = ?", [.text(name)]).first.map(Self.user)
    }

    public func users() async throws -> [UserRecord] {
        try await reader.query("SELECT * FROM users ORDER BY name").map(Self.user)
    }

    public func updateUser(name: String, role: String?, disabled: Bool?) async throws -> UserRecord {
        try await transaction { writer in
            let wasAdmin = try await !writer.query("SELECT 1 FROM users WHERE name = ? AND role = 'admin' AND disabled = 0",
                                                   [.text(name)]).isEmpty
            _ = try await writer.query("UPDATE users SET role = COALESCE(?, role), disabled = COALESCE(?, disabled) WHERE name = ?",
                                       [role.map(SQLiteData.text) ?? .null, disabled.map { .integer($0 ? 1 : 0) } ?? .null, .text(name)])
            guard try await Self.changes(writer) == 1,
                  let row = try await writer.query("SELECT * FROM users WHERE name = ?", [.text(name)]).first else {
                throw AccountStoreError.userNotFound(name)
            }
            if wasAdmin, try await writer.query("SELECT 1 FROM users WHERE role = 'admin' AND disabled = 0 LIMIT 1").isEmpty {
                throw AccountStoreError.lastAdmin
            }
            return Self.user(row)
        }
    }

    public func bootstrap(_ user: UserRecord, token: TokenRecord, hash: String) async throws -> Bool {
        try await transaction { writer in
            guard try await writer.query("SELECT 1 FROM users LIMIT 1").isEmpty else { return false }
            _ = try await writer.query("INSERT INTO users (name, role, created_at, disabled) VALUES (?, ?, ?, 0)",
                                       [.text(user.name), .text(user.role), .float(user.createdAt.timeIntervalSince1970)])
            _ = try await writer.query("""
                INSERT INTO api_tokens (id, hash, user, name, scopes, packages, created_at) VALUES (?, ?, ?, ?, ?, '', ?)
                """, [.text(token.id), .text(hash), .text(token.user), .text(token.name), .text(token.scopes.joined(separator: ",")),
                      .float(token.createdAt.timeIntervalSince1970)])
            return true
        }
    }

    /// Runs `body` in one write transaction on the writer, rolling back when it throws.
    func transaction<T: Sendable>(_ body: @Sendable (SQLiteConnection) async throws -> T) async throws -> T {
        try await writeLock.withLock { [writer] in
            _ = try await writer.query("BEGIN IMMEDIATE")
            do {
                let result = try await body(writer)
                _ = try await writer.query("COMMIT")
                return result
            } catch {
                _ = try? await writer.query("ROLLBACK")
                throw error
            }
        }
    }

    public func hasUsers() async throws -> Bool {
        try await !reader.query("SELECT 1 FROM users LIMIT 1").isEmpty
    }

    // MARK: Tokens

    public func insertToken(_ token: TokenRecord, hash: String) async throws {
        try await writeLock.withLock { [writer] in
            guard try await !writer.query("SELECT 1 FROM users WHERE name = ?", [.text(token.user)]).isEmpty else {
                throw AccountStoreError.userNotFound(token.user)
            }
            _ = try await writer.query("""
                INSERT INTO api_tokens (id, hash, user, name, scopes, packages, created_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """, [.text(token.id), .text(hash), .text(token.user), .text(token.name), .text(token.scopes.joined(separator: ",")),
                      .text(token.packages.joined(separator: ",")), .float(token.createdAt.timeIntervalSince1970),
                      token.expiresAt.map { .float($0.timeIntervalSince1970) } ?? .null])
        }
    }

    public func token(hash: String) async throws -> TokenRecord? {
        try await reader.query("SELECT * FROM api_tokens WHERE hash = ?", [.text(hash)]).first.map(Self.token)
    }

    public func token(id: String) async throws -> TokenRecord? {
        try await reader.query("SELECT * FROM api_tokens WHERE id = ?", [.text(id)]).first.map(Self.token)
    }

    public func tokens(user: String) async throws -> [TokenRecord] {
        try await reader.query("SELECT * FROM api_tokens WHERE user = ? ORDER BY created_at, id", [.text(user)]).map(Self.token)
    }

    public func revokeToken(id: String, at: Date) async throws -> Bool {
        try await writeLock.withLock { [writer] in
            _ = try await writer.query("UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL",
                                       [.float(at.timeIntervalSince1970), .text(id)])
            return try await Self.changes(writer) == 1
        }
    }

    public func touchToken(id: String, at: Date) async throws {
        try await writeLock.withLock { [writer] in
            _ = try await writer.query("""
                UPDATE api_tokens SET last_used_at = ?1 WHERE id = ?2 AND (last_used_at IS NULL OR last_used_at < ?1 - 60)
                """, [.float(at.timeIntervalSince1970), .text(id)])
        }
    }

    // MARK: Owners

    public func owners(package canonical: String) async throws -> [String] {
        try await reader.query("SELECT user FROM owners WHERE canonical = ? ORDER BY added_at, user", [.text(canonical)])
            .compactMap { $0.column("user")?.string }
    }

    public func invite(_ invitation: OwnerInvitation) async throws {
        try await writeLock.withLock { [writer] in
            guard try await !writer.query("SELECT 1 FROM users WHERE name = ?", [.text(invitation.user)]).isEmpty else {
                throw AccountStoreError.userNotFound(invitation.user)
            }
            guard try await writer.query("SELECT 1 FROM owners WHERE canonical = ? AND user = ?",
                                         [.text(invitation.package), .text(invitation.user)]).isEmpty else {
                throw AccountStoreError.alreadyOwner(user: invitation.user, package: invitation.package)
            }
            _ = try await writer.query("""
                INSERT INTO owner_invitations (canonical, user, invited_by, created_at, transfer) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT(canonical, user) DO UPDATE SET invited_by = excluded.invited_by, created_at = excluded.created_at,
                transfer = excluded.transfer
                """, [.text(invitation.package), .text(invitation.user), .text(invitation.invitedBy),
                      .float(invitation.createdAt.timeIntervalSince1970), .integer(invitation.transfer ? 1 : 0)])
        }
    }

    public func invitations(user: String) async throws -> [OwnerInvitation] {
        try await reader.query("SELECT * FROM owner_invitations WHERE user = ? ORDER BY created_at", [.text(user)]).map(Self.invitation)
    }

    public func invitations(package canonical: String) async throws -> [OwnerInvitation] {
        try await reader.query("SELECT * FROM owner_invitations WHERE canonical = ? ORDER BY created_at", [.text(canonical)])
            .map(Self.invitation)
    }

    public func answerInvitation(package canonical: String, user: String, accept: Bool) async throws -> Bool {
        try await transaction { writer in
            guard let invitation = try await writer.query("SELECT * FROM owner_invitations WHERE canonical = ? AND user = ?",
                                                          [.text(canonical), .text(user)]).first.map(Self.invitation) else { return false }
            _ = try await writer.query("DELETE FROM owner_invitations WHERE canonical = ? AND user = ?", [.text(canonical), .text(user)])
            // An invitation stands only while whoever sent it may still manage the package's
            // owners: a direct owner, or an admin of the package's organisation.
            let inviterOwns = try await !writer.query(Self.managesOwnersQuery, [.text(canonical), .text(invitation.invitedBy)]).isEmpty
            guard inviterOwns else { return false }
            if accept {
                _ = try await writer.query("INSERT OR IGNORE INTO owners (canonical, user, added_at) VALUES (?, ?, ?)",
                                           [.text(canonical), .text(user), .float(Date().timeIntervalSince1970)])
                if invitation.transfer {
                    // A transfer: the new owner is the only one, and what the others offered lapses.
                    _ = try await writer.query("DELETE FROM owners WHERE canonical = ? AND user <> ?", [.text(canonical), .text(user)])
                    _ = try await writer.query("DELETE FROM owner_invitations WHERE canonical = ?", [.text(canonical)])
                }
            }
            return true
        }
    }

    public func removeOwner(package canonical: String, user: String) async throws {
        try await transaction { writer in
            let owners = try await writer.query("SELECT user FROM owners WHERE canonical = ?", [.text(canonical)])
                .compactMap { $0.column("user")?.string }
            guard owners.contains(user) else { throw AccountStoreError.notOwner(user: user, package: canonical) }
            guard owners.count > 1 else { throw AccountStoreError.lastOwner(canonical) }
            _ = try await writer.query("DELETE FROM owners WHERE canonical = ? AND user = ?", [.text(canonical), .text(user)])
            _ = try await writer.query("DELETE FROM owner_invitations WHERE canonical = ? AND invited_by = ?", [.text(canonical), .text(user)])
        }
    }

    // MARK: Audit log

    public func appendAudit(_ record: AuditRecord) async throws {
        try await writeLock.withLock { [writer] in
            _ = try await writer.query("""
                INSERT INTO audit_log (at, actor, token_id, address, action, target, outcome, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                """, [.float(record.at.timeIntervalSince1970), Self.text(record.actor), Self.text(record.tokenID), Self.text(record.address),
                      .text(record.action), Self.text(record.target), .text(record.outcome), Self.text(record.detail)])
        }
    }

    public func audit(actor: String?, action: String?, offset: Int, limit: Int) async throws -> Page<AuditRecord> {
        let filter = "(?1 IS NULL OR actor = ?1) AND (?2 IS NULL OR action = ?2)"
        let binds: [SQLiteData] = [Self.text(actor), Self.text(action)]
        let total = try await reader.query("SELECT COUNT(*) AS n FROM audit_log WHERE \(filter)", binds).first?.column("n")?.integer ?? 0
        let rows = try await reader.query("SELECT * FROM audit_log WHERE \(filter) ORDER BY id DESC LIMIT ?3 OFFSET ?4",
                                          binds + [.integer(limit), .integer(offset)])
        return Page(items: rows.map(Self.audit), total: total)
    }

    // MARK: Rows

    static func changes(_ connection: SQLiteConnection) async throws -> Int {
        try await connection.query("SELECT changes() AS n").first?.column("n")?.integer ?? 0
    }

    private static func text(_ value: String?) -> SQLiteData { value.map(SQLiteData.text) ?? .null }

    private static func date(_ row: SQLiteRow, _ name: String) -> Date? {
        row.column(name)?.double.map(Date.init(timeIntervalSince1970:))
    }

    private static func list(_ row: SQLiteRow, _ name: String) -> [String] {
        (row.column(name)?.string ?? "").split(separator: ",").map(String.init)
    }

    private static func user(_ row: SQLiteRow) -> UserRecord {
        UserRecord(name: row.column("name")?.string ?? "", role: row.column("role")?.string ?? "user",
                   createdAt: date(row, "created_at") ?? Date(timeIntervalSince1970: 0), disabled: row.column("disabled")?.integer == 1)
    }

    private static func token(_ row: SQLiteRow) -> TokenRecord {
        TokenRecord(id: row.column("id")?.string ?? "", user: row.column("user")?.string ?? "", name: row.column("name")?.string ?? "",
                    scopes: list(row, "scopes"), packages: list(row, "packages"),
                    createdAt: date(row, "created_at") ?? Date(timeIntervalSince1970: 0), expiresAt: date(row, "expires_at"),
                    lastUsedAt: date(row, "last_used_at"), revokedAt: date(row, "revoked_at"))
    }

    private static func invitation(_ row: SQLiteRow) -> OwnerInvitation {
        OwnerInvitation(package: row.column("canonical")?.string ?? "", user: row.column("user")?.string ?? "",
                        invitedBy: row.column("invited_by")?.string ?? "", createdAt: date(row, "created_at") ?? Date(timeIntervalSince1970: 0),
                        transfer: row.column("transfer")?.integer == 1)
    }

    private static func audit(_ row: SQLiteRow) -> AuditRecord {
        AuditRecord(id: row.column("id")?.integer ?? 0, at: date(row, "at") ?? Date(timeIntervalSince1970: 0),
                    actor: row.column("actor")?.string, tokenID: row.column("token_id")?.string, address: row.column("address")?.string,
                    action: row.column("action")?.string ?? "", target: row.column("target")?.string,
                    outcome: row.column("outcome")?.string ?? "", detail: row.column("detail")?.string)
    }
}
