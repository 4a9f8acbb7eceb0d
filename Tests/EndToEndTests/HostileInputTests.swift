import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import PackageFormat
import TestSupport
import Testing

/// The attacks a publisher could make on the registry's host, each against the real server
/// binary: reading host files through the sources check, links that cost exponential work,
/// an OCI layer that expands in memory, and connections that never finish their request.
@Suite(.serialized) struct HostileInputTests {
    /// A host file beside the checks' scratch directory (where the admin token is kept) never
    /// reaches the publisher through the sources check's findings.
    @Test func theSourcesCheckRevealsNoHostFile() async throws {
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let data = scratch.appendingPathComponent("data")
        try FileManager.default.createDirectory(at: data, withIntermediateDirectories: true)
        let marker = "eprsecret_\(UInt64.random(in: 1...UInt64.max))"
        try marker.write(to: data.appendingPathComponent("planted-secret"), atomically: true, encoding: .utf8)
        let server = try ServerProcess(data: data, environment: ["EPR_VERIFIER": "false"])
        defer { server.stop() }
        let archive = try BuildWorkerTests.archive("xdp-proto-counter", in: scratch, sourcesOnly: false) { directory in
            let probe = Fixtures.hostFileProbe(relative: "../../../../planted-secret", absolute: data.path + "/planted-secret",
                                               exists: [(data.path + "/epr.sqlite", "DATABASE-EXISTS")])
            try probe.write(to: directory.appendingPathComponent("src/probe.bpf.c"), atomically: true, encoding: .utf8)
        }
        let id = try await BuildWorkerTests.publish(server, archive)
        try await server.waitForChecks()
        let detail = try await server.get("/api/v1/submissions/\(id)", token: ServerProcess.token)
        let text = String(decoding: detail.body, as: UTF8.self)
        let sources = try #require(try await BuildWorkerTests.detail(server, id).checks.first { $0.check == "sources" })
        #expect(sources.findings.contains { $0.check == "sources.not-compiled" && $0.message.contains("probe.bpf.c") }, "\(sources.findings)")
        #expect(!text.contains(marker) && !text.contains("DATABASE-EXISTS") && !text.contains(data.path), "\(text)")
    }

    /// A check runs in a worker process in a sandbox: what it runs (a scanner here, the
    /// package's own tools alike) sees the unpacked package, and not the data directory, the
    /// server's processes or a network; and it is not root.
    @Test func checkWorkersSeeOnlyTheirPackage() async throws {
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let data = scratch.appendingPathComponent("data")
        let scanner = scratch.appendingPathComponent("look-around.sh")
        try """
            #!/bin/sh
            if [ -e '\(data.path)/epr.sqlite' ]; then data=visible; else data=hidden; fi
            procs=$(ls /proc | grep -c '^[0-9]')
            nets=$(tail -n +3 /proc/net/dev | grep -vc ' lo:')
            echo "{\\"findings\\": [{\\"severity\\": \\"info\\", \\"check\\": \\"seen\\", \\"message\\": \\"data=$data procs=$procs nets=$nets uid=$(id -u) dir=$EPR_PACKAGE_DIR\\"}]}"
            """.write(to: scanner, atomically: true, encoding: .utf8)
        let config = scratch.appendingPathComponent("epr.toml")
        try "[server]\n\n[scanner.look]\ncommand = [\"sh\", \"\(scanner.path)\"]\n".write(to: config, atomically: true, encoding: .utf8)
        let server = try ServerProcess(data: data, environment: ["EPR_VERIFIER": "false", "EPR_SOURCES_CHECK": "false"],
                                       arguments: ["--config", config.path])
        defer { server.stop() }
        let archive = try BuildWorkerTests.archive("xdp-proto-counter", in: scratch, sourcesOnly: false)
        let id = try await BuildWorkerTests.publish(server, archive)
        try await server.waitForChecks()
        let look = try #require(try await BuildWorkerTests.detail(server, id).checks.first { $0.check == "scanner.look" })
        let seen = try #require(look.findings.first { $0.check == "scanner.look.seen" }, "\(look.findings)").message
        var facts: [String: String] = [:]
        for word in seen.split(separator: " ") {
            let parts = word.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 2 { facts[parts[0]] = parts[1] }
        }
        #expect(facts["data"] == "hidden", "\(seen)")
        #expect(facts["nets"] == "0", "no network but loopback: \(seen)")
        #expect((Int(facts["procs"] ?? "") ?? 99) < 8, "the server's processes are not seen: \(seen)")
        #expect(facts["uid"] != nil && facts["uid"] != "0", "\(seen)")
        #expect(facts["dir"]?.hasPrefix("/job/") == true, "unpacked by the worker, in its own directory: \(seen)")
    }

    /// A chain of links eight levels deep whose every link names the one before four times.
    @Test func aChainOfLinksIsRefusedQuickly() async throws {
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let server = try ServerProcess(data: scratch.appendingPathComponent("data"))
        defer { server.stop() }
        var tar = TarBuilder()
        tar.entry("pkg/d/", type: "5", mode: 0o755)
        tar.entry("pkg/l0", type: "2", link: "d")
        for level in 1...8 {
            tar.entry("pkg/l\(level)", type: "2", link: Array(repeating: "l\(level - 1)", count: 4).joined(separator: "/../"))
        }
        let archive = try TarBuilder.gzip(tar.tar())
        #expect(archive.count < 1024)
        // Measured in the server's own processor time, which the other tests running meanwhile
        // do not inflate (six such levels once cost 32 s).
        let before = Self.processorSeconds(server)
        let (status, body) = try await server.publish(archive)
        let spent = Self.processorSeconds(server) - before
        #expect(status == 422 && body.contains("archive-link-escapes"), "\(status) \(body)")
        #expect(spent < 1, "\(spent) s of processor time")
    }

    /// A small layer that expands a thousand times (to 48 MiB, under the size limit of one
    /// object), pushed by a version tag as a bpfman image: refused for its ratio, and the
    /// server's memory stays small throughout.
    @Test func anOCILayerBombLeavesTheServerSmall() async throws {
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let server = try ServerProcess(data: scratch.appendingPathComponent("data"))
        defer { server.stop() }
        // A tar whose only file starts as a BPF object and goes on with zeros.
        var header = [UInt8](repeating: 0, count: 64)
        header.replaceSubrange(0..<4, with: [0x7f, 0x45, 0x4c, 0x46])
        header[4] = 2; header[5] = 1; header[18] = 247
        let size = 48 << 20
        let layer = try Self.gzipTar(name: "program.o", head: header, size: size)
        #expect(layer.count < 400 << 10, "\(layer.count)")
        let config = Array(#"{"architecture":"amd64","os":"linux","config":{"Labels":{"io.ebpf.programs":"{\"xdp_pass\":\"xdp\"}"}}}"#.utf8)
        for blob in [layer, config] {
            let digest = SHA256Digest(of: blob).description
            let pushed = try await Self.send(server, "/v2/bomb/blobs/uploads/?digest=\(digest)", method: .POST, body: blob,
                                             contentType: "application/octet-stream")
            #expect(pushed.status == 201, "\(pushed)")
        }
        let manifest = """
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
             "config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"\(SHA256Digest(of: config))","size":\(config.count)},
             "layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"\(SHA256Digest(of: layer))","size":\(layer.count)}]}
            """
        let before = Self.memory(server)
        let answer = try await Self.send(server, "/v2/bomb/manifests/1.0.0", method: .PUT, body: Array(manifest.utf8),
                                         contentType: "application/vnd.oci.image.manifest.v1+json")
        #expect(answer.status == 400 && answer.body.contains("MANIFEST_INVALID") && answer.body.contains("expands"), "\(answer.body)")
        let after = Self.memory(server)
        #expect(after.peak < 150 << 20, "resident \(before) before, \(after) after")
        #expect(try await server.get("/api/v1/packages").status == 200)
    }

    /// A client that sends half a request head is cut off after the header timeout, while
    /// other clients download meanwhile; connections beyond the address's limit are refused.
    @Test func halfSentHeadersAreClosedAndConnectionsCapped() async throws {
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let server = try ServerProcess(data: scratch.appendingPathComponent("data"),
                                       environment: ["EPR_HEADER_TIMEOUT": "2", "EPR_IDLE_TIMEOUT": "300", "EPR_MAX_CONNECTIONS_PER_ADDRESS": "8"])
        defer { server.stop() }
        let slow = try RawConnection(port: server.port)
        try slow.send("GET /api/v1/packages HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
        let sent = ContinuousClock.now
        // Watched from a thread of its own, which notes when it saw the close.
        async let watched = Fixtures.blocking { try slow.waitForClose(limit: .seconds(120)) }
        // Downloads go on meanwhile, on other connections.
        for _ in 0..<3 { #expect(try await server.get("/api/v1/packages").status == 200) }
        let closed = try #require(try await watched, "the half-sent head was never cut off") - sent
        // Cut off by the 2-second header timeout: not at once, and long before the 300-second
        // idle timeout (with room for a machine the other tests keep busy).
        #expect(closed >= .seconds(1.5) && closed < .seconds(60), "\(closed)")
        // A complete request on a fresh connection is answered, and the connection stays open.
        let quick = try RawConnection(port: server.port)
        try quick.send("GET /api/v1/packages HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        #expect(try quick.receive(limit: .seconds(5)).hasPrefix("HTTP/1.1 200"))

        // Eight connections from this address at once, then the ninth is closed at once.
        var held = [quick]
        for _ in 0..<7 { held.append(try RawConnection(port: server.port)) }
        try await Task.sleep(for: .milliseconds(200))
        let ninth = try RawConnection(port: server.port)
        #expect(try ninth.waitForClose(limit: .seconds(2)) != nil)
        held.removeLast()
        try await Task.sleep(for: .milliseconds(200))
        #expect(try await server.get("/api/v1/packages").status == 200)
        _ = held
    }

    /// Pushed blobs count against their pusher's quota until something public holds them; a
    /// push past it is denied.
    @Test func pushesBeyondTheQuotaAreDenied() async throws {
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let server = try ServerProcess(data: scratch.appendingPathComponent("data"), environment: ["EPR_OCI_PUSH_QUOTA": "3M"])
        defer { server.stop() }
        func push(_ repository: String, _ blob: [UInt8]) async throws -> (status: Int, body: String) {
            try await Self.send(server, "/v2/\(repository)/blobs/uploads/?digest=\(SHA256Digest(of: blob))", method: .POST, body: blob,
                                contentType: "application/octet-stream")
        }
        let first = [UInt8](repeating: 1, count: 2 << 20), second = [UInt8](repeating: 2, count: 2 << 20)
        #expect(try await push("quota-one", first).status == 201)
        // The same blob again costs nothing more; another one passes the quota.
        #expect(try await push("quota-one", first).status == 201)
        let denied = try await push("quota-two", second)
        #expect(denied.status == 403 && denied.body.contains("DENIED") && denied.body.contains("quota"), "\(denied)")
        #expect(try await push("quota-two", Array(second.prefix(512 << 10))).status == 201, "what fits under the quota is taken")
    }

    /// A program pushed in a form no OCI tool uses (a raw object layer of a generic type) still
    /// counts as a publish, before its layers are read.
    @Test func everyPushByVersionCountsAsAPublish() async throws {
        let scratch = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: scratch) }
        let server = try ServerProcess(data: scratch.appendingPathComponent("data"), environment: ["EPR_PUBLISHES_PER_HOUR": "6"])
        defer { server.stop() }
        let object = try Fixtures.bytes("xdp-port-filter/port_filter.bpf.o")
        let config = Array("{}".utf8)
        for blob in [object, config] {
            let digest = SHA256Digest(of: blob).description
            #expect(try await Self.send(server, "/v2/generic/blobs/uploads/?digest=\(digest)", method: .POST, body: blob,
                                        contentType: "application/octet-stream").status == 201)
        }
        let manifest = """
            {"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",
             "config":{"mediaType":"application/octet-stream","digest":"\(SHA256Digest(of: config))","size":\(config.count)},
             "layers":[{"mediaType":"application/octet-stream","digest":"\(SHA256Digest(of: object))","size":\(object.count)}],
             "annotations":{"org.opencontainers.image.licenses":"GPL-2.0-only"}}
            """
        var statuses: [Int] = []
        for version in ["1.0.0", "1.0.1"] {
            statuses.append(try await Self.send(server, "/v2/generic/manifests/\(version)", method: .PUT, body: Array(manifest.utf8),
                                                contentType: "application/vnd.oci.image.manifest.v1+json").status)
        }
        #expect(statuses.first != 429 && statuses.last == 429, "\(statuses)")
    }

    // MARK: Helpers

    static func send(_ server: ServerProcess, _ path: String, method: HTTPMethod, body: [UInt8], contentType: String) async throws
        -> (status: Int, body: String) {
        var request = HTTPClientRequest(url: server.baseURL + path)
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(ServerProcess.token)")
        request.headers.add(name: "Content-Type", value: contentType)
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await HTTPClient.shared.execute(request, timeout: .seconds(120))
        return (Int(response.status.code), String(buffer: try await response.body.collect(upTo: 1 << 20)))
    }

    /// The processor time the server has used so far, user and system, in seconds.
    static func processorSeconds(_ server: ServerProcess) -> Double {
        let stat = (try? String(contentsOfFile: "/proc/\(server.process.processIdentifier)/stat", encoding: .utf8)) ?? ""
        // The fields after the command's closing parenthesis: utime and stime are the 12th and
        // 13th, in clock ticks.
        let fields = stat.split(separator: ")").last?.split(separator: " ") ?? []
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return .infinity }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// The server's resident memory now and at its peak, in bytes.
    static func memory(_ server: ServerProcess) -> (now: Int, peak: Int) {
        let status = (try? String(contentsOfFile: "/proc/\(server.process.processIdentifier)/status", encoding: .utf8)) ?? ""
        func field(_ name: String) -> Int {
            let line = status.split(separator: "\n").first { $0.hasPrefix(name + ":") } ?? ""
            return (Int(line.split(separator: " ").dropFirst().first ?? "") ?? 0) * 1024
        }
        return (field("VmRSS"), field("VmHWM"))
    }

    /// A gzip-compressed tar of one file: `head`, then zeros up to `size` bytes, compressed
    /// as a stream so the test itself holds little.
    static func gzipTar(name: String, head: [UInt8], size: Int) throws -> [UInt8] {
        var output: [UInt8] = []
        let gzip = try GzipWriter { output.append(contentsOf: $0) }
        var tar = TarBuilder()
        tar.entry(name, size: UInt64(size))
        try tar.bytes.withUnsafeBytes { try gzip.write($0) }
        try head.withUnsafeBytes { try gzip.write($0) }
        let zeros = [UInt8](repeating: 0, count: 1 << 20)
        var left = size - head.count
        while left > 0 {
            let n = min(left, zeros.count)
            try zeros.withUnsafeBytes { try gzip.write(UnsafeRawBufferPointer(rebasing: $0[0..<n])) }
            left -= n
        }
        try [UInt8](repeating: 0, count: (512 - size % 512) % 512 + 1024).withUnsafeBytes { try gzip.write($0) }
        try gzip.finish()
        return output
    }
}

/// A plain TCP connection to the server, for requests no HTTP client would send. Unchecked
/// Sendable: a test uses it from one thread at a time (its own, or the one watching it).
final class RawConnection: @unchecked Sendable {
    let fd: Int32

    init(port: Int) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw Fixtures.FixtureError(description: "cannot connect: \(errno)") }
    }

    deinit { close(fd) }

    func send(_ text: String) throws {
        try send(bytes: Array(text.utf8))
    }

    func send(bytes: [UInt8]) throws {
        var offset = 0
        while offset < bytes.count {
            let n = bytes[offset...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0, errno == EINTR { continue }
            guard n > 0 else { throw Fixtures.FixtureError(description: "cannot send") }
            offset += n
        }
    }

    /// What arrives within `limit` (up to 64 KiB, until the first pause after some bytes).
    func receive(limit: Duration) throws -> String {
        var received: [UInt8] = []
        let deadline = ContinuousClock.now + limit
        var buffer = [UInt8](repeating: 0, count: 65536)
        while ContinuousClock.now < deadline {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, received.isEmpty ? 100 : 300) > 0 else {
                if received.isEmpty { continue } else { break }
            }
            let n = read(fd, &buffer, buffer.count)
            guard n > 0 else { break }
            received += buffer[0..<n]
        }
        return String(decoding: received, as: UTF8.self)
    }

    /// When the server was seen to close the connection (reading and dropping what it sends),
    /// or nil if it is still open after `limit`.
    func waitForClose(limit: Duration) throws -> ContinuousClock.Instant? {
        let started = ContinuousClock.now
        var buffer = [UInt8](repeating: 0, count: 4096)
        while ContinuousClock.now - started < limit {
            var poller = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 100) > 0 else { continue }
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 { return ContinuousClock.now }
        }
        return nil
    }
}
