import HTTPTypes
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import Registry

/// Whole answers to anonymous reads (package downloads through the L3AFD path, by version or
/// digest, and metadata JSON), kept so that repeated requests are answered on the connection's
/// event loop by ``FrontCacheHandler`` without going through routing, the database or a task.
///
/// An answer is stored by the route that built it, together with the registry's change count
/// read before the route looked anything up; it is served only while that count is unchanged
/// (any publish, yank or deprecation made through this server drops every answer at once) and
/// for at most `ttl` (writes made by other servers sharing the database show within that time,
/// plus the version cache's own time to live). Requests that carry credentials, cookies, ranges
/// or conditions always go to the routes.
final class FrontCache: Sendable {
    enum Body: Sendable, Equatable {
        case bytes(ByteBuffer)
        /// A blob the server sends straight from its file with `sendfile`.
        case file(path: String, length: Int64)
    }

    struct Entry: Sendable {
        let status: HTTPResponse.Status
        let headers: HTTPFields
        let body: Body
        /// Counted as a package download in the metrics.
        let isDownload: Bool
        let generation: UInt64
        let expires: NIODeadline
        /// The status line and fields as sent, without the `Date` and `Server` fields and the
        /// blank line that the connection adds.
        let encodedHead: ByteBuffer
    }

    /// Where a route may store its answer: the request's key and the change count read when
    /// the route began.
    struct Ticket: Sendable {
        let key: String
        let generation: UInt64
    }

    private struct State {
        var entries: [String: Entry] = [:]
        var bytes = 0
    }

    private let state = NIOLockedValueBox(State())
    private let changeCount: @Sendable () -> UInt64
    let ttl: TimeAmount
    /// The most bytes of answers held in memory (file answers count their key and headers).
    let capacity: Int
    let maxEntries: Int

    init(ttl: TimeAmount = .seconds(5), capacity: Int = 32 << 20, maxEntries: Int = 10_000,
         changeCount: @escaping @Sendable () -> UInt64) {
        self.ttl = ttl
        self.capacity = capacity
        self.maxEntries = maxEntries
        self.changeCount = changeCount
    }

    convenience init(registry: RegistryService, capacity: Int) {
        self.init(capacity: capacity) { registry.changeCount }
    }

    /// The key of a request the cache may answer: a GET or HEAD without credentials, cookies,
    /// ranges or conditions. Answers depend on the host (links in metadata), path and query.
    static func key(for request: HTTPRequest) -> String? {
        guard request.method == .get || request.method == .head, let path = request.path else { return nil }
        for field in request.headerFields {
            switch field.name {
            case .authorization, .cookie, .range, .ifRange, .ifMatch, .ifNoneMatch, .ifModifiedSince, .ifUnmodifiedSince:
                return nil
            default: continue
            }
        }
        return (request.authority ?? "") + " " + path
    }

    /// The same key, from a request as the HTTP/1 parser gives it: only origin-form targets
    /// (`/path?query`), which the conversion to HTTP types keeps as they are.
    static func key(for request: HTTPRequestHead) -> String? {
        guard request.method == .GET || request.method == .HEAD, request.uri.utf8.first == UInt8(ascii: "/") else { return nil }
        for name in ["Authorization", "Cookie", "Range", "If-Range", "If-Match", "If-None-Match", "If-Modified-Since", "If-Unmodified-Since"]
        where request.headers.contains(name: name) {
            return nil
        }
        return (request.headers.first(name: "Host") ?? "") + " " + request.uri
    }

    /// Call when a route starts answering a GET: nil when its answer must not be stored.
    func ticket(for request: HTTPRequest) -> Ticket? {
        guard capacity > 0, request.method == .get, let key = Self.key(for: request) else { return nil }
        return Ticket(key: key, generation: changeCount())
    }

    func store(_ ticket: Ticket?, status: HTTPResponse.Status = .ok, headers: HTTPFields, body: Body, isDownload: Bool) {
        guard let ticket else { return }
        let size = Self.size(ticket.key, headers, body)
        guard size <= capacity / 8 else { return }
        let entry = Entry(status: status, headers: headers, body: body, isDownload: isDownload,
                          generation: ticket.generation, expires: .now() + ttl, encodedHead: Self.encode(status, headers))
        let current = changeCount()
        guard current == ticket.generation else { return }
        state.withLockedValue { state in
            if let old = state.entries.removeValue(forKey: ticket.key) { state.bytes -= Self.size(ticket.key, old.headers, old.body) }
            if state.entries.count >= maxEntries || state.bytes + size > capacity {
                Self.evict(&state, now: .now(), generation: current, toFit: size, capacity: capacity, maxEntries: maxEntries)
            }
            state.entries[ticket.key] = entry
            state.bytes += size
        }
    }

    /// The stored answer for a request, when it is still valid.
    func lookup(_ request: HTTPRequest) -> Entry? {
        Self.key(for: request).flatMap { lookup(key: $0) }
    }

    func lookup(key: String) -> Entry? {
        guard capacity > 0, let entry = state.withLockedValue({ $0.entries[key] }) else { return nil }
        guard entry.generation == changeCount(), entry.expires > .now() else { return nil }
        return entry
    }

    var count: Int { state.withLockedValue { $0.entries.count } }

    static func encode(_ status: HTTPResponse.Status, _ headers: HTTPFields) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.writeString("HTTP/1.1 \(status.code) \(status.reasonPhrase)\r\n")
        for field in headers where field.name != .date && field.name != .server && field.name != .connection {
            buffer.writeString("\(field.name.rawName): \(field.value)\r\n")
        }
        return buffer
    }

    /// Drops stale answers first; when that is not enough, the tenth of the rest closest to
    /// expiring, so that a full cache is swept once in a while rather than on every store.
    private static func evict(_ state: inout State, now: NIODeadline, generation: UInt64, toFit size: Int, capacity: Int, maxEntries: Int) {
        state.entries = state.entries.filter { $0.value.generation == generation && $0.value.expires > now }
        state.bytes = state.entries.reduce(0) { $0 + Self.size($1.key, $1.value.headers, $1.value.body) }
        guard state.entries.count >= maxEntries || state.bytes + size > capacity else { return }
        let byExpiry = state.entries.sorted { $0.value.expires < $1.value.expires }
        let entryTarget = maxEntries - max(1, maxEntries / 10), byteTarget = capacity - max(size, capacity / 10)
        for (key, entry) in byExpiry where state.entries.count > entryTarget || state.bytes > byteTarget {
            state.entries[key] = nil
            state.bytes -= Self.size(key, entry.headers, entry.body)
        }
    }

    private static func size(_ key: String, _ headers: HTTPFields, _ body: Body) -> Int {
        var size = key.utf8.count + 256
        for field in headers { size += field.name.rawName.utf8.count + field.value.utf8.count + 4 }
        if case let .bytes(buffer) = body { size += buffer.readableBytes } else { size += 64 }
        return size
    }
}
