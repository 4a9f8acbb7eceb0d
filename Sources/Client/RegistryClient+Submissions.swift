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
