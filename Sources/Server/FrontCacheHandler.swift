import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import Prometheus
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOSSL

/// The HTTP/1 connection of `epr serve`: Hummingbird's, with ``FrontCacheHandler`` placed right
/// after the HTTP/1 parser so that repeated reads are answered before any conversion or routing.
struct RegistryHTTP1Channel: HTTPChannelHandler {
    typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>

    let responder: HTTPChannelHandler.Responder
    let cache: FrontCache
    let metrics: ServerMetrics
    let serverName: String
    /// TLS, when configured: answers are encrypted, so blobs go through memory, not `sendfile`.
    let tls: NIOSSLContext?
    /// Fields every answer from the cache carries (the router's middleware adds them to its own).
    let extraHeaders: HTTPFields
    let limits: ConnectionLimits
    let counter: ConnectionCounter

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            let guardHandler = ConnectionGuard(limits: limits, counter: counter)
            try channel.pipeline.syncOperations.addHandler(guardHandler)
            if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
            // The parser and the response encoder, not paired: answers sent from the cache pass
            // below the encoder, so it must not match responses to the requests it saw (paired,
            // it would take a later response for the answer to an earlier HEAD and drop its
            // body). The router answers HEAD without a body itself. No pipelining assistance
            // (the router answers one request at a time, in order), no error handler (Hummingbird
            // answers parse errors), no header validation (HTTP types validate fields already).
            try channel.pipeline.syncOperations.addHandlers([
                HTTPResponseEncoder(configuration: .init()),
                ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes, limitConfiguration: Self.decoderLimits(limits))),
            ])
            try channel.pipeline.syncOperations.addHandler(RequestHeadWatch(guardHandler))
            try channel.pipeline.syncOperations.addHandler(FrontCacheHandler(cache: cache, metrics: metrics, serverName: serverName,
                                                                             extraHeaders: extraHeaders, sendfile: tls == nil))
            try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: tls != nil))
            try channel.pipeline.syncOperations.addHandler(HTTPConnectionStateHandler(idleTimeout: nil, logger: logger))
            return try NIOAsyncChannel(wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
        }
    }

    /// The largest head a request may have, in one field and in all, and its most fields.
    static func decoderLimits(_ connection: ConnectionLimits) -> NIOHTTPDecoderLimitConfiguration {
        var limits = NIOHTTPDecoderLimitConfiguration()
        limits.maxHeaderFieldSize = connection.headerBytes
        limits.maxHeaderListSize = connection.headerBytes
        limits.maxHeaderFieldCount = 200
        return limits
    }

    func handle(value asyncChannel: Value, logger: Logger) async {
        await handleHTTP(asyncChannel: asyncChannel, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// HTTP/1 with the answer cache in front of the router.
    static func registry(cache: FrontCache, metrics: ServerMetrics, serverName: String, tls: NIOSSLContext? = nil,
                         extraHeaders: HTTPFields = [:], limits: ConnectionLimits = ConnectionLimits()) -> HTTPServerBuilder {
        let counter = ConnectionCounter()
        return HTTPServerBuilder { responder in
            RegistryHTTP1Channel(responder: responder, cache: cache, metrics: metrics, serverName: serverName, tls: tls, extraHeaders: extraHeaders,
                                 limits: limits, counter: counter)
        }
    }
}

/// Answers requests that ``FrontCache`` holds straight on the connection's event loop: the
/// stored response head, already encoded, then the body from memory or, for blobs, with
/// `sendfile`. Everything else passes on to the router unchanged.
///
/// Responses leave in request order: a request is answered here only when the router owes no
/// response on this connection, so a client pipelining requests never gets them out of order.
/// At most one answer per connection is in flight from here: requests arriving meanwhile go to
/// the router, whose stream applies backpressure, so a client that pipelines without reading
/// holds one open file at most. On graceful shutdown, or when the client half-closes, the
/// connection closes only once an answer being sent from here is out.
final class FrontCacheHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private struct Answer {
        let entry: FrontCache.Entry
        let head: Bool
        let file: NIOFileHandle?
        let start: ContinuousClock.Instant
    }

    private enum Reading {
        case idle
        /// The request being read goes to the router.
        case forwarding
        /// The request being read was answered at its head; the rest of it is dropped.
        case discarding
    }

    private let cache: FrontCache
    private let metrics: ServerMetrics
    /// `Date: ...`, `Server: ...` and the blank line, refreshed each second.
    private var date: HTTPDate
    private var reading = Reading.idle
    /// Requests passed to the router whose response has not ended yet.
    private var routerOwes = 0
    /// Answers written here whose last byte is not yet on the wire.
    private var sending = 0
    private var quiescing = false
    /// Shutdown and half-close events held until the answer in flight is out.
    private var heldEvents: [Any] = []
    /// The response encoder's context: answers are written below it, already encoded.
    private var encoder: ChannelHandlerContext?
    /// The writability the handlers after this one were last told. Answers sent from here make
    /// the channel briefly unwritable; those changes are kept from the router, which is not
    /// writing meanwhile, and only a net change is passed on once the answer is out.
    private var toldWritable = true
    /// Request counters by status and method, looked up once per connection.
    private var counters: [Int: Prometheus.Counter] = [:]

    /// Whether blob bodies may go out with `sendfile` (not under TLS: those answers are left
    /// to the router, which reads the file through the encryption).
    private let sendfile: Bool

    init(cache: FrontCache, metrics: ServerMetrics, serverName: String = "epr", extraHeaders: HTTPFields = [:], sendfile: Bool = true) {
        self.cache = cache
        self.metrics = metrics
        self.date = HTTPDate(serverName: serverName, extraHeaders: extraHeaders)
        self.sendfile = sendfile
    }

    func handlerAdded(context: ChannelHandlerContext) {
        encoder = try? context.pipeline.syncOperations.context(handlerType: HTTPResponseEncoder.self)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        reading = .idle
        encoder = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case let .head(request):
            if let answer = answer(for: request) {
                reading = .discarding
                send(answer, context: context)
                return
            }
            reading = .forwarding
            routerOwes += 1
            if toldWritable != context.channel.isWritable {
                toldWritable = context.channel.isWritable
                context.fireChannelWritabilityChanged()
            }
            context.fireChannelRead(data)
        case .body:
            if case .discarding = reading { return }
            context.fireChannelRead(data)
        case .end:
            if case .discarding = reading {
                reading = .idle
                return
            }
            reading = .idle
            context.fireChannelRead(data)
        }
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { routerOwes = max(0, routerOwes - 1) }
        context.write(data, promise: promise)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        let closing = event is ChannelShouldQuiesceEvent || (event as? ChannelEvent) == .inputClosed
        if event is ChannelShouldQuiesceEvent { quiescing = true }
        if closing, sending > 0 {
            heldEvents.append(event)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// While an answer from here is going out and the router owes nothing, the router is not
    /// writing: the brief unwritability a large answer causes is kept from it, and only a net
    /// change is passed on once the answer is out (or before a request is passed to it).
    func channelWritabilityChanged(context: ChannelHandlerContext) {
        guard sending == 0 || routerOwes > 0 else { return }
        toldWritable = context.channel.isWritable
        context.fireChannelWritabilityChanged()
    }

    /// How to answer a request here, or nil to pass it to the router: when the router owes an
    /// earlier response, when an answer from here is still going out, when shutting down, for
    /// HTTP/1.0 or a closing connection, when nothing valid is stored, or when a blob's file is
    /// missing or not the size recorded (the router knows how to say why).
    private func answer(for request: HTTPRequestHead) -> Answer? {
        guard routerOwes == 0, sending == 0, !quiescing, encoder != nil, request.isKeepAlive, request.version == .http1_1,
              let key = FrontCache.key(for: request), let entry = cache.lookup(key: key) else { return nil }
        let head = request.method == .HEAD
        guard case let .file(path, length) = entry.body else { return Answer(entry: entry, head: head, file: nil, start: .now) }
        guard sendfile else { return nil }
        let descriptor = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        var status = stat()
        guard fstat(descriptor, &status) == 0, Int64(status.st_size) == length else {
            Glibc.close(descriptor)
            return nil
        }
        if head {
            Glibc.close(descriptor)
            return Answer(entry: entry, head: true, file: nil, start: .now)
        }
        return Answer(entry: entry, head: false, file: NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: descriptor), start: .now)
    }

    private func send(_ answer: Answer, context: ChannelHandlerContext) {
        guard let encoder else {
            try? answer.file?.close()
            return
        }
        let entry = answer.entry
        sending += 1
        let cork = answer.file != nil
        if cork { setCork(1, context) }
        let done = context.eventLoop.makePromise(of: Void.self)
        encoder.write(NIOAny(IOData.byteBuffer(entry.encodedHead)), promise: nil)
        encoder.write(NIOAny(IOData.byteBuffer(date.trailer())), promise: answer.head ? done : nil)
        if !answer.head {
            switch entry.body {
            case let .bytes(buffer):
                encoder.write(NIOAny(IOData.byteBuffer(buffer)), promise: done)
                if entry.isDownload { metrics.downloaded(bytes: Int64(buffer.readableBytes)) }
            case let .file(_, length):
                if let file = answer.file {
                    encoder.write(NIOAny(IOData.fileRegion(FileRegion(fileHandle: file, readerIndex: 0, endIndex: Int(length)))), promise: done)
                } else {
                    done.succeed()
                }
                if entry.isDownload { metrics.downloaded(bytes: length) }
            }
        }
        encoder.flush()
        let counterKey = entry.status.code << 1 | (answer.head ? 1 : 0)
        if let counter = counters[counterKey] { counter.increment() } else {
            let counter = metrics.requestCounter(method: answer.head ? "HEAD" : "GET", status: entry.status.code)
            counters[counterKey] = counter
            counter.increment()
        }
        metrics.requestDuration(.now - answer.start)
        metrics.answeredFromCache()
        done.futureResult.assumeIsolated().whenComplete { [self] _ in
            try? answer.file?.close()
            if cork { setCork(0, context) }
            sending -= 1
            if sending == 0, context.channel.isWritable != toldWritable {
                toldWritable = context.channel.isWritable
                context.fireChannelWritabilityChanged()
            }
            if sending == 0, !heldEvents.isEmpty {
                let events = heldEvents
                heldEvents = []
                for event in events { context.fireUserInboundEventTriggered(event) }
            }
        }
    }

    /// Holds partial segments while the head and a file body are written, so that they leave
    /// together in full segments, as `TCP_CORK` does for nginx's `tcp_nopush`.
    private func setCork(_ value: Int, _ context: ChannelHandlerContext) {
        try? context.channel.syncOptions?.setOption(.tcpOption(NIOBSDSocket.Option(rawValue: CInt(TCP_CORK))), value: value)
    }
}

/// The `Date` and `Server` fields (and any fields every answer carries) that end every
/// answer's head, formatted at most once a second.
struct HTTPDate {
    let serverName: String
    private let extra: String
    private var second = -1
    private var buffer = ByteBuffer()

    init(serverName: String, extraHeaders: HTTPFields = [:]) {
        self.serverName = serverName
        self.extra = extraHeaders.map { "\($0.name.rawName): \($0.value)\r\n" }.joined()
    }

    /// `Date: <IMF-fixdate>\r\nServer: <name>\r\n<extra fields>\r\n`
    mutating func trailer() -> ByteBuffer {
        var seconds = time(nil)
        guard seconds != second else { return buffer }
        var parts = tm()
        gmtime_r(&seconds, &parts)
        buffer = ByteBuffer(string: "Date: \(Self.format(parts))\r\nServer: \(serverName)\r\n\(extra)\r\n")
        second = seconds
        return buffer
    }

    static func format(_ parts: tm) -> String {
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
