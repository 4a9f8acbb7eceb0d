import Foundation
import NIOConcurrencyHelpers
import PackageFormat
import TestSupport
import Testing

/// The real server binary, as L3AFD, the CLI and many clients at once use it.
@Suite(.serialized) struct RegistryEndToEndTests {
    /// Package, publish with the CLI, fetch exactly as L3AFD does, extract as L3AFD does, and
    /// load the object it names into the kernel verifier.
    @Test func l3afdFetchesAndTheKernelLoads() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try ServerProcess(data: directory.appendingPathComponent("data"))
        defer { server.stop() }
        let archive = try Fixtures.packageArchive("xdp-port-filter", into: directory)
        let environment = ["EPR_REGISTRY": server.baseURL, "EPR_TOKEN": ServerProcess.token]
        let (status, output) = try Fixtures.run("/usr/bin/env", environment.map { "\($0)=\($1)" } + [Fixtures.eprBinary, "publish", archive])
        try #require(status == 0, "\(output)")
        #expect(output.contains("published xdp-port-filter@1.0.0"))

        // L3AFD: url.JoinPath(repo, name, version, platform, artifact), a plain GET.
        let download = try await server.get("/xdp-port-filter/latest/bookworm/xdp_port_filter.tar.gz")
        try #require(download.status == 200)
        #expect(download.body == Array(try Data(contentsOf: URL(fileURLWithPath: archive))))

        // L3AFD extracts to <bpf-dir>/<name>/<version>/ and loads <artifact base>/<object_file>.
        let bpfDirectory = directory.appendingPathComponent("bpf/xdp-port-filter/latest")
        try FileManager.default.createDirectory(at: bpfDirectory, withIntermediateDirectories: true)
        let fetched = directory.appendingPathComponent("xdp_port_filter.tar.gz")
        try Data(download.body).write(to: fetched)
        let (tarStatus, tarOutput) = try Fixtures.run("/bin/tar", ["-xzf", fetched.path, "-C", bpfDirectory.path])
        try #require(tarStatus == 0, "\(tarOutput)")
        let object = bpfDirectory.appendingPathComponent("xdp_port_filter/port_filter.bpf.o")
        #expect(FileManager.default.fileExists(atPath: object.path))

        let bpftool = try #require(Fixtures.tool("bpftool"), "bpftool is not installed")
        let pins = "/sys/fs/bpf/epr-e2e-\(getpid())"
        defer {
            try? FileManager.default.removeItem(atPath: pins)
            try? FileManager.default.removeItem(atPath: "/sys/fs/bpf/xdp_pf_next_prog")
        }
        let (loadStatus, loadOutput) = try Fixtures.run(bpftool, ["prog", "loadall", object.path, pins])
        #expect(loadStatus == 0, "the kernel verifier refused the downloaded object: \(loadOutput)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: pins) == ["xdp_port_filter"])
    }

    @Test func fiftyPublishersOfOneVersion() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try ServerProcess(data: directory.appendingPathComponent("data"))
        defer { server.stop() }
        let archive = Array(try Data(contentsOf: URL(fileURLWithPath: try Fixtures.packageArchive("exec-tracker", into: directory))))
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for _ in 0..<50 { group.addTask { try await server.publish(archive).status } }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(statuses.filter { $0 == 201 }.count == 1)
        #expect(statuses.filter { $0 == 409 }.count == 49)
        // One archive stored, and nothing but it and its OCI artifacts' blobs.
        let expected = try await Self.expectedBlobs(server, package: "exec-tracker", versions: ["1.0.0"])
        let blobs = try Self.blobFiles(server.data)
        #expect(blobs.filter { $0 == SHA256Digest(of: archive).hex }.count == 1)
        #expect(Set(blobs) == expected)
        #expect(try FileManager.default.contentsOfDirectory(atPath: server.data.appendingPathComponent("tmp").path).isEmpty)
    }

    @Test func fiftyVersionsAtOnce() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try ServerProcess(data: directory.appendingPathComponent("data"))
        defer { server.stop() }
        let versions = (0..<50).map { "1.\($0 % 7).\($0)" }
        var archives: [[UInt8]] = []
        for version in versions {
            archives.append(Array(try Data(contentsOf: URL(fileURLWithPath: try Fixtures.packageArchive("exec-tracker", version: version, into: directory)))))
        }
        let statuses = try await withThrowingTaskGroup(of: Int.self) { group in
            for archive in archives { group.addTask { try await server.publish(archive).status } }
            return try await group.reduce(into: [Int]()) { $0.append($1) }
        }
        #expect(statuses == Array(repeating: 201, count: 50))
        struct Version: Decodable { var version: String }
        let listed = try JSONDecoder().decode([Version].self, from: Data(try await server.get("/api/v1/packages/exec-tracker/versions").body))
        let expected = try versions.map { try SemanticVersion($0) }.sorted(by: >).map(\.description)
        #expect(listed.map(\.version) == expected)
        let expectedBlobs = try await Self.expectedBlobs(server, package: "exec-tracker", versions: versions)
        #expect(Set(try Self.blobFiles(server.data)) == expectedBlobs)
    }

    /// Kill the server with SIGKILL while many uploads are in flight, restart it: every version
    /// acknowledged with 201 downloads with its digest, nothing half-published is visible, and
    /// the spooled uploads are swept.
    @Test func crashDuringUploads() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try ServerProcess(data: directory.appendingPathComponent("data"))
        defer { server.stop() }
        var archives: [(version: String, bytes: [UInt8])] = []
        for index in 0..<40 {
            let version = "2.0.\(index)"
            archives.append((version, Array(try Data(contentsOf: URL(fileURLWithPath: try Fixtures.packageArchive("exec-tracker", version: version, into: directory))))))
        }
        let acknowledged = try await withThrowingTaskGroup(of: (String, String)?.self) { group in
            for (index, archive) in archives.enumerated() {
                group.addTask {
                    try await Task.sleep(for: .milliseconds(index * 15))
                    guard let result = try? await server.publish(archive.bytes), result.status == 201 else { return nil }
                    return (archive.version, SHA256Digest(of: archive.bytes).description)
                }
            }
            group.addTask {
                try await Task.sleep(for: .milliseconds(250))
                server.kill(signal: SIGKILL)
                return nil
            }
            return try await group.reduce(into: [String: String]()) { result, pair in if let pair { result[pair.0] = pair.1 } }
        }
        #expect(acknowledged.count < archives.count, "the kill came before every upload finished")

        try server.start()
        #expect(try FileManager.default.contentsOfDirectory(atPath: server.data.appendingPathComponent("tmp").path).isEmpty,
                "spooled uploads are swept on restart")
        // Submissions stored before the kill whose answers never went out finish their checks
        // and are published (the admin auto-publishes).
        try await server.waitForChecks()
        struct Version: Decodable { var version: String; var sha256: String }
        let listing = try await server.get("/api/v1/packages/exec-tracker/versions")
        let listed = listing.status == 200 ? try JSONDecoder().decode([Version].self, from: Data(listing.body)) : []
        for (version, digest) in acknowledged {
            let download = try await server.get("/api/v1/packages/exec-tracker/versions/\(version)/download")
            #expect(download.status == 200, "acknowledged version \(version) is missing")
            #expect(SHA256Digest(of: download.body).description == digest)
        }
        // Whatever else is visible is whole: its blob exists and matches its digest.
        for version in listed {
            let download = try await server.get("/api/v1/packages/exec-tracker/versions/\(version.version)/download")
            #expect(SHA256Digest(of: download.body).description == version.sha256)
        }
        let expected = try await Self.expectedBlobs(server, package: "exec-tracker", versions: listed.map(\.version))
        #expect(Set(try Self.blobFiles(server.data)) == expected, "no orphan blobs after the sweep")
    }

    static func blobFiles(_ data: URL) throws -> [String] {
        let root = data.appendingPathComponent("blobs/sha256")
        return try FileManager.default.contentsOfDirectory(atPath: root.path).flatMap { prefix in
            try FileManager.default.contentsOfDirectory(atPath: root.appendingPathComponent(prefix).path)
        }
    }
}

/// SIGTERM lets in-flight requests finish.
@Suite(.serialized) struct GracefulShutdownTests {
    @Test func anUploadInFlightFinishesAfterSIGTERM() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try ServerProcess(data: directory.appendingPathComponent("data"))
        defer { server.stop() }
        let archive = Array(try Data(contentsOf: URL(fileURLWithPath: try Fixtures.packageArchive("exec-tracker", into: directory))))
        let sent = NIOLockedValueBox(0)
        async let status = server.publishSlowly(archive, pieces: 20, pause: .milliseconds(100), sent: sent)
        // Signal once the body is flowing: the request is then in flight on the server.
        while sent.withLockedValue({ $0 }) < 4 { try await Task.sleep(for: .milliseconds(20)) }
        kill(server.process.processIdentifier, SIGTERM)
        let answer: Result<Int, any Error>
        do { answer = .success(try await status) } catch { answer = .failure(error) }
        #expect((try? answer.get()) == 201, "the upload that was in flight completed: \(answer)\n\(server.logText)")
        server.process.waitUntilExit()
        #expect(server.process.terminationStatus == 0)
        #expect(server.logText.contains("\"stopped\""))
    }
}

extension RegistryEndToEndTests {
    /// The blobs the repository should hold for these versions of a package: each archive, and
    /// every blob its OCI artifacts use (made in the background after publication, so waited
    /// for), found by walking the image, its index entries and its referrers.
    static func expectedBlobs(_ server: ServerProcess, package: String, versions: [String]) async throws -> Set<String> {
        var blobs: Set<String> = []
        var seen: Set<String> = []
        func walk(_ manifest: [UInt8], digest: String) async throws {
            guard seen.insert(digest).inserted else { return }
            let document = try #require(try JSONSerialization.jsonObject(with: Data(manifest)) as? [String: Any])
            for descriptor in [document["config"] as? [String: Any]].compactMap({ $0 }) + ((document["layers"] as? [[String: Any]]) ?? []) {
                if let value = descriptor["digest"] as? String { blobs.insert(String(value.dropFirst(7))) }
            }
            for child in (document["manifests"] as? [[String: Any]]) ?? [] {
                let value = try #require(child["digest"] as? String)
                try await walk(try await server.get("/v2/\(package)/manifests/\(value)").body, digest: value)
            }
            let referrers = try await server.get("/v2/\(package)/referrers/\(digest)")
            let index = try #require(try JSONSerialization.jsonObject(with: Data(referrers.body)) as? [String: Any])
            for referrer in (index["manifests"] as? [[String: Any]]) ?? [] {
                let value = try #require(referrer["digest"] as? String)
                try await walk(try await server.get("/v2/\(package)/manifests/\(value)").body, digest: value)
            }
        }
        for version in versions {
            let image = try await OCIEndToEndTests.waitForManifest(server, "/v2/\(package)/manifests/\(version.replacingOccurrences(of: "+", with: "_"))")
            try await walk(image.body, digest: try #require(image.headers["docker-content-digest"]))
        }
        return blobs
    }
}
