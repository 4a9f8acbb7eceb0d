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

/// The store of whole answers: which requests it may answer, and when an answer is stale.
@Suite struct FrontCacheTests {
    final class Counter: Sendable {
        let value = NIOLockedValueBox<UInt64>(0)
        func bump() { value.withLockedValue { $0 += 1 } }
        var current: UInt64 { value.withLockedValue { $0 } }
    }

    static func request(_ path: String, method: HTTPRequest.Method = .get, host: String = "registry.test",
                        _ fields: HTTPFields = [:]) -> HTTPRequest {
        HTTPRequest(method: method, scheme: nil, authority: host, path: path, headerFields: fields)
    }

    static let json: HTTPFields = [.contentType: "application/json", .contentLength: "2"]

    @Test func onlyPlainAnonymousReadsHaveAKey() {
        #expect(FrontCache.key(for: Self.request("/a")) != nil)
        #expect(FrontCache.key(for: Self.request("/a", method: .head)) == FrontCache.key(for: Self.request("/a")))
        #expect(FrontCache.key(for: Self.request("/a", host: "other.test")) != FrontCache.key(for: Self.request("/a")))
        #expect(FrontCache.key(for: Self.request("/a?page=2")) != FrontCache.key(for: Self.request("/a")))
        #expect(FrontCache.key(for: Self.request("/a", method: .post)) == nil)
        #expect(FrontCache.key(for: Self.request("/a", method: .delete)) == nil)
        for name: HTTPField.Name in [.authorization, .cookie, .range, .ifRange, .ifMatch, .ifNoneMatch, .ifModifiedSince, .ifUnmodifiedSince] {
            #expect(FrontCache.key(for: Self.request("/a", [name: "x"])) == nil, "\(name)")
        }
    }

    @Test func aWriteDropsEveryAnswer() {
        let changes = Counter()
        let cache = FrontCache(changeCount: { changes.current })
        cache.store(cache.ticket(for: Self.request("/a")), headers: Self.json, body: .bytes(ByteBuffer(string: "{}")), isDownload: false)
        #expect(cache.lookup(Self.request("/a"))?.body == .bytes(ByteBuffer(string: "{}")))
        #expect(cache.lookup(Self.request("/a", method: .head)) != nil)
        changes.bump()
        #expect(cache.lookup(Self.request("/a")) == nil)
    }

    @Test func anAnswerBuiltAcrossAWriteIsNotStored() {
        let changes = Counter()
        let cache = FrontCache(changeCount: { changes.current })
        let ticket = cache.ticket(for: Self.request("/a"))
        changes.bump() // a publish lands while the route reads
        cache.store(ticket, headers: Self.json, body: .bytes(ByteBuffer(string: "{}")), isDownload: false)
        #expect(cache.count == 0)
        #expect(cache.lookup(Self.request("/a")) == nil)
    }

    @Test func headAndCredentialedRequestsGetNoTicket() {
        let cache = FrontCache(changeCount: { 0 })
        #expect(cache.ticket(for: Self.request("/a", method: .head)) == nil)
        #expect(cache.ticket(for: Self.request("/a", [.authorization: "Bearer x"])) == nil)
        #expect(FrontCache(capacity: 0, changeCount: { 0 }).ticket(for: Self.request("/a")) == nil)
    }

    @Test func answersExpire() async throws {
        let cache = FrontCache(ttl: .milliseconds(50), changeCount: { 0 })
        cache.store(cache.ticket(for: Self.request("/a")), headers: Self.json, body: .bytes(ByteBuffer(string: "{}")), isDownload: false)
        #expect(cache.lookup(Self.request("/a")) != nil)
        try await Task.sleep(for: .milliseconds(80))
        #expect(cache.lookup(Self.request("/a")) == nil)
    }

    @Test func staysWithinItsBounds() {
        let cache = FrontCache(capacity: 64 << 10, maxEntries: 3, changeCount: { 0 })
        for index in 0..<10 {
            cache.store(cache.ticket(for: Self.request("/\(index)")), headers: Self.json, body: .bytes(ByteBuffer(string: "{}")), isDownload: false)
        }
        #expect(cache.count == 3)
        #expect(cache.lookup(Self.request("/9")) != nil, "the newest answer is kept")
        // One answer may take at most an eighth of the capacity.
        cache.store(cache.ticket(for: Self.request("/big")), headers: Self.json,
                    body: .bytes(ByteBuffer(repeating: 0, count: 9 << 10)), isDownload: false)
        #expect(cache.lookup(Self.request("/big")) == nil)
    }

    @Test func theDateHeaderIsAnIMFFixdate() {
        var parts = tm()
        var seconds = time_t(784_111_777) // the example in RFC 9110
        gmtime_r(&seconds, &parts)
        #expect(HTTPDate.format(parts) == "Sun, 06 Nov 1994 08:49:37 GMT")
    }
}
