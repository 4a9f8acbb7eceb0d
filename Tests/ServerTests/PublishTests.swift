import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
import PackageFormat
import TestSupport
import RegistryAPI
import Testing

struct VersionBody: Decodable, Equatable {
    var name: String
    var version: String
    var artifact: String
    var sha256: String
    var size: Int64
    var yanked: Bool
    var deprecated: String?
}

/// Publishing through the REST API, and everything it refuses.
@Suite struct PublishTests {
    @Test func publishThenConflict() async throws {
        let registry = try await TestRegistry.make()
        let archive = try registry.archive("xdp-port-filter")
        try await registry.run { client in
            let created = try await client.publish(archive)
            #expect(created.status == .created)
            let body = try created.json(SubmissionDetail.self).submission
            #expect(created.headers[.location] == "/api/v1/submissions/\(body.id)")
            #expect(body.sha256 == SHA256Digest(of: archive.readableBytesView).description)
            #expect(body.size == Int64(archive.readableBytes))
            #expect(body.state == "published", "the admin auto-publishes once checked")

            let again = try await client.publish(archive)
            #expect(again.status == .conflict)
            #expect(again.problemCode == "version-exists")

            let listed = try await client.get("/api/v1/packages/xdp-port-filter/versions").json([VersionBody].self)
            #expect(listed.map(\.version) == ["1.0.0"])
        }
    }

    @Test func authenticationIsRequiredToPublish() async throws {
        let registry = try await TestRegistry.make()
        let archive = try registry.archive("xdp-port-filter")
        try await registry.run { client in
            let anonymous = try await client.publish(archive, token: nil)
            #expect(anonymous.status == .unauthorized)
            #expect(anonymous.problemCode == "unauthenticated")
            #expect(anonymous.headers[.wwwAuthenticate] == "Bearer realm=\"epr\"")
            let wrong = try await client.publish(archive, token: "epr_not_a_real_token")
            #expect(wrong.status == .unauthorized)
            #expect(try await client.get("/api/v1/packages/xdp-port-filter").status == .notFound)
        }
    }

    @Test func badUploadsAreRefusedAndNothingIsStored() async throws {
        let registry = try await TestRegistry.make { $0.maxUploadSize = 20_000 }
        let good = try registry.archive("xdp-port-filter")
        let large = try registry.archive("exec-tracker")
        let spool = registry.dataDirectory.appendingPathComponent("tmp").path
        let blobs = registry.dataDirectory.appendingPathComponent("blobs/sha256").path
        try await registry.run { client in
            let wrongType = try await client.publish(good, contentType: "application/json")
            #expect(wrongType.status == .unsupportedMediaType)
            #expect(wrongType.problemCode == "unsupported-media-type")

            let tooLarge = try await client.publish(large)
            #expect(large.readableBytes > 20_000)
            #expect(tooLarge.status == .contentTooLarge)
            #expect(tooLarge.problemCode == "body-too-large")

            let garbage = try await client.publish(ByteBuffer(string: "this is not a package"))
            #expect(garbage.status == .unprocessableContent)
            #expect(garbage.problemCode == "archive-not-gzip")

            var truncated = good
            truncated.moveWriterIndex(to: good.readableBytes / 2)
            let cut = try await client.publish(truncated)
            #expect(cut.status == .unprocessableContent)
            #expect(cut.problemCode == "archive-truncated")

            #expect(try await client.get("/api/v1/packages?q=").json(PageCount.self).total == 0)
            #expect(try FileManager.default.contentsOfDirectory(atPath: spool).isEmpty, "refused uploads leave no file")
            #expect(try FileManager.default.contentsOfDirectory(atPath: blobs).isEmpty, "refused uploads store no blob")
        }
    }

    @Test func invalidPackagesGetTheirFindings() async throws {
        let registry = try await TestRegistry.make()
        // A package whose manifest names an entry function the object does not have.
        let directory = registry.directory.appendingPathComponent("broken")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let source = Fixtures.examples.appendingPathComponent("xdp-port-filter")
        for file in ["README.md", "LICENSE", "port_filter.bpf.o"] {
            try FileManager.default.copyItem(at: source.appendingPathComponent(file), to: directory.appendingPathComponent(file))
        }
        var manifest = try String(contentsOf: source.appendingPathComponent("epr.toml"), encoding: .utf8)
        // Without its sources, the package says nothing of how it is built.
        if let build = manifest.range(of: "\n# `epr build`") { manifest = String(manifest[..<build.lowerBound]) + "\n" }
        manifest = manifest
            .replacingOccurrences(of: "entry = \"xdp_port_filter\"", with: "entry = \"no_such_function\"")
            .replacingOccurrences(of: "sources = [\"src/*.bpf.c\", \"build.sh\"]", with: "")
        try manifest.write(to: directory.appendingPathComponent("epr.toml"), atomically: true, encoding: .utf8)
        let files = ["epr.toml", "README.md", "LICENSE", "port_filter.bpf.o"].map {
            ArchiveWriter.File(path: $0, source: directory.appendingPathComponent($0).path, executable: false)
        }
        let path = registry.directory.appendingPathComponent("xdp_port_filter.tar.gz").path
        _ = try ArchiveWriter(topLevel: "xdp_port_filter", modificationTime: 0).write(files, to: path)
        let archive = ByteBuffer(bytes: try Data(contentsOf: URL(fileURLWithPath: path)))
        try await registry.run { client in
            let response = try await client.publish(archive)
            #expect(response.status == .unprocessableContent)
            #expect(response.problemCode == "invalid-package")
            struct Problem: Decodable { var findings: [Finding] }
            let problem = try response.json(Problem.self)
            #expect(problem.findings.contains { $0.check == "manifest.entry-missing" })
        }
    }
}

struct PageCount: Decodable { var total: Int }

@Suite struct ReservedNameTests {
    /// A package named like one of the server's own paths could never be fetched by L3AFD.
    @Test func namesOfTheServersOwnPathsAreRefused() async throws {
        let registry = try await TestRegistry.make()
        let source = Fixtures.examples.appendingPathComponent("xdp-port-filter")
        let copy = registry.directory.appendingPathComponent("metrics")
        try FileManager.default.copyItem(at: source, to: copy)
        let manifest = copy.appendingPathComponent("epr.toml")
        try String(contentsOf: manifest, encoding: .utf8).replacingOccurrences(of: "name = \"xdp-port-filter\"", with: "name = \"metrics\"")
            .write(to: manifest, atomically: true, encoding: .utf8)
        let output = registry.directory.appendingPathComponent("out")
        try FileManager.default.createDirectory(at: output, withIntermediateDirectories: true)
        let built = try PackageBuilder().build(directory: copy, output: output, modificationTime: 0)
        let archive = ByteBuffer(bytes: try Data(contentsOf: URL(fileURLWithPath: built.path)))
        try await registry.run { client in
            let response = try await client.publish(archive)
            #expect(response.status == .badRequest)
            #expect(response.problemCode == "invalid-name")
        }
    }
}
