import Foundation
import PackageFormat
import TestSupport
import Testing

/// The client commands against the real server: what they print, in text and JSON, and how
/// they report the server's problems.
@Suite(.serialized) struct ClientCommandTests {
    @Test func everyClientCommand() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try ServerProcess(data: directory.appendingPathComponent("data"))
        defer { server.stop() }
        let config = directory.appendingPathComponent("client.toml")
        try "[client]\nregistry = \"\(server.baseURL)\"\ntoken = \"\(ServerProcess.token)\"\n".write(to: config, atomically: true, encoding: .utf8)
        func epr(_ arguments: String...) throws -> (status: Int32, output: String) {
            try Fixtures.run("/usr/bin/env", ["EPR_CONFIG=\(config.path)", "EPR_REGISTRY=", "EPR_TOKEN=", Fixtures.eprBinary] + arguments)
        }
        for version in ["1.0.0", "1.2.0"] {
            let archive = try Fixtures.packageArchive("exec-tracker", version: version, into: directory)
            let (status, output) = try epr("publish", archive)
            #expect(status == 0, "\(output)")
        }

        let (infoStatus, info) = try epr("info", "exec-tracker")
        #expect(infoStatus == 0)
        #expect(info.contains("exec-tracker  latest 1.2.0"))
        let (_, versions) = try epr("versions", "exec-tracker", "--json")
        struct Version: Decodable { var version: String }
        #expect(try JSONDecoder().decode([Version].self, from: Data(versions.utf8)).map(\.version) == ["1.2.0", "1.0.0"])

        let (yankStatus, _) = try epr("yank", "exec-tracker@1.2.0", "--reason", "regression")
        #expect(yankStatus == 0)
        let (_, afterYank) = try epr("versions", "exec-tracker")
        #expect(afterYank.split(separator: "\n").first?.hasSuffix("yanked") == true)
        let (_, deprecated) = try epr("deprecate", "exec-tracker@1.0.0", "--message", "upgrade")
        #expect(deprecated.contains("deprecated exec-tracker@1.0.0"))

        let downloads = directory.appendingPathComponent("downloads")
        try FileManager.default.createDirectory(at: downloads, withIntermediateDirectories: true)
        let (downloadStatus, downloaded) = try epr("download", "exec-tracker", "--platform", "jammy", "-o", downloads.path, "--json")
        #expect(downloadStatus == 0, "\(downloaded)")
        struct Download: Decodable { var path: String; var version: String; var sha256: String }
        let result = try JSONDecoder().decode(Download.self, from: Data(downloaded.utf8))
        #expect(result.version == "1.0.0", "latest skips the yanked 1.2.0")
        #expect(SHA256Digest(of: Array(try Data(contentsOf: URL(fileURLWithPath: result.path)))).description == result.sha256)
        let (_, exact) = try epr("download", "exec-tracker@1.2.0", "-o", downloads.path)
        #expect(exact.contains("downloaded exec-tracker@1.2.0"))

        let (_, search) = try epr("search", "ringbuf")
        #expect(search.contains("exec-tracker"))
        #expect(search.contains("1 package(s)"))

        let (missingStatus, missing) = try epr("info", "no-such-package")
        #expect(missingStatus == 1)
        #expect(missing.contains("there is no package no-such-package [package-not-found]"))
        let archive = try Fixtures.packageArchive("exec-tracker", version: "1.0.0", into: directory)
        let (conflictStatus, conflict) = try epr("publish", archive)
        #expect(conflictStatus == 1)
        #expect(conflict.contains("[version-exists]"))
        let (anonymousStatus, anonymous) = try Fixtures.run("/usr/bin/env", ["EPR_CONFIG=/nonexistent", "EPR_REGISTRY=\(server.baseURL)",
                                                                             "EPR_TOKEN=", Fixtures.eprBinary, "yank", "exec-tracker@1.0.0"])
        #expect(anonymousStatus == 1)
        #expect(anonymous.contains("[unauthenticated]"))
    }

    /// Users, tokens, owners and the audit log through the CLI: an admin creates a publisher
    /// and gives it a token; the publisher publishes a package it then owns, invites a second
    /// publisher, who accepts and publishes the next version; a token limited to other
    /// packages, and a revoked one, are refused; the audit log shows all of it.
    @Test func accountsThroughTheCommandLine() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try ServerProcess(data: directory.appendingPathComponent("data"))
        defer { server.stop() }
        func epr(token: String, _ arguments: String...) throws -> (status: Int32, output: String) {
            try Fixtures.run("/usr/bin/env", ["EPR_CONFIG=/nonexistent", "EPR_REGISTRY=\(server.baseURL)", "EPR_TOKEN=\(token)",
                                             Fixtures.eprBinary] + arguments)
        }
        let admin = ServerProcess.token
        func lastLine(_ output: String) -> String { output.split(separator: "\n").map(String.init).first { $0.hasPrefix("epr_") } ?? "" }

        #expect(try epr(token: admin, "user", "create", "alice", "--role", "publisher").status == 0)
        #expect(try epr(token: admin, "user", "create", "bob", "--role", "publisher").status == 0)
        let (duplicateStatus, duplicate) = try epr(token: admin, "user", "create", "alice")
        #expect(duplicateStatus == 1 && duplicate.contains("[user-exists]"))
        let (_, users) = try epr(token: admin, "user", "list")
        #expect(users.contains("alice\tpublisher") && users.contains("bob\tpublisher") && users.contains("admin\tadmin"))

        let (aliceStatus, aliceOutput) = try epr(token: admin, "token", "create", "alice-laptop", "--user", "alice",
                                                 "--scope", "publish-new", "--scope", "publish-update", "--scope", "owners",
                                                 "--scope", "yank")
        #expect(aliceStatus == 0, "\(aliceOutput)")
        let alice = lastLine(aliceOutput)
        #expect(alice.hasPrefix("epr_") && alice.count == 47)
        let (_, whoami) = try epr(token: alice, "whoami")
        #expect(whoami.contains("alice (publisher)") && whoami.contains("publish-new, publish-update, yank, owners"))
        // A token cannot mint a stronger one, nor one beyond its user's role.
        let (escalateStatus, escalate) = try epr(token: alice, "token", "create", "more", "--scope", "sign")
        #expect(escalateStatus == 1 && escalate.contains("[forbidden]"), "\(escalate)")
        let (roleStatus, role) = try epr(token: admin, "token", "create", "x", "--user", "alice", "--scope", "admin")
        #expect(roleStatus == 1 && role.contains("publisher role cannot hold the admin scope"), "\(role)")

        // alice publishes exec-tracker and owns it; bob may not publish to it until he owns it too.
        #expect(try epr(token: alice, "publish", try Fixtures.packageArchive("exec-tracker", version: "1.0.0", into: directory)).status == 0)
        let bob = lastLine(try epr(token: admin, "token", "create", "bob-ci", "--user", "bob", "--scope", "publish-update",
                                     "--scope", "owners").output)
        let next = try Fixtures.packageArchive("exec-tracker", version: "1.1.0", into: directory)
        let (refusedStatus, refused) = try epr(token: bob, "publish", next)
        #expect(refusedStatus == 1 && refused.contains("bob is not an owner of exec-tracker [forbidden]"), "\(refused)")
        #expect(try epr(token: alice, "owner", "add", "exec-tracker", "bob").status == 0)
        let (_, pending) = try epr(token: bob, "owner", "invitations")
        #expect(pending.contains("exec-tracker\tfrom alice"))
        #expect(try epr(token: bob, "publish", next).status == 1, "an invitation is not ownership")
        #expect(try epr(token: bob, "owner", "accept", "exec-tracker").status == 0)
        let (bobPublishStatus, bobPublish) = try epr(token: bob, "publish", next)
        #expect(bobPublishStatus == 0, "\(bobPublish)")
        let (_, owners) = try epr(token: bob, "owner", "list", "exec-tracker")
        #expect(owners.split(separator: "\n").map(String.init) == ["alice", "bob"])

        // Tokens limited by package pattern, and revoked tokens.
        let limited = lastLine(try epr(token: admin, "token", "create", "l3af-only", "--user", "alice", "--scope", "yank",
                                       "--package", "l3af-*").output)
        let (limitedStatus, limitedOutput) = try epr(token: limited, "yank", "exec-tracker@1.0.0")
        #expect(limitedStatus == 1 && limitedOutput.contains("limited to packages l3af-*"), "\(limitedOutput)")
        let (listed, listing) = try epr(token: bob, "token", "list", "--json")
        #expect(listed == 0)
        struct Token: Decodable { var id: String; var name: String; var token: String? }
        let bobTokens = try JSONDecoder().decode([Token].self, from: Data(listing.utf8))
        #expect(bobTokens.map(\.name) == ["bob-ci"] && bobTokens.allSatisfy { $0.token == nil }, "secrets are never listed")
        #expect(try epr(token: bob, "token", "revoke", bobTokens[0].id).status == 0)
        let (revokedStatus, revoked) = try epr(token: bob, "whoami")
        #expect(revokedStatus == 1 && revoked.contains("[unauthenticated]"))

        // The audit log, for admins only.
        let (auditStatus, audit) = try epr(token: admin, "audit", "--json")
        #expect(auditStatus == 0)
        struct Page: Decodable { var items: [Record] }
        struct Record: Decodable { var actor: String?; var action: String; var target: String?; var outcome: String; var address: String? }
        let records = try JSONDecoder().decode(Page.self, from: Data(audit.utf8)).items
        func has(_ actor: String?, _ action: String, _ target: String?, _ outcome: String = "success") -> Bool {
            records.contains { $0.actor == actor && $0.action == action && $0.target == target && $0.outcome == outcome }
        }
        #expect(has("alice", "submit", "exec-tracker@1.0.0"))
        #expect(has("bob", "publish", "exec-tracker@1.1.0", "denied"))
        #expect(has("bob", "submit", "exec-tracker@1.1.0"))
        #expect(has("alice", "owner.invite", "exec-tracker") && has("bob", "owner.accept", "exec-tracker"))
        #expect(has("admin", "user.create", "alice") && has("bob", "token.revoke", bobTokens[0].id))
        #expect(has("bob", "auth", nil, "denied"), "the revoked token's attempt")
        #expect(records.filter { $0.actor == "alice" }.allSatisfy { $0.address == "127.0.0.1" })
        let (deniedStatus, denied) = try epr(token: alice, "audit")
        #expect(deniedStatus == 1 && denied.contains("[forbidden]"))
    }

    /// Registering with an invitation, `epr login` saving a token in the config file, a
    /// password change, `epr logout` revoking the token.
    @Test func signInThroughTheCommandLine() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try ServerProcess(data: directory.appendingPathComponent("data"), environment: ["EPR_PASSWORD_COST": "4"])
        defer { server.stop() }
        let config = directory.appendingPathComponent("home/config.toml")
        try FileManager.default.createDirectory(at: config.deletingLastPathComponent(), withIntermediateDirectories: true)
        try "# my settings\n[client]\nregistry = \"http://old.example\"\n\n[other]\nkeep = \"me\"\n".write(to: config, atomically: true, encoding: .utf8)
        func epr(token: String? = nil, input: String? = nil, _ arguments: String...) throws -> (status: Int32, output: String) {
            try Fixtures.run("/usr/bin/env", ["EPR_CONFIG=\(config.path)", "EPR_REGISTRY=\(server.baseURL)"] + (token.map { ["EPR_TOKEN=\($0)"] } ?? [])
                             + [Fixtures.eprBinary] + arguments, input: input)
        }
        let password = "carol's long passphrase", newPassword = "carol's newer passphrase"
        Fixtures.recordSecret(password)
        Fixtures.recordSecret(newPassword)

        let (inviteStatus, invite) = try epr(token: ServerProcess.token, "user", "invite", "--role", "publisher")
        #expect(inviteStatus == 0, "\(invite)")
        let code = try #require(invite.split(separator: "\n").map(String.init).first { $0.hasPrefix("epri_") })
        Fixtures.recordSecret(code)
        let (closedStatus, closed) = try epr(input: password + "\n", "register", "carol", "--password-stdin")
        #expect(closedStatus == 1 && closed.contains("[registration-closed]"), "\(closed)")
        let (registered, registerOutput) = try epr(input: password + "\n", "register", "carol", "--invitation", code, "--password-stdin")
        #expect(registered == 0 && registerOutput.contains("registered carol (publisher)"), "\(registerOutput)")

        let (wrongStatus, wrong) = try epr(input: "not carol's password\n", "login", "--user", "carol", "--password-stdin")
        #expect(wrongStatus == 1 && wrong.contains("[sign-in-failed]"), "\(wrong)")
        let (loginStatus, login) = try epr(input: password + "\n", "login", "--user", "carol", "--password-stdin")
        #expect(loginStatus == 0 && login.contains("signed in as carol"), "\(login)")
        let saved = try String(contentsOf: config, encoding: .utf8)
        #expect(saved.contains("# my settings") && saved.contains("[other]\nkeep = \"me\""), "the rest of the file stays: \(saved)")
        #expect(saved.contains("registry = \"\(server.baseURL)\"") && !saved.contains("old.example"))
        let token = try #require(saved.split(separator: "\n").first { $0.hasPrefix("token = ") }).dropFirst(9).dropLast()
        Fixtures.recordSecret(String(token))
        let mode = try FileManager.default.attributesOfItem(atPath: config.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        let (_, whoami) = try epr("whoami")
        #expect(whoami.contains("carol (publisher)") && whoami.contains("publish-new"), "\(whoami)")

        let (changed, changeOutput) = try epr(input: password + "\n" + newPassword + "\n", "password", "--password-stdin")
        #expect(changed == 0, "\(changeOutput)")
        #expect(try epr(input: password + "\n", "login", "--user", "carol", "--password-stdin", "--print").status == 1)
        let (printed, printOutput) = try epr(input: newPassword + "\n", "login", "--user", "carol", "--password-stdin", "--print")
        #expect(printed == 0 && printOutput.hasPrefix("epr_"))
        Fixtures.recordSecret(printOutput.trimmingCharacters(in: .whitespacesAndNewlines))

        let (outStatus, out) = try epr("logout")
        #expect(outStatus == 0 && out.contains("signed out carol"), "\(out)")
        #expect(try !String(contentsOf: config, encoding: .utf8).contains("token ="))
        let (revokedStatus, revoked) = try epr(token: String(token), "whoami")
        #expect(revokedStatus == 1 && revoked.contains("[unauthenticated]"), "the token is revoked, not only forgotten: \(revoked)")
    }

    /// Organisations and transfers through `epr org` and `epr owner transfer`.
    @Test func organisationsThroughTheCommandLine() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // Ownership is the point here, not review: alice's and bob's uploads are published once checked.
        let server = try ServerProcess(data: directory.appendingPathComponent("data"), environment: ["EPR_AUTO_PUBLISH": "admin,alice,bob"])
        defer { server.stop() }
        func epr(token: String, _ arguments: String...) throws -> (status: Int32, output: String) {
            try Fixtures.run("/usr/bin/env", ["EPR_CONFIG=/nonexistent", "EPR_REGISTRY=\(server.baseURL)", "EPR_TOKEN=\(token)",
                                             Fixtures.eprBinary] + arguments)
        }
        let admin = ServerProcess.token
        var tokens: [String: String] = [:]
        for user in ["alice", "bob"] {
            #expect(try epr(token: admin, "user", "create", user, "--role", "publisher").status == 0)
            let (_, output) = try epr(token: admin, "token", "create", "cli", "--user", user, "--scope", "publish-new", "--scope", "publish-update",
                                      "--scope", "owners")
            tokens[user] = output.split(separator: "\n").map(String.init).first { $0.hasPrefix("epr_") }
            Fixtures.recordSecret(tokens[user] ?? "")
        }
        let alice = try #require(tokens["alice"]), bob = try #require(tokens["bob"])
        let (created, createOutput) = try epr(token: admin, "org", "create", "xdp", "--admin", "alice", "--description", "XDP programs")
        #expect(created == 0, "\(createOutput)")
        let first = try Fixtures.packageArchive("xdp-port-filter", version: "1.0.0", into: directory)
        let (refused, refusal) = try epr(token: bob, "publish", first)
        #expect(refused == 1 && refusal.contains("namespace of the organisation xdp"), "\(refusal)")
        #expect(try epr(token: alice, "publish", first).status == 0)
        #expect(try epr(token: alice, "org", "add", "xdp", "bob").status == 0)
        #expect(try epr(token: bob, "publish", try Fixtures.packageArchive("xdp-port-filter", version: "1.1.0", into: directory)).status == 0)
        let (_, shown) = try epr(token: bob, "org", "show", "xdp")
        #expect(shown.contains("member alice (admin)") && shown.contains("member bob (member)") && shown.contains("package xdp-port-filter"), "\(shown)")
        let (_, owners) = try epr(token: bob, "owner", "list", "xdp-port-filter")
        #expect(owners.contains("organisation xdp"), "\(owners)")

        #expect(try epr(token: bob, "publish", try Fixtures.packageArchive("exec-tracker", version: "1.0.0", into: directory)).status == 0)
        let (offered, offer) = try epr(token: bob, "owner", "transfer", "exec-tracker", "alice")
        #expect(offered == 0 && offer.contains("offered exec-tracker to alice"), "\(offer)")
        #expect(try epr(token: alice, "owner", "accept", "exec-tracker").status == 0)
        let (_, after) = try epr(token: alice, "owner", "list", "exec-tracker")
        #expect(after.split(separator: "\n").map(String.init) == ["alice"], "\(after)")
    }
}
