import Foundation
import Logging
@testable import Storage
import TestSupport
import Testing

/// The contract every credential store keeps. Each test runs over every implementation.
@Suite struct CredentialStoreContractTests {
    typealias Kind = MetadataStoreContractTests.Kind

    static func makeStore(_ kind: Kind) async throws -> (any AccountStore & CredentialStore, @Sendable () async -> Void) {
        switch kind {
        case .sqlite:
            let directory = try Fixtures.temporaryDirectory()
            let store = try await SQLiteMetadataStore.open(path: directory.appendingPathComponent("epr.sqlite").path, logger: Logger(label: "test"))
            try await store.migrate()
            try await store.insertUser(UserRecord(name: "alice", role: "publisher", createdAt: t0))
            return (store, {
                try? await store.close()
                try? FileManager.default.removeItem(at: directory)
            })
        }
    }

    static let t0 = Date(timeIntervalSince1970: 1_700_000_000)

    static func session(_ id: String, user: String = "alice") -> SessionRecord {
        SessionRecord(id: id, user: user, csrf: "csrf-\(id)", createdAt: t0, expiresAt: t0.addingTimeInterval(3600), lastSeenAt: t0,
                      address: "192.0.2.1", method: "password")
    }

    @Test(arguments: Kind.allCases)
    func passwordsEndSessionsWhenAsked(kind: Kind) async throws {
        let (store, cleanup) = try await Self.makeStore(kind)
        defer { Task { await cleanup() } }
        #expect(try await store.credentials(user: "alice") == nil)
        try await store.insertSession(Self.session("ses_1"), hash: "h1")
        try await store.setPassword(user: "alice", hash: "bcrypt-sha256$one", at: Self.t0, endSessions: false)
        #expect(try await store.session(hash: "h1")?.id == "ses_1", "a rehash keeps sessions")
        try await store.setPassword(user: "alice", hash: "bcrypt-sha256$two", at: Self.t0.addingTimeInterval(5), endSessions: true)
        #expect(try await store.session(hash: "h1") == nil)
        let stored = try #require(try await store.credentials(user: "alice"))
        #expect(stored.passwordHash == "bcrypt-sha256$two" && stored.passwordChangedAt == Self.t0.addingTimeInterval(5))
        await #expect(throws: AccountStoreError.userNotFound("nobody")) {
            try await store.setPassword(user: "nobody", hash: "x", at: Self.t0, endSessions: true)
        }
    }

    @Test(arguments: Kind.allCases)
    func timeStepsAndRecoveryCodesAreGoodOnce(kind: Kind) async throws {
        let (store, cleanup) = try await Self.makeStore(kind)
        defer { Task { await cleanup() } }
        try await store.setTOTP(user: "alice", secret: "SECRET", enabled: false, recoveryCodeHashes: ["ignored"], step: 0)
        #expect(try await store.credentials(user: "alice")?.totpEnabled == false)
        #expect(try await store.recoveryCodesLeft(user: "alice") == 0, "codes come with confirmation only")
        try await store.setTOTP(user: "alice", secret: "SECRET", enabled: true, recoveryCodeHashes: ["r1", "r2"], step: 50)
        #expect(try await store.credentials(user: "alice")?.totpLastStep == 50)
        #expect(try await store.useTOTPStep(user: "alice", step: 50) == false)
        #expect(try await store.useTOTPStep(user: "alice", step: 51) == true)
        #expect(try await store.useTOTPStep(user: "alice", step: 51) == false)
        #expect(try await store.useRecoveryCode(user: "alice", hash: "r1", at: Self.t0) == true)
        #expect(try await store.useRecoveryCode(user: "alice", hash: "r1", at: Self.t0) == false)
        #expect(try await store.useRecoveryCode(user: "alice", hash: "r3", at: Self.t0) == false)
        #expect(try await store.recoveryCodesLeft(user: "alice") == 1)
        try await store.setTOTP(user: "alice", secret: nil, enabled: true, recoveryCodeHashes: [], step: 0)
        let removed = try #require(try await store.credentials(user: "alice"))
        #expect(removed.totpSecret == nil && !removed.totpEnabled && removed.totpLastStep == 51, "steps never go back")
        #expect(try await store.recoveryCodesLeft(user: "alice") == 0)
    }

    @Test(arguments: Kind.allCases)
    func registrationSpendsItsInvitationAtomically(kind: Kind) async throws {
        let (store, cleanup) = try await Self.makeStore(kind)
        defer { Task { await cleanup() } }
        try await store.insertSignupInvitation(SignupInvitation(id: "inv_1", role: "publisher", createdBy: "admin", createdAt: Self.t0,
                                                                expiresAt: Self.t0.addingTimeInterval(3600)), hash: "code-1")
        try await store.insertSignupInvitation(SignupInvitation(id: "inv_2", role: "user", createdBy: "admin", createdAt: Self.t0,
                                                                expiresAt: Self.t0.addingTimeInterval(60)), hash: "code-2")
        let bob = UserRecord(name: "bob", role: "publisher", createdAt: Self.t0)
        try await store.register(bob, passwordHash: "bcrypt-sha256$b", invitationHash: "code-1", identity: nil, at: Self.t0.addingTimeInterval(1))
        #expect(try await store.user(name: "bob") == bob)
        #expect(try await store.credentials(user: "bob")?.passwordHash == "bcrypt-sha256$b")
        // Spent, expired and unknown codes create nobody.
        for (name, code, at) in [("carol", "code-1", 2.0), ("dave", "code-2", 120.0), ("erin", "code-9", 2.0)] {
            await #expect(throws: CredentialStoreError.invitationUnusable) {
                try await store.register(UserRecord(name: name, role: "user", createdAt: Self.t0), passwordHash: "x", invitationHash: code,
                                         identity: nil, at: Self.t0.addingTimeInterval(at))
            }
            #expect(try await store.user(name: name) == nil)
        }
        // A taken name spends nothing.
        await #expect(throws: AccountStoreError.userExists("alice")) {
            try await store.register(UserRecord(name: "alice", role: "user", createdAt: Self.t0), passwordHash: "x", invitationHash: "code-2",
                                     identity: nil, at: Self.t0.addingTimeInterval(1))
        }
        let invitations = try await store.signupInvitations()
        #expect(invitations.map(\.usedBy) == ["bob", nil])
    }

    @Test(arguments: Kind.allCases)
    func sessionsAndIdentities(kind: Kind) async throws {
        let (store, cleanup) = try await Self.makeStore(kind)
        defer { Task { await cleanup() } }
        try await store.insertSession(Self.session("ses_1"), hash: "h1")
        try await store.insertSession(Self.session("ses_2"), hash: "h2")
        #expect(try await store.sessions(user: "alice").map(\.id) == ["ses_1", "ses_2"])
        try await store.touchSession(id: "ses_1", at: Self.t0.addingTimeInterval(30))
        #expect(try await store.session(hash: "h1")?.lastSeenAt == Self.t0, "touches within a minute are skipped")
        try await store.touchSession(id: "ses_1", at: Self.t0.addingTimeInterval(120))
        #expect(try await store.session(hash: "h1")?.lastSeenAt == Self.t0.addingTimeInterval(120))
        #expect(try await store.deleteSession(id: "ses_1") == true)
        #expect(try await store.deleteSession(id: "ses_1") == false)
        try await store.deleteSessions(user: "alice")
        #expect(try await store.sessions(user: "alice").isEmpty)

        let identity = ExternalIdentity(issuer: "https://idp.example", subject: "123", user: "alice", provider: "idp", email: nil, linkedAt: Self.t0)
        try await store.link(identity)
        #expect(try await store.identity(issuer: "https://idp.example", subject: "123") == identity)
        await #expect(throws: CredentialStoreError.identityLinked) {
            try await store.register(UserRecord(name: "mallory", role: "user", createdAt: Self.t0), passwordHash: nil, invitationHash: nil,
                                     identity: ExternalIdentity(issuer: "https://idp.example", subject: "123", user: "mallory", provider: "idp",
                                                                email: nil, linkedAt: Self.t0), at: Self.t0)
        }
        #expect(try await store.user(name: "mallory") == nil, "the user and the link appear together or not at all")
        #expect(try await store.identities(user: "alice").count == 1)
    }
}

/// The contract every organisation store keeps. Each test runs over every implementation.
@Suite struct OrganisationStoreContractTests {
    typealias Kind = MetadataStoreContractTests.Kind
    static let t0 = CredentialStoreContractTests.t0

    static func makeStore(_ kind: Kind) async throws -> (any MetadataStore & AccountStore & OrganisationStore, @Sendable () async -> Void) {
        switch kind {
        case .sqlite:
            let directory = try Fixtures.temporaryDirectory()
            let store = try await SQLiteMetadataStore.open(path: directory.appendingPathComponent("epr.sqlite").path, logger: Logger(label: "test"))
            try await store.migrate()
            for name in ["alice", "bob", "carol"] { try await store.insertUser(UserRecord(name: name, role: "publisher", createdAt: t0)) }
            return (store, {
                try? await store.close()
                try? FileManager.default.removeItem(at: directory)
            })
        }
    }

    static func publish(_ store: any MetadataStore, _ package: String, _ version: String, by user: String) async throws {
        let record = AccountStoreContractTests.record(version, publisher: user, package: package)
        try await store.insertVersion(record, packageName: package, canonical: package, description: "", ownership: .owners) {}
    }

    @Test(arguments: Kind.allCases)
    func namespacesAndMembers(kind: Kind) async throws {
        let (store, cleanup) = try await Self.makeStore(kind)
        defer { Task { await cleanup() } }
        try await store.createOrganisation(Organisation(name: "xdp", description: "", createdBy: "admin", createdAt: Self.t0), admin: "alice")
        try await store.createOrganisation(Organisation(name: "xdp-tools", description: "", createdBy: "admin", createdAt: Self.t0), admin: "bob")
        await #expect(throws: OrganisationStoreError.exists("xdp")) {
            try await store.createOrganisation(Organisation(name: "xdp", description: "", createdBy: "admin", createdAt: Self.t0), admin: "bob")
        }
        // The longest organisation name that prefixes the package's wins.
        await #expect(throws: AccountStoreError.namespaceTaken(package: "xdp-tools-dump", org: "xdp-tools")) {
            try await Self.publish(store, "xdp-tools-dump", "1.0.0", by: "alice")
        }
        try await Self.publish(store, "xdp-tools-dump", "1.0.0", by: "bob")
        try await Self.publish(store, "xdp", "1.0.0", by: "alice")
        try await Self.publish(store, "xdpfilter", "1.0.0", by: "carol")
        #expect(try await store.organisation(ofPackage: "xdp-tools-dump") == "xdp-tools")
        #expect(try await store.organisation(ofPackage: "xdp") == "xdp")
        #expect(try await store.organisation(ofPackage: "xdpfilter") == nil, "a namespace ends at a hyphen")
        #expect(try await store.packages(org: "xdp") == ["xdp"])

        try await store.setMember(OrgMember(org: "xdp", user: "carol", role: "member", addedAt: Self.t0))
        #expect(try await store.effectiveOwners(package: "xdp") == ["alice", "carol"])
        try await Self.publish(store, "xdp", "1.1.0", by: "carol")
        await #expect(throws: OrganisationStoreError.lastAdmin("xdp")) {
            try await store.setMember(OrgMember(org: "xdp", user: "alice", role: "member", addedAt: Self.t0))
        }
        await #expect(throws: OrganisationStoreError.lastAdmin("xdp")) { try await store.removeMember(org: "xdp", user: "alice") }
        try await store.removeMember(org: "xdp", user: "carol")
        await #expect(throws: OrganisationStoreError.notMember(user: "carol", org: "xdp")) { try await store.removeMember(org: "xdp", user: "carol") }
        await #expect(throws: AccountStoreError.notOwner(user: "carol", package: "xdp")) {
            try await Self.publish(store, "xdp", "1.2.0", by: "carol")
        }
        #expect(try await store.members(org: "xdp").map(\.user) == ["alice"])
    }

    @Test(arguments: Kind.allCases)
    func packagesMoveAndTransfer(kind: Kind) async throws {
        let (store, cleanup) = try await Self.makeStore(kind)
        defer { Task { await cleanup() } }
        try await store.createOrganisation(Organisation(name: "team", description: "", createdBy: "admin", createdAt: Self.t0), admin: "alice")
        try await Self.publish(store, "probe", "1.0.0", by: "bob")
        try await store.setOrganisation(ofPackage: "probe", to: "team")
        #expect(try await store.effectiveOwners(package: "probe") == ["alice", "bob"])
        await #expect(throws: OrganisationStoreError.notFound("nope")) { try await store.setOrganisation(ofPackage: "probe", to: "nope") }

        try await store.offerTransfer(OwnerInvitation(package: "probe", user: "carol", invitedBy: "bob", createdAt: Self.t0))
        #expect(try await store.invitations(user: "carol").first?.transfer == true)
        #expect(try await store.answerInvitation(package: "probe", user: "carol", accept: true))
        #expect(try await store.owners(package: "probe") == ["carol"], "a transfer leaves the new owner alone")
        #expect(try await store.effectiveOwners(package: "probe") == ["alice", "carol"], "the organisation stays")
        try await store.setOrganisation(ofPackage: "probe", to: nil)
        #expect(try await store.effectiveOwners(package: "probe") == ["carol"])
    }
}
