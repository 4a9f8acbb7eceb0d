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

/// The HTTP/1 connection of `epr serve`: Hummingbird's, with ``FrontCacheHandler`` placed right
/// after the HTTP/1 parser so that repeated reads are answered before any conversion or routing.
struct RegistryHTTP1Channel: HTTPChannelHandler {
    typealias Value = NIOAsyncChannel<HTTPRequestPart, HTTPResponsePart>

    let responder: HTTPChannelHandler.Responder
    let cache: FrontCache
    let metrics: ServerMetrics

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                withPipeliningAssistance: false, // the router answers one request at a time, in order
                withErrorHandling: false, // Hummingbird answers parse errors itself
                withOutboundHeaderValidation: false, // HTTP types validate fields already
                withEncoderConfiguration: .init(),
                withDecoderLimitConfiguration: .init())
            try channel.pipeline.syncOperations.addHandler(FrontCacheHandler(cache: cache, metrics: metrics))
            try channel.pipeline.syncOperations.addHandler(HTTP1ToHTTPServerCodec(secure: false))
            try channel.pipeline.syncOperations.addHandler(HTTPConnectionStateHandler(idleTimeout: nil, logger: logger))
            return try NIOAsyncChannel(wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
        }
    }

    func handle(value asyncChannel: Value, logger: Logger) async {
        await handleHTTP(asyncChannel: asyncChannel, logger: logger)
    }
}

extension HTTPServerBuilder {
    /// HTTP/1 with the answer cache in front of the router.
    static func registry(cache: FrontCache, metrics: ServerMetrics) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in RegistryHTTP1Channel(responder: responder, cache: cache, metrics: metrics) }
    }
}

/// Answers requests that ``FrontCache`` holds straight on the connection's event loop: the
/// stored response head, already encoded, then the body from memory or, for blobs, with
/// `sendfile`. Everything else passes on to the router unchanged.
///
/// Responses leave in request order: a request is answered here only when the router owes no
/// response on this connection, so a client pipelining requests never gets them out of order.
/// On graceful shutdown the connection closes only once an answer being sent from here is out.
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
        /// The request being read is answered here once its end arrives.
        case answering(Answer)
    }

    private let cache: FrontCache
    private let metrics: ServerMetrics
    private var reading = Reading.idle
    /// Requests passed to the router whose response has not ended yet.
    private var routerOwes = 0
    /// Answers written here whose last byte is not yet on the wire.
    private var sending = 0
    private var quiescing = false
    private var heldQuiesce: Any?
    /// The response encoder's context: answers are written below it, already encoded.
    private var encoder: ChannelHandlerContext?
    private var date = HTTPDate()
    /// The writability the handlers after this one were last told. Answers sent from here make
    /// the channel briefly unwritable; those changes are kept from the router, which is not
    /// writing meanwhile, and only a net change is passed on once the answer is out.
    private var toldWritable = true
    /// Request counters by status and method, looked up once per connection.
    private var counters: [Int: Prometheus.Counter] = [:]

    init(cache: FrontCache, metrics: ServerMetrics) {
        self.cache = cache
        self.metrics = metrics
    }

    func handlerAdded(context: ChannelHandlerContext) {
        encoder = try? context.pipeline.syncOperations.context(handlerType: HTTPResponseEncoder.self)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if case let .answering(answer) = reading { try? answer.file?.close() }
        reading = .idle
        encoder = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case let .head(request):
            if let answer = answer(for: request) {
                reading = .answering(answer)
                return
            }
            reading = .forwarding
            routerOwes += 1
            context.fireChannelRead(data)
        case .body:
            if case .answering = reading { return }
            context.fireChannelRead(data)
        case .end:
            if case let .answering(answer) = reading {
                reading = .idle
                send(answer, context: context)
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
        if event is ChannelShouldQuiesceEvent {
            quiescing = true
            if sending > 0 || isAnswering {
                heldQuiesce = event
                return
            }
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        guard sending == 0 else { return }
        toldWritable = context.channel.isWritable
        context.fireChannelWritabilityChanged()
    }

    private var isAnswering: Bool {
        if case .answering = reading { return true }
        return false
    }

    /// How to answer a request here, or nil to pass it to the router: when the router owes an
    /// earlier response, when shutting down, for HTTP/1.0 or a closing connection, when nothing
    /// valid is stored, or when a blob's file cannot be opened (the router knows how to say why).
    private func answer(for request: HTTPRequestHead) -> Answer? {
        guard routerOwes == 0, !quiescing, encoder != nil, request.isKeepAlive, request.version == .http1_1,
              let key = FrontCache.key(for: request), let entry = cache.lookup(key: key) else { return nil }
        let head = request.method == .HEAD
        guard case let .file(path, _) = entry.body, !head else { return Answer(entry: entry, head: head, file: nil, start: .now) }
        let descriptor = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        return Answer(entry: entry, head: head, file: NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: descriptor), start: .now)
    }

    private func send(_ answer: Answer, context: ChannelHandlerContext) {
        guard let encoder else { return }
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
            if sending == 0, !isAnswering, let event = heldQuiesce {
                heldQuiesce = nil
                context.fireUserInboundEventTriggered(event)
            }
        }
    }

    /// Holds partial segments while the head and a file body are written, so that they leave
    /// together in full segments, as `TCP_CORK` does for nginx's `tcp_nopush`.
    private func setCork(_ value: Int, _ context: ChannelHandlerContext) {
        try? context.channel.syncOptions?.setOption(.tcpOption(NIOBSDSocket.Option(rawValue: CInt(TCP_CORK))), value: value)
    }
}

/// The `Date` and `Server` fields that end every answer's head, formatted at most once a second.
struct HTTPDate {
    private var second = -1
    private var buffer = ByteBuffer()

    /// `Date: <IMF-fixdate>\r\nServer: epr\r\n\r\n`
    mutating func trailer() -> ByteBuffer {
        var seconds = time(nil)
        guard seconds != second else { return buffer }
        var parts = tm()
        gmtime_r(&seconds, &parts)
        buffer = ByteBuffer(string: "Date: \(Self.format(parts))\r\nServer: epr\r\n\r\n")
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
