import Foundation
import Logging
import PackageFormat
import SQLiteNIO

/// The embedded metadata store: one SQLite database file in write-ahead-log mode, a writer
/// connection behind a lock (transactions never interleave) and a reader connection.
public final class SQLiteMetadataStore: MetadataStore {
    private let writer: SQLiteConnection
    private let reader: SQLiteConnection
    private let writeLock = AsyncMutex()

    public static func open(path: String, logger: Logger) async throws -> SQLiteMetadataStore {
        let writer = try await SQLiteConnection.open(storage: .file(path: path), logger: logger)
        for pragma in ["PRAGMA journal_mode=WAL", "PRAGMA synchronous=FULL", "PRAGMA foreign_keys=ON", "PRAGMA busy_timeout=10000"] {
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

    static let migrations: [String] = [
        """
        CREATE TABLE packages (
            canonical TEXT PRIMARY KEY, name TEXT NOT NULL, description TEXT NOT NULL,
            keywords TEXT NOT NULL DEFAULT '', created_at REAL NOT NULL, updated_at REAL NOT NULL);
        CREATE TABLE versions (
            canonical TEXT NOT NULL REFERENCES packages(canonical), version TEXT NOT NULL, version_key TEXT NOT NULL,
            artifact TEXT NOT NULL, platforms TEXT NOT NULL, digest TEXT NOT NULL, size INTEGER NOT NULL,
            manifest BLOB NOT NULL, report BLOB NOT NULL, publisher TEXT NOT NULL, published_at REAL NOT NULL,
            yanked INTEGER NOT NULL DEFAULT 0, yank_reason TEXT, deprecation TEXT,
            PRIMARY KEY (canonical, version_key));
        CREATE INDEX versions_digest ON versions(digest);
        CREATE TABLE tokens (hash TEXT PRIMARY KEY, owner TEXT NOT NULL, role TEXT NOT NULL, created_at REAL NOT NULL);
        """,
    ]

    public func migrate() async throws {
        try await writeLock.withLock { [writer] in
            _ = try await writer.query("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at REAL NOT NULL)")
            let applied = try await writer.query("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations").first?.column("v")?.integer ?? 0
            for (index, migration) in Self.migrations.enumerated() where index + 1 > applied {
                _ = try await writer.query("BEGIN IMMEDIATE")
                do {
                    for statement in migration.split(separator: ";").map({ $0.trimmingCharacters(in: .whitespacesAndNewlines) }) where !statement.isEmpty {
                        _ = try await writer.query(statement)
                    }
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

    public func insertVersion(_ version: VersionRecord, packageName: String, canonical: String, description: String,
                              commitBlob: @Sendable () async throws -> Void) async throws {
        try await writeLock.withLock { [writer] in
            let key = Self.versionKey(version.version)
            _ = try await writer.query("BEGIN IMMEDIATE")
            do {
                let existing = try await writer.query("SELECT 1 FROM versions WHERE canonical = ? AND version_key = ?",
                                                      [.text(canonical), .text(key)])
                guard existing.isEmpty else { throw MetadataStoreError.versionExists(package: packageName, version: version.version) }
                let now = Date().timeIntervalSince1970
                let keywords = (try? JSONDecoder().decode(Manifest.self, from: version.manifest))?.keywords.joined(separator: " ") ?? ""
                _ = try await writer.query("""
                    INSERT INTO packages (canonical, name, description, keywords, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
                    ON CONFLICT(canonical) DO UPDATE SET description = excluded.description, keywords = excluded.keywords,
                    updated_at = excluded.updated_at
                    """, [.text(canonical), .text(packageName), .text(description), .text(keywords), .float(now), .float(now)])
                _ = try await writer.query("""
                    INSERT INTO versions (canonical, version, version_key, artifact, platforms, digest, size, manifest, report,
                    publisher, published_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """, [.text(canonical), .text(version.version), .text(key), .text(version.artifact),
                          .text(version.platforms.joined(separator: ",")), .text(version.digest.hex), .integer(Int(version.size)),
                          .blob(ByteBuffer(bytes: version.manifest)), .blob(ByteBuffer(bytes: version.report)),
                          .text(version.publisher), .float(version.publishedAt.timeIntervalSince1970)])
                // Last before COMMIT: a failed insert never leaves a blob behind.
                try await commitBlob()
                _ = try await writer.query("COMMIT")
            } catch {
                _ = try? await writer.query("ROLLBACK")
                throw error
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
        let filter = "canonical LIKE ?1 ESCAPE '\\' OR lower(name) LIKE ?1 ESCAPE '\\' OR lower(description) LIKE ?1 ESCAPE '\\' OR lower(keywords) LIKE ?1 ESCAPE '\\'"
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
            let changed = try await writer.query("SELECT changes() AS n").first?.column("n")?.integer ?? 0
            guard changed > 0 else { throw MetadataStoreError.notFound }
        }
    }

    public func isReferenced(_ digest: SHA256Digest) async throws -> Bool {
        try await !reader.query("SELECT 1 FROM versions WHERE digest = ? LIMIT 1", [.text(digest.hex)]).isEmpty
    }

    public func referencedDigests() async throws -> Set<SHA256Digest> {
        Set(try await reader.query("SELECT DISTINCT digest FROM versions").compactMap { $0.column("digest")?.string.map(SHA256Digest.init(hex:)) })
    }

    public func insertToken(hash: String, owner: String, role: String) async throws -> Bool {
        try await writeLock.withLock { [writer] in
            _ = try await writer.query("INSERT OR IGNORE INTO tokens (hash, owner, role, created_at) VALUES (?, ?, ?, ?)",
                                       [.text(hash), .text(owner), .text(role), .float(Date().timeIntervalSince1970)])
            return try await writer.query("SELECT changes() AS n").first?.column("n")?.integer == 1
        }
    }

    public func token(hash: String) async throws -> (owner: String, role: String)? {
        guard let row = try await reader.query("SELECT owner, role FROM tokens WHERE hash = ?", [.text(hash)]).first,
              let owner = row.column("owner")?.string, let role = row.column("role")?.string else { return nil }
        return (owner, role)
    }

    public func hasTokens() async throws -> Bool {
        try await !reader.query("SELECT 1 FROM tokens LIMIT 1").isEmpty
    }

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
            deprecation: row.column("deprecation")?.string)
    }
}
