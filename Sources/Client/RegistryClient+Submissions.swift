import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import RegistryAPI

/// Submission calls: the review queue, a submission's checks, comments and diff, decisions.
extension RegistryClient {
    public func submissions(states: [String], package: String?, mine: Bool, page: Int = 1) async throws -> Data {
        var query = ["page=\(page)", "per_page=100"]
        if !states.isEmpty { query.append("state=\(Self.escape(states.joined(separator: ",")))") }
        if let package { query.append("package=\(Self.escape(package))") }
        if mine { query.append("mine=true") }
        return try await get("/api/v1/submissions?" + query.joined(separator: "&"))
    }

    public func submission(_ id: String) async throws -> Data { try await get("/api/v1/submissions/\(Self.escape(id))") }

    public func submissionDiff(_ id: String) async throws -> Data { try await get("/api/v1/submissions/\(Self.escape(id))/diff") }

    /// `action`: approve, reject, request-changes or withdraw.
    public func decide(_ id: String, _ action: String, reason: String?, acknowledge: [String] = []) async throws -> Data {
        try await sendJSON("/api/v1/submissions/\(Self.escape(id))/\(action)", method: .POST,
                           body: DecisionRequest(reason: reason, acknowledge: acknowledge.isEmpty ? nil : acknowledge))
    }

    public func comment(_ id: String, message: String, file: String?, line: Int?) async throws -> Data {
        try await sendJSON("/api/v1/submissions/\(Self.escape(id))/comments", method: .POST,
                           body: CommentRequest(message: message, file: file, line: line), expecting: 201)
    }

    public func autoPublishers() async throws -> Data { try await get("/api/v1/auto-publishers") }

    public func setAutoPublish(_ user: String, enabled: Bool) async throws {
        _ = try await send(request("/api/v1/auto-publishers/\(Self.escape(user))", method: enabled ? .PUT : .DELETE), expecting: 204)
    }
}

/// Build workers: take a build job, fetch its archive, report the result.
extension RegistryClient {
    /// The oldest build job, or nil when there is none.
    public func claimBuild() async throws -> BuildJobBody? {
        let response = try await http.execute(request("/api/v1/builds/claim", method: .POST), timeout: .seconds(60))
        let body = Data(buffer: try await response.body.collect(upTo: 1 << 20))
        if response.status.code == 204 { return nil }
        guard response.status.code == 200 else { throw RegistryProblem(status: Int(response.status.code), data: body) }
        return try JSONDecoder().decode(BuildJobBody.self, from: body)
    }

    /// Takes the oldest check job (a check worker): the job as the server describes it, nil
    /// when there is none.
    public func claimCheck<Job: Decodable>(as type: Job.Type) async throws -> Job? {
        let response = try await http.execute(request("/api/v1/checks/claim", method: .POST), timeout: .seconds(60))
        let body = Data(buffer: try await response.body.collect(upTo: 64 << 20))
        if response.status.code == 204 { return nil }
        guard response.status.code == 200 else { throw RegistryProblem(status: Int(response.status.code), data: body) }
        return try JSONDecoder().decode(Job.self, from: body)
    }

    /// Reports a check job's result.
    public func reportCheck<Body: Encodable>(job: Int, _ result: Body) async throws {
        _ = try await sendJSON("/api/v1/checks/\(job)/result", method: .POST, body: result, expecting: 204)
    }

    /// A submission's archive, whole.
    public func submissionArchive(_ path: String) async throws -> Data {
        let response = try await http.execute(request(path), timeout: .seconds(600))
        let body = Data(buffer: try await response.body.collect(upTo: 1 << 30))
        guard response.status.code == 200 else { throw RegistryProblem(status: Int(response.status.code), data: body) }
        return body
    }

    public func reportBuild(job: Int, _ result: BuildResultRequest) async throws -> BuildResultBody {
        let data = try await sendJSON("/api/v1/builds/\(job)/result", method: .POST, body: result)
        return try JSONDecoder().decode(BuildResultBody.self, from: data)
    }
}
