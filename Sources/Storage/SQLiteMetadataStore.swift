import Foundation
import Logging
import PackageFormat
import SQLiteNIO

/// The embedded metadata store: one SQLite database file in write-ahead-log mode, a writer
/// connection behind a lock (transactions never interleave) and a reader connection.
public final class SQLiteMetadataStore: MetadataStore {
    let writer: SQLiteConnection
    let reader: SQLiteConnection
    let writeLock = AsyncMutex()

    public static func open(path: String, logger: Logger) async throws -> SQLiteMetadataStore {
        let writer = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        for pragma in ["PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON", "PRAGMA recursive_triggers=ON", "PRAGMA busy_timeout=10000"] {
            _ = try await writer.query(pragma)
        }
        let reader = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        _ = try await reader.query("PRAGMA busy_timeout=10000")
        return SQLiteMetadataStore(writer: writer, reader: reader)
    }

    private init(writer: SQLiteConnection, reader: SQLiteConnection) {
        self.writer = writer
        self.reader = reader
    }

    /// Each migration is a list of statements, applied in one transaction.
    static let migrations: [[String]] = [
        [
            """
            CREATE TABLE packages (
                canonical TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL,
                keywords TEXT NOT NULL DEFAULT '', created_at REAL NOT NULL, updated_at REAL NOT NULL)
            """,
            """
            CREATE TABLE versions (
                canonical TEXT NOT NULL REFERENCES packages(canonical), version TEXT NOT NULL, version_key TEXT NOT NULL,
                artifact TEXT NOT NULL, platforms TEXT NOT NULL, digest TEXT NOT NULL, size INTEGER NOT NULL,
                manifest BLOB NOT NULL, report BLOB NOT NULL, publisher TEXT NOT NULL, published_at REAL NOT NULL,
                yanked INTEGER NOT NULL DEFAULT 0, yank_reason TEXT, deprecation TEXT,
                PRIMARY KEY (canonical, version_key))
            """,
            "CREATE INDEX versions_digest ON versions(digest)",
            "CREATE TABLE tokens (hash TEXT PRIMARY KEY, owner TEXT NOT NULL, role TEXT NOT NULL, created_at REAL NOT NULL)",
        ],
        // Accounts: users, scoped tokens, owners and invitations, the audit log. The admin of a
        // first-version data directory keeps its token, with every scope; whoever published a
        // package owns it.
        [
            """
            CREATE TABLE users (name TEXT PRIMARY KEY, role TEXT NOT NULL, created_at REAL NOT NULL,
                disabled INTEGER NOT NULL DEFAULT 0)
            """,
            "INSERT INTO users (name, role, created_at) SELECT owner, MIN(role), MIN(created_at) FROM tokens GROUP BY owner",
            """
            CREATE TABLE api_tokens (id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, user TEXT NOT NULL REFERENCES users(name),
                name TEXT NOT NULL, scopes TEXT NOT NULL, packages TEXT NOT NULL DEFAULT '', created_at REAL NOT NULL,
                expires_at REAL, last_used_at REAL, revoked_at REAL)
            """,
            """
            INSERT INTO api_tokens (id, hash, user, name, scopes, created_at)
            SELECT 'tok_' || lower(hex(randomblob(10))), hash, owner, 'initial', 'publish-new,publish-update,yank,owners,review,sign,admin',
                created_at FROM tokens
            """,
            "DROP TABLE tokens",
            "CREATE INDEX api_tokens_user ON api_tokens(user)",
            """
            CREATE TABLE owners (canonical TEXT NOT NULL REFERENCES packages(canonical), user TEXT NOT NULL REFERENCES users(name),
                added_at REAL NOT NULL, PRIMARY KEY (canonical, user))
            """,
            """
            INSERT INTO owners (canonical, user, added_at) SELECT canonical, publisher, MIN(published_at) FROM versions
            WHERE publisher IN (SELECT name FROM users) GROUP BY canonical, publisher
            """,
            """
            CREATE TABLE owner_invitations (canonical TEXT NOT NULL REFERENCES packages(canonical),
                user TEXT NOT NULL REFERENCES users(name), invited_by TEXT NOT NULL, created_at REAL NOT NULL,
                PRIMARY KEY (canonical, user))
            """,
            """
            CREATE TABLE audit_log (id INTEGER PRIMARY KEY AUTOINCREMENT, at REAL NOT NULL, actor TEXT, token_id TEXT,
                address TEXT, action TEXT NOT NULL, target TEXT, outcome TEXT NOT NULL, detail TEXT)
            """,
            "CREATE INDEX audit_log_actor ON audit_log(actor, id)",
            "CREATE INDEX audit_log_action ON audit_log(action, id)",
            """
            CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END
            """,
            """
            CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
            BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END
            """,
        ],
        // Sign-in: passwords and second factors, sessions, sign-up invitations, linked
        // OpenID Connect identities.
        [
            """
            CREATE TABLE credentials (user TEXT PRIMARY KEY REFERENCES users(name), password_hash TEXT, password_changed_at REAL,
                totp_secret TEXT, totp_enabled INTEGER NOT NULL DEFAULT 0, totp_last_step INTEGER NOT NULL DEFAULT 0)
            """,
            """
            CREATE TABLE recovery_codes (user TEXT NOT NULL REFERENCES users(name), hash TEXT NOT NULL, used_at REAL,
                PRIMARY KEY (user, hash))
            """,
            """
            CREATE TABLE sessions (id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, user TEXT NOT NULL REFERENCES users(name),
                csrf TEXT NOT NULL, created_at REAL NOT NULL, expires_at REAL NOT NULL, last_seen_at REAL NOT NULL, address TEXT,
                method TEXT NOT NULL)
            """,
            "CREATE INDEX sessions_user ON sessions(user)",
            """
            CREATE TABLE signup_invitations (id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, role TEXT NOT NULL, created_by TEXT NOT NULL,
                created_at REAL NOT NULL, expires_at REAL NOT NULL, used_by TEXT, used_at REAL)
            """,
            """
            CREATE TABLE identities (issuer TEXT NOT NULL, subject TEXT NOT NULL, user TEXT NOT NULL REFERENCES users(name),
                provider TEXT NOT NULL, email TEXT, linked_at REAL NOT NULL, PRIMARY KEY (issuer, subject))
            """,
            "CREATE INDEX identities_user ON identities(user)",
        ],
        // Organisations: namespaces with members, which own packages together; ownership
        // transfers by invitation.
        [
            """
            CREATE TABLE organisations (name TEXT PRIMARY KEY, description TEXT NOT NULL DEFAULT '', created_by TEXT NOT NULL,
                created_at REAL NOT NULL)
            """,
            """
            CREATE TABLE org_members (org TEXT NOT NULL REFERENCES organisations(name), user TEXT NOT NULL REFERENCES users(name),
                role TEXT NOT NULL, added_at REAL NOT NULL, PRIMARY KEY (org, user))
            """,
            "CREATE INDEX org_members_user ON org_members(user)",
            """
            CREATE TABLE package_orgs (canonical TEXT PRIMARY KEY REFERENCES packages(canonical),
                org TEXT NOT NULL REFERENCES organisations(name), since REAL NOT NULL)
            """,
            "ALTER TABLE owner_invitations ADD COLUMN transfer INTEGER NOT NULL DEFAULT 0",
        ],
        // Submissions: uploads on their way through background checks and review.
        submissionsMigration,
        eventsMigration,
        trustMigration,
        attestationKeyMigration,
        ociMigration,
    ]

    public func migrate() async throws {
        try await migrate(through: Self.migrations.count)
    }

    /// Applies the migrations up to and including number `last` (from 1).
    func migrate(through last: Int) async throws {
        try await writeLock.withLock { [writer] in
            _ = try await writer.query("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)")
            let applied = try await writer.query("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations").first?.column("v")?.integer ?? 0
            for (index, migration) in Self.migrations.enumerated() where index + 1 > applied && index + 1 <= last {
                _ = try await writer.query("BEGIN IMMEDIATE")
                do {
                    for statement in migration { _ = try await writer.query(statement) }
                    _ = try await writer.query("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                                               [.integer(index + 1), .float(Date().timeIntervalSince1970)])
                    _ = try await writer.query("COMMIT")
                } catch {
                    _ = try? await writer.query("ROLLBACK")
                    throw error
                }
            }
        }
    }

    /// Versions that differ only in build metadata are the same version.
    static func versionKey(_ version: String) -> String {
        String(version.prefix { $0 != "+" })
    }

    public func package(canonical: String) async throws -> PackageRecord? {
        try await reader.query("SELECT * FROM packages WHERE canonical = ?", [.text(canonical)]).first.map(Self.package)
    }

    public func versions(canonical: String) async throws -> [VersionRecord] {
        try await reader.query("""
            SELECT v.*, p.name AS package_name FROM versions v JOIN packages p ON p.canonical = v.canonical WHERE v.canonical = ?
            """, [.text(canonical)]).map(Self.version)
    }

    public func version(canonical: String, version: String) async throws -> VersionRecord? {
        try await reader.query("""
            SELECT v.*, p.name AS package_name FROM versions v JOIN packages p ON p.canonical = v.canonical
            WHERE v.canonical = ? AND v.version_key = ?
            """, [.text(canonical), .text(Self.versionKey(version))]).first.map(Self.version)
    }

    public func searchPackages(query: String, offset: Int, limit: Int) async throws -> Page<PackageRecord> {
        let pattern = "%" + query.lowercased().replacingOccurrences(of: "\\", with: "\\\\")
            .replacingOccurrences(of: "%", with: "\\%").replacingOccurrences(of: "_", with: "\\_") + "%"
        // Packages with a published version only: a first submission still in review is not listed.
        let filter = """
            (canonical LIKE ?1 ESCAPE '\\' OR lower(name) LIKE ?1 ESCAPE '\\' OR lower(description) LIKE ?1 ESCAPE '\\'
            OR lower(keywords) LIKE ?1 ESCAPE '\\') AND EXISTS (SELECT 1 FROM versions v WHERE v.canonical = packages.canonical)
            """
        let total = try await reader.query("SELECT COUNT(*) AS n FROM packages WHERE \(filter)", [.text(pattern)]).first?.column("n")?.integer ?? 0
        let rows = try await reader.query("SELECT * FROM packages WHERE \(filter) ORDER BY canonical LIMIT ?2 OFFSET ?3",
                                          [.text(pattern), .integer(limit), .integer(offset)])
        return Page(items: rows.map(Self.package), total: total)
    }

    public func setYanked(canonical: String, version: String, yanked: Bool, reason: String?) async throws {
        try await update("UPDATE versions SET yanked = ?, yank_reason = ? WHERE canonical = ? AND version_key = ?",
                         [.integer(yanked ? 1 : 0), reason.map(SQLiteData.text) ?? .null, .text(canonical), .text(Self.versionKey(version))])
    }

    public func setDeprecation(canonical: String, version: String, message: String?) async throws {
        try await update("UPDATE versions SET deprecation = ? WHERE canonical = ? AND version_key = ?",
                         [message.map(SQLiteData.text) ?? .null, .text(canonical), .text(Self.versionKey(version))])
    }

    private func update(_ sql: String, _ binds: [SQLiteData]) async throws {
        try await writeLock.withLock { [writer] in
            _ = try await writer.query(sql, binds)
            guard try await Self.changes(writer) > 0 else { throw MetadataStoreError.notFound }
        }
    }

    public func isReferenced(_ digest: SHA256Digest) async throws -> Bool {
        try await !reader.query("SELECT 1 FROM versions WHERE digest = ? LIMIT 1", [.text(digest.hex)]).isEmpty
    }

    public func referencedDigests() async throws -> Set<SHA256Digest> {
        Set(try await reader.query("SELECT digest FROM versions UNION \(Self.heldBlobs) UNION SELECT digest FROM oci_blobs").compactMap { $0.column("digest")?.string.map(SHA256Digest.init(hex:)) })
    }

    /// Runs one statement on the writer (for tests and maintenance).
    func execute(_ sql: String, _ binds: [SQLiteData] = []) async throws {
        try await writeLock.withLock { [writer] in _ = try await writer.query(sql, binds) }
    }

    /// Submissions keep their archive while they may still be reviewed or resubmitted from;
    /// rejected and withdrawn ones let it go.
    static let heldBlobs = "SELECT digest FROM submissions WHERE state NOT IN ('rejected', 'withdrawn')"

    public func ping() async throws {
        _ = try await reader.query("SELECT 1")
    }

    public func close() async throws {
        try await reader.close()
        try await writer.close()
    }

    // MARK: Rows

    private static func package(_ row: SQLiteRow) -> PackageRecord {
        PackageRecord(name: row.column("name")?.string ?? "", canonical: row.column("canonical")?.string ?? "",
                      description: row.column("description")?.string ?? "",
                      createdAt: Date(timeIntervalSince1970: row.column("created_at")?.double ?? 0),
                      updatedAt: Date(timeIntervalSince1970: row.column("updated_at")?.double ?? 0))
    }

    private static func version(_ row: SQLiteRow) -> VersionRecord {
        func data(_ name: String) -> Data {
            guard let buffer = row.column(name)?.blob else { return Data() }
            return Data(buffer.readableBytesView)
        }
        return VersionRecord(
            package: row.column("package_name")?.string ?? "", version: row.column("version")?.string ?? "",
            artifact: row.column("artifact")?.string ?? "",
            platforms: (row.column("platforms")?.string ?? "").split(separator: ",").map(String.init),
            digest: SHA256Digest(hex: row.column("digest")?.string ?? ""), size: Int64(row.column("size")?.integer ?? 0),
            manifest: data("manifest"), report: data("report"), publisher: row.column("publisher")?.string ?? "",
            publishedAt: Date(timeIntervalSince1970: row.column("published_at")?.double ?? 0),
            yanked: row.column("yanked")?.integer == 1, yankReason: row.column("yank_reason")?.string,
            deprecation: row.column("deprecation")?.string, signature: signature(row),
            attestation: row.column("attestation")?.blob.map { Data($0.readableBytesView) })
    }

    /// The signature columns of a version's or submission's row.
    static func signature(_ row: SQLiteRow) -> SignatureRecord? {
        guard let envelope = row.column("signature")?.blob, let signer = row.column("signer")?.string,
              let key = row.column("signer_key_id")?.string, let checked = row.column("signature_checked_at")?.double else { return nil }
        return SignatureRecord(envelope: Data(envelope.readableBytesView), signer: signer, keyID: key, checkedAt: Date(timeIntervalSince1970: checked))
    }
}
