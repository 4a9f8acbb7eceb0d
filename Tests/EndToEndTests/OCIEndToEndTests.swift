import Foundation
import PackageFormat
import TestSupport
import Testing

/// The OCI distribution API of the real server binary, used by independent clients: a pull as
/// bpfman makes it into the kernel verifier, skopeo both ways, the `oras` package, a signature
/// check with Python's `cryptography`, and the conformance script over every endpoint.
@Suite(.serialized) struct OCIEndToEndTests {
    /// Publishes xdp-port-filter and waits until its OCI image is there; returns its manifest.
    static func published(_ server: ServerProcess, in directory: URL, example: String = "xdp-port-filter",
                          version: String = "1.0.0") async throws -> (digest: String, manifest: [String: Any]) {
        let archive = Array(try Data(contentsOf: URL(fileURLWithPath: try Fixtures.packageArchive(example, version: version, into: directory))))
        let published = try await server.publish(archive)
        try #require(published.status == 201, "\(published.body)")
        let response = try await waitForManifest(server, "/v2/\(example)/manifests/\(version)")
        let manifest = try #require(try JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any])
        return (try #require(response.headers["docker-content-digest"]), manifest)
    }

    /// OCI artifacts are made in the background after publication: wait for the manifest.
    static func waitForManifest(_ server: ServerProcess, _ path: String) async throws -> (status: Int, body: [UInt8], headers: [String: String]) {
        let deadline = ContinuousClock.now + .seconds(60)
        while true {
            let response = try await server.get(path)
            if response.status == 200 || ContinuousClock.now > deadline {
                try #require(response.status == 200, "\(path): \(response.status) \(String(decoding: response.body, as: UTF8.self))")
                return response
            }
            try await Task.sleep(for: .milliseconds(100))
        }
    }

    static func python(_ script: String, _ arguments: [String]) throws -> (status: Int32, output: String) {
        try Fixtures.run("/usr/bin/env", ["python3", Fixtures.root.appendingPathComponent("scripts/\(script)").path] + arguments)
    }

    /// bpfman's pull: manifest, config labels, the single gzip layer, the `.o` at its root, and
    /// the kernel verifier loads it.
    @Test func bpfmanPullLoadsIntoTheKernel() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try ServerProcess(data: directory.appendingPathComponent("data"))
        defer { server.stop() }
        let (_, manifest) = try await Self.published(server, in: directory)
        // latest is the same image as the version's tag.
        let latest = try await server.get("/v2/xdp-port-filter/manifests/latest")
        #expect(try JSONSerialization.jsonObject(with: Data(latest.body)) as? NSDictionary == manifest as NSDictionary)

        let config = try #require(manifest["config"] as? [String: Any])
        #expect(config["mediaType"] as? String == "application/vnd.oci.image.config.v1+json")
        let configBlob = try await server.get("/v2/xdp-port-filter/blobs/\(try #require(config["digest"] as? String))")
        let configJSON = try #require(try JSONSerialization.jsonObject(with: Data(configBlob.body)) as? [String: Any])
        let labels = try #require((configJSON["config"] as? [String: Any])?["Labels"] as? [String: String])
        let programs = try JSONSerialization.jsonObject(with: Data(try #require(labels["io.ebpf.programs"]).utf8)) as? [String: String]
        #expect(programs == ["xdp_port_filter": "xdp"])
        let maps = try JSONSerialization.jsonObject(with: Data(try #require(labels["io.ebpf.maps"]).utf8)) as? [String: String]
        #expect(maps?["pf_blocked_ports"] == "hash")
        #expect(maps?["xdp_pf_next_prog"] == "prog_array")

        let layers = try #require(manifest["layers"] as? [[String: Any]])
        try #require(layers.count == 1)
        #expect(layers[0]["mediaType"] as? String == "application/vnd.oci.image.layer.v1.tar+gzip")
        let layerDigest = try #require(layers[0]["digest"] as? String)
        let layer = try await server.get("/v2/xdp-port-filter/blobs/\(layerDigest)")
        #expect(SHA256Digest(of: layer.body).description == layerDigest)
        let extracted = directory.appendingPathComponent("image")
        try FileManager.default.createDirectory(at: extracted, withIntermediateDirectories: true)
        try Data(layer.body).write(to: directory.appendingPathComponent("layer.tar.gz"))
        let (status, output) = try Fixtures.run("/bin/tar", ["-xzf", directory.appendingPathComponent("layer.tar.gz").path, "-C", extracted.path])
        try #require(status == 0, "\(output)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: extracted.path) == ["port_filter.bpf.o"])
        let object = extracted.appendingPathComponent("port_filter.bpf.o")
        #expect(try Data(contentsOf: object) == Data(try Fixtures.bytes("xdp-port-filter/port_filter.bpf.o")))

        let bpftool = try #require(Fixtures.tool("bpftool"), "bpftool is not installed")
        let pins = "/sys/fs/bpf/epr-oci-\(getpid())"
        defer {
            try? FileManager.default.removeItem(atPath: pins)
            try? FileManager.default.removeItem(atPath: "/sys/fs/bpf/xdp_pf_next_prog")
        }
        let (loadStatus, loadOutput) = try Fixtures.run(bpftool, ["prog", "loadall", object.path, pins])
        #expect(loadStatus == 0, "the kernel verifier refused the pulled object: \(loadOutput)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: pins) == ["xdp_port_filter"])
    }

    /// skopeo copies the image to an OCI layout and back with digests preserved; a push to
    /// another repository becomes a submission, which is published as its own image.
    @Test func skopeoCopiesBothWays() async throws {
        let skopeo = try #require(Fixtures.tool("skopeo"), "skopeo is not installed")
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try ServerProcess(data: directory.appendingPathComponent("data"))
        defer { server.stop() }
        let (digest, _) = try await Self.published(server, in: directory)
        let host = "127.0.0.1:\(server.port)"
        let layout = directory.appendingPathComponent("layout").path
        var (status, output) = try Fixtures.run(skopeo, ["copy", "--src-tls-verify=false", "docker://\(host)/xdp-port-filter:1.0.0", "oci:\(layout):copy"])
        try #require(status == 0, "\(output)")
        let index = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: layout + "/index.json"))) as? [String: Any])
        #expect((index["manifests"] as? [[String: Any]])?.first?["digest"] as? String == digest, "the layout holds the image under its digest")

        (status, output) = try Fixtures.run(skopeo, ["copy", "--preserve-digests", "--dest-tls-verify=false", "--dest-creds", "admin:\(ServerProcess.token)",
                                                     "oci:\(layout):copy", "docker://\(host)/xdp-copy:2.0.0"])
        try #require(status == 0, "\(output)")
        // The pushed manifest keeps its digest, and its pusher reads it back.
        (status, output) = try Fixtures.run(skopeo, ["inspect", "--raw", "--tls-verify=false", "--creds", "admin:\(ServerProcess.token)",
                                                     "docker://\(host)/xdp-copy@\(digest)"])
        #expect(status == 0 && SHA256Digest(of: Array(output.utf8)).description == digest, "\(output)")
        // Anonymous pulls do not see a push under review.
        let hidden = try await server.get("/v2/xdp-copy/manifests/\(digest)")
        #expect(hidden.status == 404)

        struct Page: Decodable { struct Item: Decodable { var name: String; var version: String; var state: String }; var items: [Item] }
        let submissions = try JSONDecoder().decode(Page.self, from: Data(try await server.get("/api/v1/submissions", token: ServerProcess.token).body))
        #expect(submissions.items.contains { $0.name == "xdp-copy" && $0.version == "2.0.0" }, "the push became a submission")
        // The admin auto-publishes: once checked, the version is published with its own image,
        // whose object is the one pushed.
        try await server.waitForChecks()
        let copied = try await Self.waitForManifest(server, "/v2/xdp-copy/manifests/2.0.0")
        let manifest = try #require(try JSONSerialization.jsonObject(with: Data(copied.body)) as? [String: Any])
        let layer = try #require((manifest["layers"] as? [[String: Any]])?.first?["digest"] as? String)
        let original = try await server.get("/v2/xdp-port-filter/manifests/1.0.0")
        let originalLayer = ((try JSONSerialization.jsonObject(with: Data(original.body)) as? [String: Any])?["layers"] as? [[String: Any]])?.first?["digest"] as? String
        let pulledLayer = try await server.get("/v2/xdp-copy/blobs/\(layer)")
        #expect(pulledLayer.status == 200)
        if layer != originalLayer {
            // Made at another time: the tar differs only in modification times; the object is the same.
            let a = directory.appendingPathComponent("a"), b = directory.appendingPathComponent("b")
            for (dir, bytes) in [(a, pulledLayer.body), (b, try await server.get("/v2/xdp-port-filter/blobs/\(try #require(originalLayer))").body)] {
                try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
                try Data(bytes).write(to: dir.appendingPathComponent("layer.tgz"))
                _ = try Fixtures.run("/bin/tar", ["-xzf", dir.appendingPathComponent("layer.tgz").path, "-C", dir.path])
            }
            #expect(try Data(contentsOf: a.appendingPathComponent("port_filter.bpf.o")) == Data(contentsOf: b.appendingPathComponent("port_filter.bpf.o")))
        }
    }

    /// The `oras` package pushes in chunks and pulls; Python's `cryptography` verifies the
    /// repository's signatures against its published key.
    @Test func orasAndSignatureCheckers() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try ServerProcess(data: directory.appendingPathComponent("data"))
        defer { server.stop() }
        _ = try await Self.published(server, in: directory)
        let object = Fixtures.examples.appendingPathComponent("xdp-proto-counter/proto_counter.bpf.o").path
        let (status, output) = try Self.python("oci-clients.py", ["127.0.0.1:\(server.port)", ServerProcess.token, "xdp-port-filter", object, directory.path])
        #expect(status == 0, "\(output)")
        #expect(output.contains("0 failed"), "\(output)")
        // The Gadget-style push went through the checks like an upload, and was published.
        try await server.waitForChecks()
        let published = try await Self.waitForManifest(server, "/v2/oras-gadget/manifests/0.1.0")
        #expect(published.status == 200)
        let version = try await server.get("/api/v1/packages/oras-gadget/versions/0.1.0")
        #expect(String(decoding: version.body, as: UTF8.self).contains("pushed by oras"))
    }

    /// Every endpoint of the specification's table, with its error codes.
    @Test func conformanceScript() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try ServerProcess(data: directory.appendingPathComponent("data"), environment: ["EPR_OCI_DELETE": "true"])
        defer { server.stop() }
        _ = try await Self.published(server, in: directory)
        let (status, output) = try Self.python("oci-conformance.py", [server.baseURL, ServerProcess.token, "xdp-port-filter"])
        #expect(status == 0, "\(output)")
        #expect(output.contains(" 0 failed"), "\(output)")
    }

    /// Without `oci_delete`, deletes are unsupported; the version's artifacts stay.
    @Test func deletesAreOffByDefault() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let server = try ServerProcess(data: directory.appendingPathComponent("data"))
        defer { server.stop() }
        let (digest, _) = try await Self.published(server, in: directory)
        for path in ["/v2/xdp-port-filter/manifests/\(digest)", "/v2/xdp-port-filter/blobs/\(digest)"] {
            let response = try await server.request(path, method: .DELETE, token: ServerProcess.token)
            #expect(response.status == 405, "\(path)")
            #expect(String(decoding: response.body, as: UTF8.self).contains("UNSUPPORTED"))
        }
        #expect(try await server.get("/v2/xdp-port-filter/manifests/\(digest)").status == 200)
    }
}
