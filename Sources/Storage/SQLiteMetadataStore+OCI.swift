import Foundation
import NIOCore
import PackageFormat
import SQLiteNIO

extension SQLiteMetadataStore: OCIStore {
    /// The OCI distribution API: blobs linked into repositories, manifests byte for byte, what
    /// they refer to, tags, and which published versions have their artifacts made.
    static let ociMigration = [
        """
        CREATE TABLE oci_blobs (repository TEXT NOT NULL, digest TEXT NOT NULL, size INTEGER NOT NULL,
            public INTEGER NOT NULL DEFAULT 0, pusher TEXT, created_at REAL NOT NULL, PRIMARY KEY (repository, digest))
        """,
        """
        CREATE TABLE oci_manifests (repository TEXT NOT NULL, digest TEXT NOT NULL, media_type TEXT NOT NULL, artifact_type TEXT,
            subject TEXT, content BLOB NOT NULL, annotations TEXT NOT NULL DEFAULT '{}', origin TEXT NOT NULL,
            public INTEGER NOT NULL DEFAULT 0, pusher TEXT, submission TEXT, created_at REAL NOT NULL, PRIMARY KEY (repository, digest))
        """,
        "CREATE INDEX oci_manifests_subject ON oci_manifests(repository, subject) WHERE subject IS NOT NULL",
        """
        CREATE TABLE oci_refs (repository TEXT NOT NULL, manifest TEXT NOT NULL, target TEXT NOT NULL, kind TEXT NOT NULL,
            PRIMARY KEY (repository, manifest, target))
        """,
        "CREATE INDEX oci_refs_target ON oci_refs(repository, target)",
        """
        CREATE TABLE oci_tags (repository TEXT NOT NULL, tag TEXT NOT NULL, digest TEXT NOT NULL, protected INTEGER NOT NULL DEFAULT 0,
            PRIMARY KEY (repository, tag))
        """,
        "CREATE TABLE oci_versions (canonical TEXT NOT NULL, version TEXT NOT NULL, created_at REAL NOT NULL, PRIMARY KEY (canonical, version))",
        """
        CREATE TABLE oci_failures (canonical TEXT NOT NULL, version TEXT NOT NULL, attempts INTEGER NOT NULL, error TEXT NOT NULL,
            retry_at REAL NOT NULL, PRIMARY KEY (canonical, version))
        """,
    ]

    public func linkBlob(_ link: OCIBlobLink, at: Date, quota: Int64?) async throws {
        try await transaction { writer in
            let linked = try await !writer.query("SELECT 1 FROM oci_blobs WHERE repository = ? AND digest = ?",
                                                 [.text(link.repository), .text(link.digest.hex)]).isEmpty
            if let quota, let pusher = link.pusher, !linked {
                let used = try await Self.pushedBytes(pusher: pusher, writer)
                guard used + link.size <= quota else { throw OCIStoreError.quotaExceeded(used: used, quota: quota) }
            }
            _ = try await writer.query("""
                INSERT INTO oci_blobs (repository, digest, size, public, pusher, created_at) VALUES (?, ?, ?, ?, ?, ?)
                ON CONFLICT (repository, digest) DO UPDATE SET public = MAX(public, excluded.public)
                """, [.text(link.repository), .text(link.digest.hex), .integer(Int(link.size)), .integer(link.isPublic ? 1 : 0),
                      Self.optional(link.pusher), .float(at.timeIntervalSince1970)])
        }
    }

    public func blobLink(repository: String, digest: SHA256Digest) async throws -> OCIBlobLink? {
        try await reader.query("SELECT * FROM oci_blobs WHERE repository = ? AND digest = ?", [.text(repository), .text(digest.hex)]).first.map {
            OCIBlobLink(repository: repository, digest: digest, size: Int64($0.column("size")?.integer ?? 0),
                        isPublic: $0.column("public")?.integer == 1, pusher: $0.column("pusher")?.string)
        }
    }

    public func pushedBytes(pusher: String) async throws -> Int64 {
        try await Self.pushedBytes(pusher: pusher, reader)
    }

    static func pushedBytes(pusher: String, _ connection: SQLiteConnection) async throws -> Int64 {
        let rows = try await connection.query("""
            SELECT (SELECT COALESCE(SUM(b.size), 0) FROM oci_blobs b WHERE b.pusher = ?1 AND NOT EXISTS
                        (SELECT 1 FROM oci_refs r JOIN oci_manifests m ON m.repository = r.repository AND m.digest = r.manifest
                         WHERE r.repository = b.repository AND r.target = b.digest AND m.submission IS NOT NULL))
                 + (SELECT COALESCE(SUM(length(content)), 0) FROM oci_manifests WHERE pusher = ?1 AND origin = 'pushed'
                        AND submission IS NULL) AS total
            """, [.text(pusher)])
        return Int64(rows.first?.column("total")?.integer ?? 0)
    }

    public func unlinkAbandonedBlobs(before: Date, limit: Int) async throws -> Int {
        try await transaction { writer in
            _ = try await writer.query("""
                DELETE FROM oci_blobs WHERE rowid IN (SELECT b.rowid FROM oci_blobs b WHERE b.public = 0 AND b.pusher IS NOT NULL
                    AND b.created_at < ? AND NOT EXISTS (SELECT 1 FROM oci_refs r WHERE r.repository = b.repository AND r.target = b.digest)
                    LIMIT ?)
                """, [.float(before.timeIntervalSince1970), .integer(limit)])
            return try await Self.changes(writer)
        }
    }

    public func unlinkBlob(repository: String, digest: SHA256Digest) async throws -> Bool {
        try await transaction { writer in
            guard try await !writer.query("SELECT 1 FROM oci_blobs WHERE repository = ? AND digest = ?", [.text(repository), .text(digest.hex)]).isEmpty
            else { return false }
            guard try await writer.query("SELECT 1 FROM oci_refs WHERE repository = ? AND target = ? LIMIT 1", [.text(repository), .text(digest.hex)]).isEmpty
            else { throw OCIStoreError.inUse(digest) }
            _ = try await writer.query("DELETE FROM oci_blobs WHERE repository = ? AND digest = ?", [.text(repository), .text(digest.hex)])
            return true
        }
    }

    public func putManifest(_ manifest: OCIManifestRecord, tag: String?) async throws {
        try await transaction { writer in
            let repository = SQLiteData.text(manifest.repository)
            var missing: [SHA256Digest] = []
            for blob in manifest.blobs where try await writer.query("SELECT 1 FROM oci_blobs WHERE repository = ? AND digest = ?",
                                                                    [repository, .text(blob.hex)]).isEmpty {
                missing.append(blob)
            }
            for child in manifest.children where try await writer.query("SELECT 1 FROM oci_manifests WHERE repository = ? AND digest = ?",
                                                                        [repository, .text(child.hex)]).isEmpty {
                missing.append(child)
            }
            guard missing.isEmpty else { throw OCIStoreError.missing(missing) }
            if let tag, let row = try await writer.query("SELECT digest, protected FROM oci_tags WHERE repository = ? AND tag = ?",
                                                        [repository, .text(tag)]).first,
               row.column("protected")?.integer == 1, row.column("digest")?.string != manifest.digest.hex {
                throw OCIStoreError.tagProtected(tag)
            }
            try await Self.insert(manifest, writer)
            if let tag {
                _ = try await writer.query("""
                    INSERT INTO oci_tags (repository, tag, digest) VALUES (?, ?, ?)
                    ON CONFLICT (repository, tag) DO UPDATE SET digest = excluded.digest
                    """, [repository, .text(tag), .text(manifest.digest.hex)])
            }
        }
    }

    /// Inserts a manifest (kept as first stored when it exists) with what it refers to; a public
    /// one makes public what it refers to.
    private static func insert(_ manifest: OCIManifestRecord, _ writer: SQLiteConnection) async throws {
        let repository = SQLiteData.text(manifest.repository), digest = SQLiteData.text(manifest.digest.hex)
        let annotations = String(decoding: try JSONEncoder().encode(manifest.annotations), as: UTF8.self)
        _ = try await writer.query("""
            INSERT INTO oci_manifests (repository, digest, media_type, artifact_type, subject, content, annotations, origin, public, pusher,
                submission, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (repository, digest) DO UPDATE SET public = MAX(public, excluded.public)
            """, [repository, digest, .text(manifest.mediaType), optional(manifest.artifactType), optional(manifest.subject?.hex),
                  .blob(ByteBuffer(bytes: manifest.content)), .text(annotations), .text(manifest.origin.rawValue),
                  .integer(manifest.isPublic ? 1 : 0), optional(manifest.pusher), optional(manifest.submission),
                  .float(manifest.createdAt.timeIntervalSince1970)])
        for (targets, kind) in [(manifest.blobs, "blob"), (manifest.children, "manifest")] {
            for target in targets {
                _ = try await writer.query("INSERT INTO oci_refs (repository, manifest, target, kind) VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
                                           [repository, digest, .text(target.hex), .text(kind)])
            }
        }
        guard manifest.isPublic else { return }
        for blob in manifest.blobs {
            _ = try await writer.query("UPDATE oci_blobs SET public = 1 WHERE repository = ? AND digest = ?", [repository, .text(blob.hex)])
        }
        for child in manifest.children {
            _ = try await writer.query("UPDATE oci_manifests SET public = 1 WHERE repository = ? AND digest = ?", [repository, .text(child.hex)])
            _ = try await writer.query("""
                UPDATE oci_blobs SET public = 1 WHERE repository = ? AND digest IN
                    (SELECT target FROM oci_refs WHERE repository = ? AND manifest = ? AND kind = 'blob')
                """, [repository, repository, .text(child.hex)])
        }
    }

    public func manifest(repository: String, digest: SHA256Digest) async throws -> OCIManifestRecord? {
        guard let row = try await reader.query("SELECT * FROM oci_manifests WHERE repository = ? AND digest = ?",
                                               [.text(repository), .text(digest.hex)]).first else { return nil }
        let refs = try await reader.query("SELECT target, kind FROM oci_refs WHERE repository = ? AND manifest = ?",
                                          [.text(repository), .text(digest.hex)])
        return Self.manifest(row, refs: refs)
    }

    private static func manifest(_ row: SQLiteRow, refs: [SQLiteRow]) -> OCIManifestRecord {
        func targets(_ kind: String) -> [SHA256Digest] {
            refs.filter { $0.column("kind")?.string == kind }.compactMap { $0.column("target")?.string.map(SHA256Digest.init(hex:)) }
        }
        let annotations = (row.column("annotations")?.string).flatMap { try? JSONDecoder().decode([String: String].self, from: Data($0.utf8)) }
        return OCIManifestRecord(
            repository: row.column("repository")?.string ?? "", digest: SHA256Digest(hex: row.column("digest")?.string ?? ""),
            mediaType: row.column("media_type")?.string ?? "", artifactType: row.column("artifact_type")?.string,
            subject: row.column("subject")?.string.map(SHA256Digest.init(hex:)),
            content: row.column("content")?.blob.map { Data($0.readableBytesView) } ?? Data(),
            blobs: targets("blob"), children: targets("manifest"), annotations: annotations ?? [:],
            origin: OCIManifestRecord.Origin(rawValue: row.column("origin")?.string ?? "") ?? .pushed,
            isPublic: row.column("public")?.integer == 1, pusher: row.column("pusher")?.string, submission: row.column("submission")?.string,
            createdAt: Date(timeIntervalSince1970: row.column("created_at")?.double ?? 0))
    }

    public func tag(repository: String, tag: String) async throws -> SHA256Digest? {
        try await reader.query("SELECT digest FROM oci_tags WHERE repository = ? AND tag = ?", [.text(repository), .text(tag)])
            .first?.column("digest")?.string.map(SHA256Digest.init(hex:))
    }

    public func tags(repository: String, after last: String?, limit: Int) async throws -> [String] {
        try await reader.query("""
            SELECT t.tag FROM oci_tags t JOIN oci_manifests m ON m.repository = t.repository AND m.digest = t.digest
            WHERE t.repository = ? AND m.public = 1 AND t.tag > ? ORDER BY t.tag LIMIT ?
            """, [.text(repository), .text(last ?? ""), .integer(limit)]).compactMap { $0.column("tag")?.string }
    }

    public func referrers(repository: String, subject: SHA256Digest) async throws -> [OCIManifestRecord] {
        let rows = try await reader.query("SELECT * FROM oci_manifests WHERE repository = ? AND subject = ? ORDER BY created_at, digest",
                                          [.text(repository), .text(subject.hex)])
        var records: [OCIManifestRecord] = []
        for row in rows {
            let refs = try await reader.query("SELECT target, kind FROM oci_refs WHERE repository = ? AND manifest = ?",
                                              [.text(repository), row.column("digest") ?? .null])
            records.append(Self.manifest(row, refs: refs))
        }
        return records
    }

    public func deleteManifest(repository: String, digest: SHA256Digest) async throws -> Bool {
        try await transaction { writer in
            let binds: [SQLiteData] = [.text(repository), .text(digest.hex)]
            guard try await !writer.query("SELECT 1 FROM oci_manifests WHERE repository = ? AND digest = ?", binds).isEmpty else { return false }
            _ = try await writer.query("DELETE FROM oci_tags WHERE repository = ? AND digest = ?", binds)
            _ = try await writer.query("DELETE FROM oci_refs WHERE repository = ? AND manifest = ?", binds)
            _ = try await writer.query("DELETE FROM oci_manifests WHERE repository = ? AND digest = ?", binds)
            return true
        }
    }

    public func deleteTag(repository: String, tag: String) async throws -> Bool {
        try await transaction { writer in
            guard try await !writer.query("SELECT 1 FROM oci_tags WHERE repository = ? AND tag = ?", [.text(repository), .text(tag)]).isEmpty
            else { return false }
            _ = try await writer.query("DELETE FROM oci_tags WHERE repository = ? AND tag = ?", [.text(repository), .text(tag)])
            return true
        }
    }

    public func versionsWithoutArtifacts(limit: Int) async throws -> [(canonical: String, version: String)] {
        try await reader.query("""
            SELECT v.canonical, v.version FROM versions v WHERE NOT EXISTS
                (SELECT 1 FROM oci_versions o WHERE o.canonical = v.canonical AND o.version = v.version)
            AND NOT EXISTS (SELECT 1 FROM oci_failures f WHERE f.canonical = v.canonical AND f.version = v.version AND f.retry_at > ?)
            ORDER BY v.published_at LIMIT ?
            """, [.float(Date().timeIntervalSince1970), .integer(limit)]).map { ($0.column("canonical")?.string ?? "", $0.column("version")?.string ?? "") }
    }

    public func recordPublicationFailure(canonical: String, version: String, error: String, at: Date) async throws {
        try await transaction { writer in
            let attempts = (try await writer.query("SELECT attempts FROM oci_failures WHERE canonical = ? AND version = ?",
                                                   [.text(canonical), .text(version)]).first?.column("attempts")?.integer ?? 0) + 1
            let wait = min(86_400, 60 * pow(2, Double(min(attempts - 1, 20))))
            _ = try await writer.query("""
                INSERT INTO oci_failures (canonical, version, attempts, error, retry_at) VALUES (?, ?, ?, ?, ?)
                ON CONFLICT (canonical, version) DO UPDATE SET attempts = excluded.attempts, error = excluded.error, retry_at = excluded.retry_at
                """, [.text(canonical), .text(version), .integer(attempts), .text(String(error.prefix(2000))), .float(at.timeIntervalSince1970 + wait)])
        }
    }

    public func recordPublication(_ publication: OCIPublication, at: Date) async throws {
        try await transaction { writer in
            let repository = publication.canonical
            for blob in publication.blobs {
                _ = try await writer.query("""
                    INSERT INTO oci_blobs (repository, digest, size, public, created_at) VALUES (?, ?, ?, 1, ?)
                    ON CONFLICT (repository, digest) DO UPDATE SET public = 1
                    """, [.text(repository), .text(blob.digest.hex), .integer(Int(blob.size)), .float(at.timeIntervalSince1970)])
            }
            for manifest in publication.manifests { try await Self.insert(manifest, writer) }
            for (tag, digest) in publication.tags {
                _ = try await writer.query("""
                    INSERT INTO oci_tags (repository, tag, digest, protected) VALUES (?, ?, ?, 1)
                    ON CONFLICT (repository, tag) DO UPDATE SET digest = excluded.digest, protected = 1
                    """, [.text(repository), .text(tag), .text(digest.hex)])
            }
            _ = try await writer.query("INSERT INTO oci_versions (canonical, version, created_at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                                       [.text(publication.canonical), .text(publication.version), .float(at.timeIntervalSince1970)])
            _ = try await writer.query("DELETE FROM oci_failures WHERE canonical = ? AND version = ?",
                                       [.text(publication.canonical), .text(publication.version)])
        }
    }
}
