import Foundation
import Registry
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1

/// Limits on one connection, so that a client cannot hold the server's connections or memory
/// with requests it never finishes or answers it never reads.
struct ConnectionLimits: Sendable, Equatable {
    /// From a request's first byte to the end of its head.
    var headerTimeout: Duration = .seconds(10)
    /// With nothing read or written, no answer owed and none being sent; also the grace a
    /// request body or an answer gets before its rate counts.
    var idleTimeout: Duration = .seconds(60)
    /// The slowest a request body may arrive, on average, past the grace.
    var bodyBytesPerSecond = 1024
    /// The slowest an answer may be taken, on average, past the grace.
    var answerBytesPerSecond = 64 << 10
    /// Open connections from one address at once; 0: no limit.
    var perAddress = 1024
    /// The largest request head (one field, and all together).
    var headerBytes = 64 << 10
}

/// Counts the open connections of each address, shared by every connection of a server.
final class ConnectionCounter: Sendable {
    private let counts = NIOLockedValueBox<[String: Int]>([:])

    /// The key an address is counted under: itself, or for IPv6 its /64 network (what one
    /// client is usually given).
    static func key(_ address: String) -> String { Lockout.addressKey(address) }

    /// Takes a place for `address`, or false when it has `limit` connections already.
    func take(_ address: String, limit: Int) -> Bool {
        counts.withLockedValue { counts in
            let now = counts[address, default: 0]
            guard limit == 0 || now < limit else { return false }
            counts[address] = now + 1
            return true
        }
    }

    func release(_ address: String) {
        counts.withLockedValue { counts in
            let left = counts[address, default: 1] - 1
            counts[address] = left > 0 ? left : nil
        }
    }

    func count(_ address: String) -> Int { counts.withLockedValue { $0[address, default: 0] } }
}

/// The first handler of a connection, on its raw bytes: refuses a connection beyond the
/// address's limit, and closes one whose request head is not complete within the header
/// timeout (counted from the request's first byte) or that stays idle past the idle timeout.
/// ``RequestHeadWatch``, after the HTTP parser, tells it when a head is complete and when a
/// request has been read in full (an answer is then owed, however long it takes).
final class ConnectionGuard: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = IOData
    typealias OutboundOut = IOData

    private let limits: ConnectionLimits
    private let counter: ConnectionCounter
    private var address: String?
    /// When the head being read began, while one is being read.
    private var headStarted: NIODeadline?
    private var readingHead = true
    /// Requests read in full whose answer has not started going out.
    private var owed = 0
    /// Writes not yet on the wire, and when they must all be out (the grace, and the time
    /// their bytes take at the slowest rate allowed).
    private var pendingWrites = 0
    private var writesDue: NIODeadline?
    /// While a request's body is read: when its head ended, and the bytes read since.
    private var bodyStarted: NIODeadline?
    private var bodyBytes = 0
    private var lastActivity = NIODeadline.now()
    private var timer: Scheduled<Void>?

    init(limits: ConnectionLimits, counter: ConnectionCounter) {
        self.limits = limits
        self.counter = counter
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { activate(context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        if address == nil { activate(context) }
        context.fireChannelActive()
    }

    private func activate(_ context: ChannelHandlerContext) {
        let address = ConnectionCounter.key(context.channel.remoteAddress?.ipAddress ?? "?")
        guard counter.take(address, limit: limits.perAddress) else {
            context.close(promise: nil)
            return
        }
        self.address = address
        lastActivity = .now()
        schedule(context, at: lastActivity + TimeAmount(limits.idleTimeout))
    }

    func channelInactive(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        if let address {
            counter.release(address)
            self.address = nil
        }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastActivity = .now()
        if bodyStarted != nil { bodyBytes += unwrapInboundIn(data).readableBytes }
        if readingHead, headStarted == nil {
            headStarted = lastActivity
            schedule(context, at: lastActivity + TimeAmount(limits.headerTimeout))
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        lastActivity = .now()
        owed = 0
        pendingWrites += 1
        let bytes: Int
        switch unwrapOutboundIn(data) {
        case let .byteBuffer(buffer): bytes = buffer.readableBytes
        case let .fileRegion(region): bytes = region.readableBytes
        }
        let due = lastActivity + TimeAmount(limits.idleTimeout)
            + .nanoseconds(Int64(bytes) * 1_000_000_000 / Int64(max(1, limits.answerBytesPerSecond)))
        writesDue = max(writesDue ?? due, due)
        let written = context.eventLoop.makePromise(of: Void.self)
        written.futureResult.assumeIsolatedUnsafeUnchecked().whenComplete { _ in
            self.pendingWrites -= 1
            if self.pendingWrites == 0 { self.writesDue = nil }
            self.lastActivity = .now()
        }
        if let promise { written.futureResult.cascade(to: promise) }
        context.write(data, promise: written)
    }

    /// The head of the request being read is complete: its body, if any, follows.
    func headComplete() {
        readingHead = false
        headStarted = nil
        bodyStarted = .now()
        bodyBytes = 0
    }

    /// The request being read has been read in full: an answer is owed, and the next byte
    /// begins another head.
    func requestComplete() {
        owed += 1
        readingHead = true
        headStarted = nil
        bodyStarted = nil
    }

    private func schedule(_ context: ChannelHandlerContext, at deadline: NIODeadline) {
        if let timer {
            // The earlier deadline stands; the check then reschedules for the next one.
            guard deadline < scheduledFor else { return }
            timer.cancel()
        }
        scheduledFor = deadline
        timer = context.eventLoop.assumeIsolatedUnsafeUnchecked().scheduleTask(deadline: deadline) { self.check(context) }
    }

    private var scheduledFor = NIODeadline.distantFuture

    private func check(_ context: ChannelHandlerContext) {
        timer = nil
        scheduledFor = .distantFuture
        guard context.channel.isActive else { return }
        let now = NIODeadline.now()
        if let started = headStarted {
            let deadline = started + TimeAmount(limits.headerTimeout)
            if now >= deadline {
                context.close(promise: nil)
                return
            }
            schedule(context, at: deadline)
        }
        // A body that trickles in, or an answer that is not taken, past the grace.
        if let started = bodyStarted, now - started > TimeAmount(limits.idleTimeout) {
            let seconds = Double((now - started).nanoseconds) / 1e9
            if Double(bodyBytes) < seconds * Double(limits.bodyBytesPerSecond) {
                context.close(promise: nil)
                return
            }
        }
        if pendingWrites > 0, let due = writesDue, now >= due {
            context.close(promise: nil)
            return
        }
        if owed == 0, pendingWrites == 0, headStarted == nil, bodyStarted == nil {
            let deadline = lastActivity + TimeAmount(limits.idleTimeout)
            if now >= deadline {
                context.close(promise: nil)
                return
            }
            schedule(context, at: deadline)
        } else {
            // Busy: look again after a while, or when the answer is due.
            schedule(context, at: min(now + TimeAmount(limits.idleTimeout), writesDue ?? .distantFuture))
        }
    }
}

/// Placed right after the HTTP parser: tells the connection's ``ConnectionGuard`` when a
/// request's head is complete and when the request has been read in full.
final class RequestHeadWatch: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart

    private let guardHandler: ConnectionGuard

    init(_ guardHandler: ConnectionGuard) { self.guardHandler = guardHandler }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head: guardHandler.headComplete()
        case .end: guardHandler.requestComplete()
        case .body: break
        }
        context.fireChannelRead(data)
    }
}
