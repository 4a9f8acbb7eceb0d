import Foundation
import TestSupport
import Testing

/// `epr serve` needs no privilege and does not run as root: started as root it refuses, unless
/// told to switch to a user (and then the data directory is that user's) or allowed root.
/// Secrets given in its environment are gone from it once read.
@Suite struct ServerPrivilegeTests {
    /// The real, effective, saved and file-system user ids of every thread of a process.
    static func uids(of pid: Int32) -> [[String]] {
        let threads = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task")) ?? []
        return threads.map { thread in
            let status = (try? String(contentsOfFile: "/proc/\(pid)/task/\(thread)/status", encoding: .utf8)) ?? ""
            return status.split(separator: "\n").first { $0.hasPrefix("Uid:") }?.split(separator: "\t").dropFirst().map(String.init) ?? []
        }
    }

    @Test func rootIsRefusedUnlessTold() async throws {
        try #require(getuid() == 0, "the suite runs as root (scripts/test.sh), so that running as root can be refused")
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let data = directory.appendingPathComponent("data")
        let (status, output) = try Fixtures.run("/usr/bin/env", ["EPR_USER=", "EPR_ALLOW_ROOT=", Fixtures.eprBinary, "serve", "--data", data.path, "--port", "0"])
        #expect(status != 0 && output.contains("does not run as root") && output.contains("--user"), "\(output)")
        #expect(!FileManager.default.fileExists(atPath: data.path), "nothing was made before the refusal")

        // Told to switch: every thread of the process runs as nobody, and its data directory is
        // nobody's.
        let user = try #require(Fixtures.serverUser)
        let server = try ServerProcess(data: data, arguments: ["--user", "nobody"], asRoot: true)
        defer { server.stop() }
        let threads = Self.uids(of: server.process.processIdentifier)
        #expect(threads.count > 1 && threads.allSatisfy { $0 == Array(repeating: String(user.uid), count: 4) }, "\(threads)")
        var info = stat()
        #expect(stat(data.appendingPathComponent("epr.sqlite").path, &info) == 0 && info.st_uid == user.uid && info.st_mode & 0o077 == 0)
        #expect(stat(data.path, &info) == 0 && info.st_uid == user.uid && info.st_mode & 0o777 == 0o700)
        #expect(try await server.get("/api/v1/packages").status == 200)
    }

    @Test func secretsLeaveTheEnvironment() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try ServerProcess(data: directory.appendingPathComponent("data"),
                                       environment: ["EPR_OIDC_EXAMPLE_CLIENT_SECRET": "client-secret-in-the-environment"])
        defer { server.stop() }
        let environ = try Data(contentsOf: URL(fileURLWithPath: "/proc/\(server.process.processIdentifier)/environ"))
        let text = String(decoding: environ, as: UTF8.self)
        #expect(text.contains("EPR_PUBLISHES_PER_HOUR=0"), "the rest of the environment is still there")
        #expect(!text.contains(ServerProcess.token) && !text.contains("client-secret-in-the-environment"))
    }
}
