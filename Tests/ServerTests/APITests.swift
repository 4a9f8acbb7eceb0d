import Foundation
import HTTPTypes
import HummingbirdTesting
import Logging
import NIOCore
import TestSupport
import Registry
import Server
import Testing

/// Search, metadata, the generated L3AFD config entry, and the operational endpoints.
@Suite struct APITests {
    @Test func searchPaginatesAndMatchesKeywords() async throws {
        let registry = try await TestRegistry.make()
        let archives = try Fixtures.examplePackages.map { try registry.archive($0) }
        try await registry.run { client in
            for archive in archives { #expect(try await client.publish(archive).status == .created) }
            struct Page: Decodable { struct Item: Decodable { var name: String; var latest: String? }; var items: [Item]; var total: Int }
            let all = try await client.get("/api/v1/packages?per_page=2").json(Page.self)
            #expect(all.total == 4)
            #expect(all.items.map(\.name) == ["exec-tracker", "tc-egress-marker"])
            let second = try await client.get("/api/v1/packages?per_page=2&page=2").json(Page.self)
            #expect(second.items.map(\.name) == ["xdp-port-filter", "xdp-proto-counter"])
            let xdp = try await client.get("/api/v1/packages?q=xdp").json(Page.self)
            #expect(Set(xdp.items.map(\.name)) == ["xdp-port-filter", "xdp-proto-counter"])
            let keyword = try await client.get("/api/v1/packages?q=ringbuf").json(Page.self)
            #expect(keyword.items.map(\.name) == ["exec-tracker"])
            #expect(keyword.items.first?.latest == "1.0.0")
            let tooLong = try await client.get("/api/v1/packages?q=" + String(repeating: "x", count: 201))
            #expect(tooLong.problemCode == "invalid-query")
            let farPage = try await client.get("/api/v1/packages?page=9223372036854775807")
            #expect(farPage.problemCode == "invalid-page")
            #expect(try await client.get("/api/v1/packages?page=100000").json(Page.self).items.isEmpty)
        }
    }

    @Test func versionMetadataCarriesManifestAndReport() async throws {
        let registry = try await TestRegistry.make()
        let archive = try registry.archive("xdp-port-filter")
        try await registry.run { client in
            #expect(try await client.publish(archive).status == .created)
            struct Detail: Decodable {
                struct Manifest: Decodable { var name: String; var platforms: [String] }
                struct Report: Decodable { struct Object: Decodable { var path: String }; var objects: [Object]; var sha256: String }
                var manifest: Manifest
                var report: Report
                var sha256: String
                var publisher: String
            }
            let detail = try await client.get("/api/v1/packages/xdp-port-filter/versions/1.0.0").json(Detail.self)
            #expect(detail.manifest.name == "xdp-port-filter")
            #expect(detail.report.objects.map(\.path) == ["port_filter.bpf.o"])
            #expect(detail.report.sha256 == detail.sha256)
            #expect(detail.publisher == "admin")
            #expect(try await client.get("/api/v1/packages/xdp-port-filter/versions/latest").json(VersionBody.self).version == "1.0.0")
            #expect(try await client.get("/api/v1/packages/xdp-port-filter/versions/latest?platform=jammy").status == .ok)
            #expect(try await client.get("/api/v1/packages/xdp-port-filter/versions/latest?platform=focal").problemCode == "no-published-version")
        }
    }

    @Test func l3afdConfigEntry() async throws {
        let registry = try await TestRegistry.make()
        let archive = try registry.archive("xdp-port-filter")
        try await registry.run { client in
            #expect(try await client.publish(archive).status == .created)
            struct Entry: Decodable {
                struct Program: Decodable {
                    struct MapArg: Decodable { struct KV: Decodable { var key: Int; var value: Int }; var name: String; var args: [KV] }
                    var name: String, artifact: String, map_name: String, version: String, prog_type: String
                    var object_file: String, entry_function_name: String, ebpf_package_repo_url: String, admin_status: String
                    var map_args: [MapArg]
                }
                var section: String
                var bpf_program: Program
            }
            let entry = try await client.get("/api/v1/packages/xdp-port-filter/versions/latest/l3afd-config?repo_url=http://node-agent:8181")
                .json(Entry.self)
            #expect(entry.section == "xdp_ingress")
            let program = entry.bpf_program
            #expect(program.name == "xdp-port-filter")
            #expect(program.artifact == "xdp_port_filter.tar.gz")
            #expect(program.map_name == "xdp_pf_next_prog")
            #expect(program.version == "latest")
            #expect(program.prog_type == "xdp")
            #expect(program.object_file == "port_filter.bpf.o")
            #expect(program.entry_function_name == "xdp_port_filter")
            #expect(program.ebpf_package_repo_url == "http://node-agent:8181")
            #expect(program.map_args.first?.name == "pf_blocked_ports")
            #expect(program.map_args.first?.args.map(\.key) == [23, 69])
        }
    }

    @Test func operationalEndpoints() async throws {
        let registry = try await TestRegistry.make()
        try await registry.run { client in
            #expect(String(buffer: try await client.get("/healthz").body) == "ok\n")
            #expect(try await client.get("/readyz").status == .ok)
            _ = try await client.get("/api/v1/packages/nothing")
            let metrics = String(buffer: try await client.get("/metrics").body)
            #expect(metrics.contains("epr_http_requests_total{method=\"GET\",status=\"404\"}"))
            #expect(metrics.contains("epr_http_request_duration_seconds_bucket"))
            let openapi = try await client.get("/openapi.json")
            let document = try JSONSerialization.jsonObject(with: Data(buffer: openapi.body)) as? [String: Any]
            #expect(document?["openapi"] as? String == "3.1.0")
            let paths = (document?["paths"] as? [String: Any]).map { Set($0.keys) } ?? []
            #expect(paths.isSuperset(of: ["/api/v1/packages", "/{name}/{version}/{platform}/{artifact}", "/api/v1/blobs/{digest}"]))
        }
    }

    @Test func anAdminTokenWithoutThePrefixIsRefused() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var configuration = ServerConfiguration()
        configuration.dataDirectory = directory.appendingPathComponent("data").path
        for token in ["secret", "epr_short", "epr_ with a space in it, long enough to pass the length"] {
            await #expect(throws: (any Error).self) {
                _ = try await RegistryServer.build(configuration: configuration, environment: ["EPR_ADMIN_TOKEN": token], logger: Logger(label: "test"))
            }
        }
    }

    @Test func firstStartCreatesTheAdmin() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        var configuration = Server.ServerConfiguration()
        configuration.dataDirectory = directory.path
        let first = try await Server.RegistryServer.build(configuration: configuration, environment: [:], logger: .init(label: "test"))
        let token = try #require(first.generatedAdminToken)
        #expect(token.hasPrefix("epr_") && token.count == 47)
        let file = directory.appendingPathComponent("admin-token").path
        #expect(try String(contentsOfFile: file, encoding: .utf8) == token + "\n")
        let mode = try FileManager.default.attributesOfItem(atPath: file)[.posixPermissions] as? Int
        #expect(mode == 0o600)
        #expect(try await first.registry.principal(forToken: token).role == .admin)
        #expect(!FileManager.default.fileExists(atPath: file), "once the admin has used its token, the file is gone")
        #expect(try await first.registry.principal(forToken: token).role == .admin, "the token goes on working")
        let locked = await #expect(throws: (any Error).self) {
            _ = try await Server.RegistryServer.build(configuration: configuration, environment: [:], logger: .init(label: "test"))
        }
        #expect("\(locked.map { "\($0)" } ?? "")".contains("in use by another epr server"))
        try await first.shutdown()
        let second = try await Server.RegistryServer.build(configuration: configuration, environment: [:], logger: .init(label: "test"))
        #expect(second.generatedAdminToken == nil, "the admin is created once")
        try await second.shutdown()
    }
}
