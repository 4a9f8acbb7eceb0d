import AsyncHTTPClient
import Foundation
import NIOCore
import NIOConcurrencyHelpers
import NIOFoundationCompat
import NIOHTTP1
import TestSupport

/// The real `epr serve` binary on a free loopback port, with its own data directory.
final class ServerProcess: @unchecked Sendable { // the Process is only touched by the test that owns it
    static let token = "epr_end_to_end_admin_token_0123456789abcdef"
    let data: URL
    private(set) var process: Process
    private(set) var port = 0
    private let log: URL
    let environment: [String: String]
    let arguments: [String]

    /// Started by root itself (`asRoot`): for tests of how the server treats root.
    let asRoot: Bool

    init(data: URL, environment: [String: String] = [:], arguments: [String] = [], asRoot: Bool = false) throws {
        self.data = data
        self.environment = environment
        self.arguments = arguments
        self.asRoot = asRoot
        log = data.deletingLastPathComponent().appendingPathComponent("server-\(UUID().uuidString).log")
        process = Process()
        try start()
    }

    var baseURL: String { (arguments.contains("--tls-certificate") ? "https" : "http") + "://127.0.0.1:\(port)" }

    /// Starts the binary and waits until it logs the port it listens on. When the tests run as
    /// root, the server runs as an unprivileged user, as a production server does: its data
    /// directory, and a trust directory or TLS key it is given, become that user's first.
    func start() throws {
        Fixtures.recordSecret(Self.token)
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let output = try FileHandle(forWritingTo: log)
        process = Process()
        var command = [Fixtures.eprBinary, "serve", "--data", data.path, "--port", "0", "--host", "127.0.0.1"] + arguments
        if let user = Fixtures.serverUser, !asRoot {
            try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
            var owned = [data.path]
            if let trust = environment["EPR_TRUST_DIRECTORY"] { owned.append(trust) }
            if let key = arguments.firstIndex(of: "--tls-key").map({ arguments[$0 + 1] }) { owned.append(key) }
            for path in owned { try Fixtures.giveTree(path, to: user) }
            command = user.prefix + command
        }
        process.executableURL = URL(fileURLWithPath: command[0])
        process.arguments = Array(command.dropFirst())
        // The kernel verifier boots a machine for every package (seconds of processor time
        // each): only the tests of what it finds turn it on (`EPR_VERIFIER=machine`).
        process.environment = ProcessInfo.processInfo.environment.merging(["EPR_ADMIN_TOKEN": Self.token, "EPR_PUBLISHES_PER_HOUR": "0",
                                                                                      "EPR_AUTO_PUBLISH": "admin", "EPR_VERIFIER": "false"]) { $1 }
            .merging(environment) { $1 }
        process.standardError = output
        process.standardOutput = output
        try process.run()
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            guard process.isRunning else { throw Fixtures.FixtureError(description: "epr serve exited: \(logText)") }
            for line in logText.split(separator: "\n") where line.contains("\"listening\"") {
                if let range = line.range(of: #":(\d+)""#, options: .regularExpression) {
                    port = Int(line[range].dropFirst().dropLast()) ?? 0
                    if port > 0 { return }
                }
            }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw Fixtures.FixtureError(description: "epr serve did not start: \(logText)")
    }

    var logText: String { (try? String(contentsOf: log, encoding: .utf8)) ?? "" }

    func kill(signal: Int32) {
        guard process.isRunning else { return }
        Foundation.kill(process.processIdentifier, signal)
        process.waitUntilExit()
        Fixtures.keepLog(log, name: "epr-serve")
    }

    func stop() { kill(signal: SIGTERM) }

    /// Waits until no submission is still being checked.
    func waitForChecks(timeout: Duration = .seconds(180)) async throws {
        struct Page: Decodable { var total: Int }
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let answer = try await get("/api/v1/submissions?state=submitted,checking", token: Self.token)
            if answer.status == 200, try JSONDecoder().decode(Page.self, from: Data(answer.body)).total == 0 { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        throw Fixtures.FixtureError(description: "submissions were still being checked after \(timeout)")
    }

    // MARK: Requests

    func publish(_ archive: [UInt8]) async throws -> (status: Int, body: String) {
        var request = HTTPClientRequest(url: baseURL + "/api/v1/packages")
        request.method = .POST
        request.headers.add(name: "Authorization", value: "Bearer \(Self.token)")
        request.headers.add(name: "Content-Type", value: "application/gzip")
        request.headers.add(name: "Prefer", value: "wait=120")
        request.body = .bytes(ByteBuffer(bytes: archive))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(120))
        let body = try await response.body.collect(upTo: 16 << 20)
        return (Int(response.status.code), String(buffer: body))
    }

    func get(_ path: String, token: String? = nil) async throws -> (status: Int, body: [UInt8], headers: [String: String]) {
        try await request(path, method: .GET, token: token)
    }

    func request(_ path: String, method: HTTPMethod, token: String? = nil) async throws -> (status: Int, body: [UInt8], headers: [String: String]) {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(60))
        let body = try await response.body.collect(upTo: 64 << 20)
        var headers: [String: String] = [:]
        for header in response.headers { headers[header.name.lowercased()] = header.value }
        return (Int(response.status.code), Array(body.readableBytesView), headers)
    }
}

extension ServerProcess {
    /// Publishes in `pieces`, pausing between them, so the request stays in flight a while:
    /// over a plain connection, from a thread of its own, so that nothing else the tests do
    /// holds it up. `sent` counts the pieces sent. The answer's status.
    func publishSlowly(_ archive: [UInt8], pieces: Int, pause: Duration, sent: NIOLockedValueBox<Int>) async throws -> Int {
        let port = self.port
        let size = (archive.count + pieces - 1) / pieces
        let chunks = stride(from: 0, to: archive.count, by: size).map { Array(archive[$0..<min($0 + size, archive.count)]) }
        return try await Fixtures.blocking {
            let connection = try RawConnection(port: port)
            try connection.send("POST /api/v1/packages HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(Self.token)\r\n"
                                + "Content-Type: application/gzip\r\nContent-Length: \(archive.count)\r\n\r\n")
            for (index, chunk) in chunks.enumerated() {
                if index > 0 { Thread.sleep(forTimeInterval: Double(pause.components.attoseconds) / 1e18 + Double(pause.components.seconds)) }
                try connection.send(bytes: chunk)
                sent.withLockedValue { $0 += 1 }
            }
            let answer = try connection.receive(limit: .seconds(60))
            let parts = answer.split(separator: " ", maxSplits: 2)
            guard parts.count >= 2, parts[0].hasPrefix("HTTP/1."), let status = Int(parts[1]) else {
                throw Fixtures.FixtureError(description: "no answer: \(answer)")
            }
            return status
        }
    }
}
