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

/// The connection handler in the server's HTTP/1 pipeline: what it answers itself, what it
/// passes on, and that responses never overtake each other.
@Suite struct FrontCacheHandlerTests {
    /// Stands for the router: records the requests that reach it, and answers each at its end
    /// when `answers` is set (else the test answers for it).
    final class Router: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = HTTPRequestPart
        typealias OutboundOut = HTTPResponsePart
        var heads: [String] = []
        var quiesced = false
        var inputClosed = false
        var answers = false
        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case let .head(request): heads.append(request.path ?? "")
            case .body: break
            case .end:
                guard answers else { return }
                context.write(wrapOutboundOut(.head(HTTPResponse(status: .noContent))), promise: nil)
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            }
        }
        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if event is ChannelShouldQuiesceEvent { quiesced = true }
            if (event as? ChannelEvent) == .inputClosed { inputClosed = true }
        }
    }

    struct Setup {
        let channel: EmbeddedChannel
        let router: Router
        let cache: FrontCache
        let metrics: ServerMetrics
    }

    /// The server's order: response encoder, this handler, the conversion to HTTP types, the router.
    static func setup() throws -> Setup {
        let channel = EmbeddedChannel()
        let cache = FrontCache(changeCount: { 0 })
        let metrics = ServerMetrics()
        let router = Router()
        try channel.pipeline.syncOperations.addHandlers([
            HTTPResponseEncoder(), FrontCacheHandler(cache: cache, metrics: metrics), HTTP1ToHTTPServerCodec(secure: false), router,
        ])
        return Setup(channel: channel, router: router, cache: cache, metrics: metrics)
    }

    static func send(_ channel: EmbeddedChannel, _ path: String, method: NIOHTTP1.HTTPMethod = .GET, version: HTTPVersion = .http1_1,
                     headers: HTTPHeaders = ["Host": "registry.test"]) throws {
        try channel.writeInbound(HTTPServerRequestPart.head(HTTPRequestHead(version: version, method: method, uri: path, headers: headers)))
        try channel.writeInbound(HTTPServerRequestPart.end(nil))
    }

    static func store(_ cache: FrontCache, _ path: String, body: FrontCache.Body, length: Int) {
        let request = HTTPRequest(method: .get, scheme: nil, authority: "registry.test", path: path)
        cache.store(cache.ticket(for: request), headers: [.contentType: "application/json", .contentLength: String(length)], body: body,
                    isDownload: false)
    }

    /// A blob file of `size` bytes in a fresh directory, and its removal.
    static func blobFile(size: Int) throws -> (url: URL, remove: () -> Void) {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("front-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let file = directory.appendingPathComponent("blob")
        try Data(repeating: 7, count: size).write(to: file)
        return (file, { try? FileManager.default.removeItem(at: directory) })
    }

    /// What went to the socket: the bytes, and any file regions.
    static func written(_ channel: EmbeddedChannel) throws -> (text: String, files: [FileRegion]) {
        var text = "", files: [FileRegion] = []
        while let data = try channel.readOutbound(as: IOData.self) {
            switch data {
            case let .byteBuffer(buffer): text += String(buffer: buffer)
            case let .fileRegion(region): files.append(region)
            }
        }
        return (text, files)
    }

    @Test func answersStoredReadsWithoutTheRouter() throws {
        let setup = try Self.setup()
        Self.store(setup.cache, "/api/v1/packages/a", body: .bytes(ByteBuffer(string: "{}")), length: 2)
        try Self.send(setup.channel, "/api/v1/packages/a")
        let (text, _) = try Self.written(setup.channel)
        #expect(setup.router.heads.isEmpty)
        #expect(text.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(text.contains("\r\nContent-Length: 2\r\n") && text.contains("\r\nContent-Type: application/json\r\n"))
        #expect(text.contains("\r\nServer: epr\r\n"))
        #expect(text.range(of: #"\r\nDate: [A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT\r\n"#, options: .regularExpression) != nil)
        #expect(text.hasSuffix("\r\n\r\n{}"))
        let metrics = String(decoding: setup.metrics.render(), as: UTF8.self)
        #expect(metrics.contains(#"epr_http_requests_total{method="GET",status="200"} 1"#))
        #expect(metrics.contains("epr_answer_cache_hits_total 1"))
    }

    @Test func headGetsTheHeadersOnly() throws {
        let setup = try Self.setup()
        Self.store(setup.cache, "/a", body: .bytes(ByteBuffer(string: "{}")), length: 2)
        try Self.send(setup.channel, "/a", method: .HEAD)
        let (text, _) = try Self.written(setup.channel)
        #expect(text.contains("\r\nContent-Length: 2\r\n"))
        #expect(text.hasSuffix("\r\n\r\n"))
    }

    @Test func otherRequestsReachTheRouter() throws {
        let setup = try Self.setup()
        setup.router.answers = true // so that each request is judged on its own
        Self.store(setup.cache, "/a", body: .bytes(ByteBuffer(string: "{}")), length: 2)
        try Self.send(setup.channel, "/b")
        try Self.send(setup.channel, "/a", headers: ["Host": "registry.test", "authorization": "Bearer x"])
        try Self.send(setup.channel, "/a", headers: ["Host": "registry.test", "Range": "bytes=0-0"])
        try Self.send(setup.channel, "/a", headers: ["Host": "other.test"])
        try Self.send(setup.channel, "/a", version: .http1_0)
        try Self.send(setup.channel, "/a", headers: ["Host": "registry.test", "Connection": "close"])
        #expect(setup.router.heads == ["/b", "/a", "/a", "/a", "/a", "/a"])
        let text = try Self.written(setup.channel).text
        #expect(text.components(separatedBy: "HTTP/1.1 204 No Content").count == 7, "six answers, all from the router")
        #expect(!text.contains("{}"))
        // And the plain request, judged the same way, is answered here.
        try Self.send(setup.channel, "/a")
        #expect(setup.router.heads.count == 6)
        #expect(try Self.written(setup.channel).text.hasSuffix("{}"))
    }

    /// Both sides key a request alike: the parser's view and the router's, after conversion.
    @Test func keysAgreeWithTheRoutersView() throws {
        let heads: [HTTPRequestHead] = [
            HTTPRequestHead(version: .http1_1, method: .GET, uri: "/a/b?c=d&e=%2F", headers: ["Host": "registry.test:8080"]),
            HTTPRequestHead(version: .http1_1, method: .HEAD, uri: "/x", headers: ["host": "h"]),
            HTTPRequestHead(version: .http1_1, method: .GET, uri: "/no-host", headers: [:]),
        ]
        for head in heads {
            let converted = try HTTPRequest(head, secure: false, splitCookie: false)
            #expect(FrontCache.key(for: head) != nil)
            #expect(FrontCache.key(for: head) == FrontCache.key(for: converted), "\(head.uri)")
        }
        let absolute = HTTPRequestHead(version: .http1_1, method: .GET, uri: "http://h/x", headers: ["Host": "h"])
        #expect(FrontCache.key(for: absolute) == nil, "absolute-form targets are left to the router")
    }

    /// A client pipelining a routed request and then a stored one gets the answers in order:
    /// the stored one waits for the router's answer by going through the router too.
    @Test func responsesKeepRequestOrder() throws {
        let setup = try Self.setup()
        Self.store(setup.cache, "/a", body: .bytes(ByteBuffer(string: "{}")), length: 2)
        try Self.send(setup.channel, "/slow")
        try Self.send(setup.channel, "/a")
        #expect(setup.router.heads == ["/slow", "/a"])
        #expect(try Self.written(setup.channel).text.isEmpty)
        // The router answers both; afterwards the handler answers stored reads itself again.
        for _ in 0..<2 {
            try setup.channel.writeOutbound(HTTPResponsePart.head(HTTPResponse(status: .ok, headerFields: [.contentLength: "0"])))
            try setup.channel.writeOutbound(HTTPResponsePart.end(nil))
        }
        #expect(try Self.written(setup.channel).text.components(separatedBy: "HTTP/1.1 200 OK").count == 3)
        try Self.send(setup.channel, "/a")
        #expect(setup.router.heads == ["/slow", "/a"])
        #expect(try Self.written(setup.channel).text.hasSuffix("{}"))
    }

    @Test func filesGoOutAsFileRegionsAndAreClosed() throws {
        let setup = try Self.setup()
        let (file, remove) = try Self.blobFile(size: 1000)
        defer { remove() }
        Self.store(setup.cache, "/blob", body: .file(path: file.path, length: 1000), length: 1000)
        try Self.send(setup.channel, "/blob")
        let (text, files) = try Self.written(setup.channel)
        #expect(text.contains("\r\nContent-Length: 1000\r\n") && text.hasSuffix("\r\n\r\n"))
        try #require(files.count == 1)
        #expect(files[0].readableBytes == 1000)
        #expect(!files[0].fileHandle.isOpen, "the descriptor is closed once the answer is written")

        // A blob that has gone is left to the router, which knows how to say so.
        try FileManager.default.removeItem(at: file)
        try Self.send(setup.channel, "/blob")
        #expect(setup.router.heads == ["/blob"])
    }

    /// Holds every write's promise, like a socket that has not taken the bytes yet.
    final class SlowSocket: ChannelOutboundHandler, RemovableChannelHandler {
        typealias OutboundIn = IOData
        var held: [EventLoopPromise<Void>] = []
        var regions: [FileRegion] = []
        func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
            if case let .fileRegion(region) = unwrapOutboundIn(data) { regions.append(region) }
            if let promise { held.append(promise) }
        }
        func flush(context: ChannelHandlerContext) {}
        func release() { held.forEach { $0.succeed() }; held = [] }
        func fail() { held.forEach { $0.fail(ChannelError.ioOnClosedChannel) }; held = [] }
    }

    /// A client pipelining without reading holds one answer from here at most; the rest wait
    /// in the router's stream, which applies backpressure.
    @Test func oneAnswerInFlightPerConnection() throws {
        let setup = try Self.setup()
        let socket = SlowSocket()
        try setup.channel.pipeline.syncOperations.addHandler(socket, position: .first)
        Self.store(setup.cache, "/a", body: .bytes(ByteBuffer(string: "{}")), length: 2)
        for _ in 0..<3 { try Self.send(setup.channel, "/a") }
        #expect(setup.router.heads == ["/a", "/a"])
    }

    @Test func aFailedWriteClosesTheFile() throws {
        let setup = try Self.setup()
        let socket = SlowSocket()
        try setup.channel.pipeline.syncOperations.addHandler(socket, position: .first)
        let (file, remove) = try Self.blobFile(size: 100)
        defer { remove() }
        Self.store(setup.cache, "/blob", body: .file(path: file.path, length: 100), length: 100)
        try Self.send(setup.channel, "/blob")
        let region = try #require(socket.regions.first)
        #expect(region.fileHandle.isOpen)
        socket.fail()
        #expect(!region.fileHandle.isOpen)
    }

    @Test func aBlobOfTheWrongSizeGoesToTheRouter() throws {
        let setup = try Self.setup()
        let (file, remove) = try Self.blobFile(size: 99)
        defer { remove() }
        Self.store(setup.cache, "/blob", body: .file(path: file.path, length: 100), length: 100)
        try Self.send(setup.channel, "/blob")
        #expect(setup.router.heads == ["/blob"])
    }

    @Test func halfCloseWaitsForAnAnswerBeingSent() throws {
        let setup = try Self.setup()
        let socket = SlowSocket()
        try setup.channel.pipeline.syncOperations.addHandler(socket, position: .first)
        Self.store(setup.cache, "/a", body: .bytes(ByteBuffer(string: "{}")), length: 2)
        try Self.send(setup.channel, "/a")
        setup.channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(!setup.router.inputClosed)
        socket.release()
        #expect(setup.router.inputClosed)
    }

    @Test func shutdownWaitsForAnAnswerBeingSent() throws {
        let setup = try Self.setup()
        let socket = SlowSocket()
        try setup.channel.pipeline.syncOperations.addHandler(socket, position: .first)
        Self.store(setup.cache, "/a", body: .bytes(ByteBuffer(string: "{}")), length: 2)
        try Self.send(setup.channel, "/a")
        #expect(!socket.held.isEmpty)
        setup.channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(!setup.router.quiesced, "the connection may not close while the answer is still going out")
        socket.release()
        #expect(setup.router.quiesced)
    }

    @Test func afterShutdownBeginsEverythingGoesToTheRouter() throws {
        let setup = try Self.setup()
        Self.store(setup.cache, "/a", body: .bytes(ByteBuffer(string: "{}")), length: 2)
        setup.channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(setup.router.quiesced)
        try Self.send(setup.channel, "/a")
        #expect(setup.router.heads == ["/a"])
    }
}
