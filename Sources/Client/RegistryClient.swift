import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOFoundationCompat
import PackageFormat

/// A typed client of the epr REST API and download paths, shared by the CLI and the node agent.
public struct RegistryClient: Sendable {
    public let baseURL: String
    public let token: String?
    let http: HTTPClient

    public init(baseURL: String, token: String?, http: HTTPClient = .shared) {
        self.baseURL = String(baseURL.reversed().drop { $0 == "/" }.reversed())
        self.token = token
        self.http = http
    }

    /// Progress of a transfer: bytes so far, and the total when known.
    public typealias Progress = @Sendable (Int64, Int64?) -> Void

    // MARK: Requests

    func request(_ path: String, method: HTTPMethod = .GET, body: HTTPClientRequest.Body? = nil,
                 headers: [(String, String)] = []) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: baseURL + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = body }
        return request
    }

    /// Sends a request and returns the JSON body of a successful answer; problem documents
    /// become ``RegistryProblem`` errors.
    func send(_ request: HTTPClientRequest, expecting status: Int = 200, timeout: TimeAmount = .seconds(120)) async throws -> Data {
        let response = try await http.execute(request, timeout: timeout)
        let body = try await response.body.collect(upTo: 64 << 20)
        let data = Data(buffer: body)
        // Anything but the one expected answer is a failure: a redirect followed to another
        // page must not pass for a publish.
        guard Int(response.status.code) == status else {
            throw RegistryProblem(status: Int(response.status.code), data: data)
        }
        return data
    }

    public func get(_ path: String, timeout: TimeAmount = .seconds(120)) async throws -> Data {
        try await send(request(path), timeout: timeout)
    }

    /// Submits a package archive; with `wait` seconds, the answer comes once its checks are
    /// done (or the time is up). A `signature` (the signature file's bytes) goes along in the
    /// `Epr-Signature` header.
    public func publish(file: String, signature: Data? = nil, wait: Int = 0, progress: Progress? = nil) async throws -> Data {
        let size = try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int64 ?? 0
        let body = HTTPClientRequest.Body.stream(FileChunks(path: file, progress: progress, total: size), length: .known(size))
        var headers = [("Content-Type", "application/gzip")]
        if let signature { headers.append(("Epr-Signature", signature.base64EncodedString())) }
        if wait > 0 { headers.append(("Prefer", "wait=\(wait)")) }
        return try await send(request("/api/v1/packages", method: .POST, body: body, headers: headers), expecting: 201,
                              timeout: .seconds(3600 + Int64(wait)))
    }

    public func setYanked(_ name: String, _ version: String, yanked: Bool, reason: String?) async throws -> Data {
        var body: HTTPClientRequest.Body?
        if let reason { body = .bytes(ByteBuffer(bytes: try JSONEncoder().encode(["reason": reason]))) }
        return try await send(request("/api/v1/packages/\(name)/versions/\(version)/yank", method: yanked ? .PUT : .DELETE,
                                      body: body, headers: [("Content-Type", "application/json")]))
    }

    public func setDeprecation(_ name: String, _ version: String, message: String?) async throws -> Data {
        let body = message.map { HTTPClientRequest.Body.bytes(ByteBuffer(bytes: (try? JSONEncoder().encode(["message": $0])) ?? Data())) }
        return try await send(request("/api/v1/packages/\(name)/versions/\(version)/deprecation", method: message == nil ? .DELETE : .PUT,
                                      body: body, headers: [("Content-Type", "application/json")]))
    }

    /// Downloads `path` into `destination` atomically, checking the bytes against `expected`
    /// (when given) and the digest the server announces; returns the digest.
    public func download(_ path: String, to destination: String, expected: SHA256Digest? = nil,
                         progress: Progress? = nil) async throws -> SHA256Digest {
        let response = try await http.execute(request(path), timeout: .hours(1))
        guard response.status == .ok else {
            let body = try await response.body.collect(upTo: 1 << 20)
            throw RegistryProblem(status: Int(response.status.code), data: Data(buffer: body))
        }
        let total = response.headers.first(name: "Content-Length").flatMap(Int64.init)
        let announced = response.headers.first(name: "ETag").map { $0.trimmingCharacters(in: CharacterSet(charactersIn: "\"")) }
        let partial = destination + ".partial"
        _ = FileManager.default.createFile(atPath: partial, contents: nil)
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: partial))
        var hasher = StreamingSHA256()
        var received: Int64 = 0
        do {
            for try await buffer in response.body {
                buffer.withUnsafeReadableBytes { hasher.update($0) }
                try handle.write(contentsOf: Data(buffer: buffer))
                received += Int64(buffer.readableBytes)
                progress?(received, total)
            }
            try handle.synchronize()
            try handle.close()
        } catch {
            try? handle.close()
            try? FileManager.default.removeItem(atPath: partial)
            throw error
        }
        let digest = hasher.finalize()
        if let expected, expected != digest {
            try? FileManager.default.removeItem(atPath: partial)
            throw ClientError("the download's digest is \(digest), but the registry lists \(expected)")
        }
        if let announced, announced.hasPrefix("sha256:"), announced != digest.description {
            try? FileManager.default.removeItem(atPath: partial)
            throw ClientError("the download's digest is \(digest), but the server announced \(announced)")
        }
        if let total, total != received {
            try? FileManager.default.removeItem(atPath: partial)
            throw ClientError("the download stopped after \(received) of \(total) bytes")
        }
        // rename(2) replaces an existing file in one step.
        guard rename(partial, destination) == 0 else {
            try? FileManager.default.removeItem(atPath: partial)
            throw ClientError("cannot write \(destination): \(String(cString: strerror(errno)))")
        }
        return digest
    }
}

/// A problem document the server answered with.
public struct RegistryProblem: Error, CustomStringConvertible, Sendable {
    public let status: Int
    public let code: String
    public let detail: String
    public let findings: [Finding]

    init(status: Int, data: Data) {
        struct Body: Decodable { var code: String?; var detail: String?; var findings: [Finding]? }
        let body = try? JSONDecoder().decode(Body.self, from: data)
        self.status = status
        code = body?.code ?? "http-\(status)"
        detail = body?.detail ?? String(decoding: data.prefix(500), as: UTF8.self)
        findings = body?.findings ?? []
    }

    public var description: String { "\(detail) (\(code), HTTP \(status))" }
}

public struct ClientError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// A file read in 256 KiB chunks, for streaming uploads.
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let path: String
    let progress: RegistryClient.Progress?
    let total: Int64

    struct AsyncIterator: AsyncIteratorProtocol {
        let handle: FileHandle?
        let progress: RegistryClient.Progress?
        let total: Int64
        var sent: Int64 = 0

        mutating func next() async throws -> ByteBuffer? {
            guard let handle, let data = try handle.read(upToCount: 256 * 1024), !data.isEmpty else {
                try? handle?.close()
                return nil
            }
            sent += Int64(data.count)
            progress?(sent, total)
            return ByteBuffer(bytes: data)
        }
    }

    func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(handle: FileHandle(forReadingAtPath: path), progress: progress, total: total)
    }
}
