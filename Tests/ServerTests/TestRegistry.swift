import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import Server
import TestSupport

/// A registry server on a fresh data directory, for in-process API tests.
struct TestRegistry {
    static let token = "epr_test_admin_token_for_the_suite_0123456789"
    let directory: URL
    let server: RegistryServer

    static func make(configure: (inout ServerConfiguration) -> Void = { _ in }) async throws -> TestRegistry {
        let directory = try Fixtures.temporaryDirectory()
        var configuration = ServerConfiguration()
        configuration.dataDirectory = directory.appendingPathComponent("data").path
        configuration.port = 0
        // The admin's uploads are published once checked, so tests of other things need no
        // reviewer; the kernel verifier and the sources check have tests of their own.
        configuration.autoPublish = ["admin"]
        configuration.verifier = false
        configuration.sourcesCheck = false
        configure(&configuration)
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        let server = try await RegistryServer.build(configuration: configuration, environment: ["EPR_ADMIN_TOKEN": token], logger: logger)
        return TestRegistry(directory: directory, server: server)
    }

    /// Runs `body` against the router (or, with `.live`, a real server on a loopback port with
    /// its whole connection pipeline), then closes the store and removes the directory.
    func run(_ framework: TestingSetup = .router, _ body: @Sendable (any TestClientProtocol) async throws -> Void) async throws {
        do {
            try await server.application.test(framework, body)
        } catch {
            await close()
            throw error
        }
        await close()
    }

    func close() async {
        try? await server.shutdown()
        try? FileManager.default.removeItem(at: directory)
    }

    var dataDirectory: URL { directory.appendingPathComponent("data") }

    /// Builds an example package (optionally as another version) for uploading.
    func archive(_ example: String, version: String? = nil) throws -> ByteBuffer {
        let path = try Fixtures.packageArchive(example, version: version, into: directory)
        return ByteBuffer(bytes: try Data(contentsOf: URL(fileURLWithPath: path)))
    }
}

extension TestClientProtocol {
    func publish(_ archive: ByteBuffer, token: String? = TestRegistry.token, contentType: String = "application/gzip") async throws -> TestResponse {
        var headers: HTTPFields = [.contentType: contentType, HTTPField.Name("Prefer")!: "wait=60"]
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await execute(uri: "/api/v1/packages", method: .post, headers: headers, body: archive)
    }

    func get(_ uri: String, headers: HTTPFields = [:]) async throws -> TestResponse {
        try await execute(uri: uri, method: .get, headers: headers)
    }
}

extension TestResponse {
    /// The problem document's code, for error responses.
    var problemCode: String? {
        guard headers[.contentType] == "application/problem+json" else { return nil }
        struct Body: Decodable { var code: String }
        return try? JSONDecoder().decode(Body.self, from: Data(buffer: body)).code
    }

    func json<T: Decodable>(_ type: T.Type) throws -> T {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return try decoder.decode(type, from: Data(buffer: body))
    }
}
