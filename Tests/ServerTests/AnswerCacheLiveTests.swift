import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
@testable import Server
import Testing

/// A real server with its whole connection pipeline: answers repeated from memory change the
/// moment a write changes what they say.
@Suite struct AnswerCacheLiveTests {
    static let auth: HTTPFields = [.authorization: "Bearer \(TestRegistry.token)"]

    @Test func writesShowAtOnce() async throws {
        let registry = try await TestRegistry.make()
        let first = try registry.archive("exec-tracker", version: "1.0.0")
        let second = try registry.archive("exec-tracker", version: "1.1.0")
        try await registry.run(.live) { client in
            #expect(try await client.publish(first).status == .created)
            let latest = "/exec-tracker/latest/jammy/exec_tracker.tar.gz"
            for _ in 0..<3 { #expect(try await client.get(latest).body == first) }
            let metadata = "/api/v1/packages/exec-tracker/versions/1.0.0"
            let coldHead = try await client.execute(uri: metadata, method: .head)
            #expect(coldHead.status == .ok && coldHead.body.readableBytes == 0, "HEAD works wherever GET does, cached or not")
            for _ in 0..<3 { #expect(try await client.get(metadata).status == .ok) }

            #expect(try await client.publish(second).status == .created)
            #expect(try await client.get(latest).body == second, "a publish shows in the very next download")
            let yank = try await client.execute(uri: "/api/v1/packages/exec-tracker/versions/1.1.0/yank", method: .put, headers: Self.auth)
            #expect(yank.status == .ok)
            #expect(try await client.get(latest).body == first, "a yank shows in the very next download")

            let deprecate = try await client.execute(uri: "/api/v1/packages/exec-tracker/versions/1.0.0/deprecation", method: .put,
                                                     headers: Self.auth, body: ByteBuffer(string: #"{"message":"use 2.x"}"#))
            #expect(deprecate.status == .ok)
            #expect(String(buffer: try await client.get(metadata).body).contains("use 2.x"))

            // Repeated answers carry what the route's answer carried.
            let routed = try await client.get(latest)
            let repeated = try await client.get(latest)
            for name: HTTPField.Name in [.eTag, .contentLength, .contentType, .cacheControl, .contentDisposition, HTTPField.Name("Repr-Digest")!] {
                #expect(repeated.headers[name] != nil && repeated.headers[name] == routed.headers[name], "\(name)")
            }
            #expect(repeated.headers[.date] != nil)
            let head = try await client.execute(uri: latest, method: .head)
            #expect(head.status == .ok && head.body.readableBytes == 0 && head.headers[.contentLength] == String(first.readableBytes))

            // Ranges and conditions still get their own answers.
            let range = try await client.get(latest, headers: [.range: "bytes=0-9"])
            #expect(range.status == .partialContent && range.body.readableBytes == 10)
            let conditional = try await client.get(latest, headers: [.ifNoneMatch: repeated.headers[.eTag] ?? ""])
            #expect(conditional.status == .notModified)

            // Every answer is counted, wherever it was made: 11 GETs answered 200; the repeats
            // are the 2nd and 3rd of each first trio, `repeated`, and the HEAD after it: 6.
            let metrics = String(buffer: try await client.get("/metrics").body)
            func value(_ prefix: String) -> Int? {
                metrics.split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { $0.split(separator: " ").last }.flatMap { Int($0) }
            }
            #expect(value(#"epr_http_requests_total{method="GET",status="200"}"#) == 11)
            #expect(value("epr_answer_cache_hits_total") == 6)
        }
    }

    @Test func turnedOffAnswersStillWork() async throws {
        let registry = try await TestRegistry.make { $0.answerCacheSize = 0 }
        let archive = try registry.archive("exec-tracker")
        try await registry.run(.live) { (client: any TestClientProtocol) async throws in
            #expect(try await client.publish(archive).status == .created)
            for _ in 0..<2 { #expect(try await client.get("/exec-tracker/latest/jammy/exec_tracker.tar.gz").body == archive) }
        }
    }
}
