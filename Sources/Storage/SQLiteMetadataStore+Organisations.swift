import Foundation
import SQLiteNIO

extension SQLiteMetadataStore: OrganisationStore {
    /// One row when the user owns the package directly or through its organisation (binds:
    /// canonical, user).
    static let ownsQuery = """
        SELECT 1 FROM owners WHERE canonical = ?1 AND user = ?2
        UNION ALL SELECT 1 FROM package_orgs p JOIN org_members m ON m.org = p.org WHERE p.canonical = ?1 AND m.user = ?2
        """

    /// One row when the user may manage the package's owners: a direct owner, or an admin of
    /// its organisation (binds: canonical, user).
    static let managesOwnersQuery = """
        SELECT 1 FROM owners WHERE canonical = ?1 AND user = ?2
        UNION ALL SELECT 1 FROM package_orgs p JOIN org_members m ON m.org = p.org
        WHERE p.canonical = ?1 AND m.user = ?2 AND m.role = 'admin'
        """

    public func ownerManagers(package canonical: String) async throws -> [String] {
        try await reader.query("""
            SELECT user FROM owners WHERE canonical = ?1
            UNION SELECT m.user FROM package_orgs p JOIN org_members m ON m.org = p.org WHERE p.canonical = ?1 AND m.role = 'admin'
            ORDER BY user
            """, [.text(canonical)]).compactMap { $0.column("user")?.string }
    }

    /// The organisation whose namespace holds this name: the longest `org` with the name equal
    /// to it or starting with `org-`.
    static func namespace(of canonical: String, _ connection: SQLiteConnection) async throws -> String? {
        try await connection.query("""
            SELECT name FROM organisations WHERE name = ?1 OR substr(?1, 1, length(name) + 1) = name || '-'
            ORDER BY length(name) DESC LIMIT 1
            """, [.text(canonical)]).first?.column("name")?.string
    }

    public func createOrganisation(_ organisation: Organisation, admin: String) async throws {
        try await transaction { writer in
            guard try await !writer.query("SELECT 1 FROM users WHERE name = ?", [.text(admin)]).isEmpty else {
                throw AccountStoreError.userNotFound(admin)
            }
            _ = try await writer.query("INSERT OR IGNORE INTO organisations (name, description, created_by, created_at) VALUES (?, ?, ?, ?)",
                                       [.text(organisation.name), .text(organisation.description), .text(organisation.createdBy),
                                        .float(organisation.createdAt.timeIntervalSince1970)])
            guard try await Self.changes(writer) == 1 else { throw OrganisationStoreError.exists(organisation.name) }
            _ = try await writer.query("INSERT INTO org_members (org, user, role, added_at) VALUES (?, ?, 'admin', ?)",
                                       [.text(organisation.name), .text(admin), .float(organisation.createdAt.timeIntervalSince1970)])
        }
    }

    public func organisation(name: String) async throws -> Organisation? {
        try await reader.query("SELECT * FROM organisations WHERE name = ?", [.text(name)]).first.map(Self.organisation)
    }

    public func organisations() async throws -> [Organisation] {
        try await reader.query("SELECT * FROM organisations ORDER BY name").map(Self.organisation)
    }

    public func members(org: String) async throws -> [OrgMember] {
        try await reader.query("SELECT * FROM org_members WHERE org = ? ORDER BY added_at, user", [.text(org)]).map { row in
            OrgMember(org: row.column("org")?.string ?? "", user: row.column("user")?.string ?? "", role: row.column("role")?.string ?? "member",
                      addedAt: Date(timeIntervalSince1970: row.column("added_at")?.double ?? 0))
        }
    }

    public func setMember(_ member: OrgMember) async throws {
        try await transaction { writer in
            try await Self.requireOrganisation(member.org, writer)
            guard try await !writer.query("SELECT 1 FROM users WHERE name = ?", [.text(member.user)]).isEmpty else {
                throw AccountStoreError.userNotFound(member.user)
            }
            _ = try await writer.query("""
                INSERT INTO org_members (org, user, role, added_at) VALUES (?1, ?2, ?3, ?4)
                ON CONFLICT(org, user) DO UPDATE SET role = ?3
                """, [.text(member.org), .text(member.user), .text(member.role), .float(member.addedAt.timeIntervalSince1970)])
            try await Self.requireAdmin(member.org, writer)
        }
    }

    public func removeMember(org: String, user: String) async throws {
        try await transaction { writer in
            try await Self.requireOrganisation(org, writer)
            _ = try await writer.query("DELETE FROM org_members WHERE org = ? AND user = ?", [.text(org), .text(user)])
            guard try await Self.changes(writer) == 1 else { throw OrganisationStoreError.notMember(user: user, org: org) }
            try await Self.requireAdmin(org, writer)
        }
    }

    public func organisation(ofPackage canonical: String) async throws -> String? {
        try await reader.query("SELECT org FROM package_orgs WHERE canonical = ?", [.text(canonical)]).first?.column("org")?.string
    }

    public func packages(org: String) async throws -> [String] {
        // Published packages only: a first submission still in review is not shown.
        try await reader.query("""
            SELECT canonical FROM package_orgs p WHERE org = ? AND EXISTS (SELECT 1 FROM versions v WHERE v.canonical = p.canonical)
            ORDER BY canonical
            """, [.text(org)])
            .compactMap { $0.column("canonical")?.string }
    }

    public func setOrganisation(ofPackage canonical: String, to org: String?) async throws {
        try await transaction { writer in
            guard try await !writer.query("SELECT 1 FROM packages WHERE canonical = ?", [.text(canonical)]).isEmpty else {
                throw MetadataStoreError.notFound
            }
            if let org {
                try await Self.requireOrganisation(org, writer)
                _ = try await writer.query("""
                    INSERT INTO package_orgs (canonical, org, since) VALUES (?1, ?2, ?3) ON CONFLICT(canonical) DO UPDATE SET org = ?2, since = ?3
                    """, [.text(canonical), .text(org), .float(Date().timeIntervalSince1970)])
            } else {
                guard try await !writer.query("SELECT 1 FROM owners WHERE canonical = ?", [.text(canonical)]).isEmpty else {
                    throw AccountStoreError.lastOwner(canonical)
                }
                _ = try await writer.query("DELETE FROM package_orgs WHERE canonical = ?", [.text(canonical)])
            }
        }
    }

    public func effectiveOwners(package canonical: String) async throws -> [String] {
        try await reader.query("""
            SELECT user FROM owners WHERE canonical = ?1
            UNION SELECT m.user FROM package_orgs p JOIN org_members m ON m.org = p.org WHERE p.canonical = ?1
            ORDER BY user
            """, [.text(canonical)]).compactMap { $0.column("user")?.string }
    }

    public func offerTransfer(_ invitation: OwnerInvitation) async throws {
        var offer = invitation
        offer.transfer = true
        try await invite(offer)
    }

    private static func requireOrganisation(_ org: String, _ writer: SQLiteConnection) async throws {
        guard try await !writer.query("SELECT 1 FROM organisations WHERE name = ?", [.text(org)]).isEmpty else {
            throw OrganisationStoreError.notFound(org)
        }
    }

    private static func requireAdmin(_ org: String, _ writer: SQLiteConnection) async throws {
        guard try await !writer.query("SELECT 1 FROM org_members WHERE org = ? AND role = 'admin' LIMIT 1", [.text(org)]).isEmpty else {
            throw OrganisationStoreError.lastAdmin(org)
        }
    }

    private static func organisation(_ row: SQLiteRow) -> Organisation {
        Organisation(name: row.column("name")?.string ?? "", description: row.column("description")?.string ?? "",
                     createdBy: row.column("created_by")?.string ?? "", createdAt: Date(timeIntervalSince1970: row.column("created_at")?.double ?? 0))
    }
}
