import Foundation
import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// Answers requests that ``FrontCache`` holds straight on the connection's event loop, sending
/// blob files with `sendfile`; everything else passes on to the router unchanged.
///
/// It sits between the HTTP/1 codec and the router. Responses leave in request order: a
/// request is answered here only when the router owes no response on this connection, so a
/// client pipelining requests never gets them out of order. On graceful shutdown the
/// connection closes only once an answer being sent from here is complete.
final class FrontCacheHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private enum Reading {
        case idle
        /// The request being read goes to the router.
        case forwarding
        /// The request being read is answered here once its end arrives.
        case answering(FrontCache.Entry, head: Bool, file: NIOFileHandle?, start: ContinuousClock.Instant)
    }

    private let cache: FrontCache
    private let metrics: ServerMetrics
    private let serverName: String
    private var reading = Reading.idle
    /// Requests passed to the router whose response has not ended yet.
    private var routerOwes = 0
    /// Answers written here whose last part is not yet on the wire.
    private var sending = 0
    private var quiescing = false
    private var heldQuiesce: Any?
    /// The codec's context, through which file bodies are written as HTTP/1 parts.
    private var codec: ChannelHandlerContext?
    private var date = HTTPDate()

    init(cache: FrontCache, metrics: ServerMetrics, serverName: String = "epr") {
        self.cache = cache
        self.metrics = metrics
        self.serverName = serverName
    }

    func handlerAdded(context: ChannelHandlerContext) {
        codec = try? context.pipeline.syncOperations.context(handlerType: HTTP1ToHTTPServerCodec.self)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        if case let .answering(_, _, file, _) = reading { try? file?.close() }
        reading = .idle
        codec = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case let .head(request):
            if let answering = fastAnswer(for: request) {
                reading = answering
                return
            }
            reading = .forwarding
            routerOwes += 1
            context.fireChannelRead(data)
        case .body:
            if case .answering = reading { return }
            context.fireChannelRead(data)
        case .end:
            if case let .answering(entry, head, file, start) = reading {
                reading = .idle
                answer(entry, head: head, file: file, start: start, context: context)
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

    private var isAnswering: Bool {
        if case .answering = reading { return true }
        return false
    }

    /// How to answer a request here, or nil to send it to the router: when the router owes an
    /// earlier response, when shutting down, when nothing valid is stored, or when a blob's
    /// file cannot be opened (the router knows how to say why).
    private func fastAnswer(for request: HTTPRequest) -> Reading? {
        guard routerOwes == 0, !quiescing, let entry = cache.lookup(request) else { return nil }
        let head = request.method == .head
        guard case let .file(path, _) = entry.body, !head else { return .answering(entry, head: head, file: nil, start: .now) }
        guard codec != nil else { return nil }
        let descriptor = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        return .answering(entry, head: head, file: NIOFileHandle(_deprecatedTakingOwnershipOfDescriptor: descriptor), start: .now)
    }

    /// Holds partial segments while the head and a file body are written, so that they leave
    /// together in full segments, as `TCP_CORK` does for nginx's `tcp_nopush`.
    private func setCork(_ value: Int, _ context: ChannelHandlerContext) {
        try? context.channel.syncOptions?.setOption(.tcpOption(NIOBSDSocket.Option(rawValue: CInt(TCP_CORK))), value: value)
    }

    private func answer(_ entry: FrontCache.Entry, head: Bool, file: NIOFileHandle?, start: ContinuousClock.Instant,
                        context: ChannelHandlerContext) {
        var fields = entry.headers
        fields[.date] = date.now()
        fields[.server] = serverName
        sending += 1
        let cork = file != nil
        if cork { setCork(1, context) }
        context.write(wrapOutboundOut(.head(HTTPResponse(status: entry.status, headerFields: fields))), promise: nil)
        if !head {
            switch entry.body {
            case let .bytes(buffer):
                context.write(wrapOutboundOut(.body(buffer)), promise: nil)
            case let .file(_, length):
                if let file, let codec {
                    let region = FileRegion(fileHandle: file, readerIndex: 0, endIndex: Int(length))
                    codec.write(NIOAny(HTTPServerResponsePart.body(.fileRegion(region))), promise: nil)
                }
            }
            if entry.isDownload, case let .file(_, length) = entry.body { metrics.downloaded(bytes: length) }
            if entry.isDownload, case let .bytes(buffer) = entry.body { metrics.downloaded(bytes: Int64(buffer.readableBytes)) }
        }
        let done = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: done)
        metrics.request(method: head ? "HEAD" : "GET", status: entry.status.code, duration: .now - start)
        metrics.answeredFromCache()
        done.futureResult.assumeIsolated().whenComplete { [self] _ in
            try? file?.close()
            if cork { setCork(0, context) }
            sending -= 1
            if sending == 0, !isAnswering, let event = heldQuiesce {
                heldQuiesce = nil
                context.fireUserInboundEventTriggered(event)
            }
        }
    }
}

/// The `Date` header's IMF-fixdate, formatted at most once a second.
struct HTTPDate {
    private var second = -1
    private var text = ""

    mutating func now() -> String {
        var seconds = time(nil)
        guard seconds != second else { return text }
        var parts = tm()
        gmtime_r(&seconds, &parts)
        text = Self.format(parts)
        second = seconds
        return text
    }

    static func format(_ parts: tm) -> String {
        let days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"]
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(days[Int(parts.tm_wday)]), \(two(parts.tm_mday)) \(months[Int(parts.tm_mon)]) \(parts.tm_year + 1900) "
            + "\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)) GMT"
    }
}
