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
}
