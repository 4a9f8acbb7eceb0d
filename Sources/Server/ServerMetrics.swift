import Hummingbird
import NIOConcurrencyHelpers
import Prometheus

/// Prometheus metrics of one server: requests by method and status, request durations,
/// publishes and downloaded bytes. Served at `/metrics`.
final class ServerMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let requestCounters = NIOLockedValueBox<[String: Counter]>([:])
    private let durations: DurationHistogram
    private let publishes: Counter
    private let downloads: Counter
    private let downloadBytes: Counter
    private let repeatedAnswers: Counter

    init() {
        durations = registry.makeDurationHistogram(
            descriptor: .init(metricName: "epr_http_request_duration", unitName: "seconds", helpText: "Time to answer HTTP requests"),
            buckets: [.milliseconds(1), .milliseconds(5), .milliseconds(25), .milliseconds(100), .milliseconds(500), .seconds(2), .seconds(10)])
        publishes = registry.makeCounter(descriptor: .init(metricName: "epr_packages_published", unitName: "total", helpText: "Package versions published"))
        downloads = registry.makeCounter(descriptor: .init(metricName: "epr_downloads", unitName: "total", helpText: "Package and blob downloads started"))
        downloadBytes = registry.makeCounter(descriptor: .init(metricName: "epr_download_bytes", unitName: "total", helpText: "Bytes of package downloads started"))
        repeatedAnswers = registry.makeCounter(descriptor: .init(metricName: "epr_answer_cache_hits", unitName: "total", helpText: "Requests answered from the answer cache"))
    }

    func request(method: String, status: Int, duration: Duration) {
        requestCounter(method: method, status: status).increment()
        durations.record(duration)
    }

    /// The counter of requests with this method and status, for callers that keep it.
    func requestCounter(method: String, status: Int) -> Counter {
        let key = "\(method) \(status)"
        return requestCounters.withLockedValue { counters in
            if let existing = counters[key] { return existing }
            let made = registry.makeCounter(descriptor: .init(metricName: "epr_http_requests", unitName: "total", helpText: "HTTP requests answered"),
                                            labels: [("method", method), ("status", String(status))])
            counters[key] = made
            return made
        }
    }

    func requestDuration(_ duration: Duration) { durations.record(duration) }

    func published() { publishes.increment() }

    func answeredFromCache() { repeatedAnswers.increment() }

    func downloaded(bytes: Int64) {
        downloads.increment()
        downloadBytes.increment(by: bytes)
    }

    func render() -> [UInt8] { registry.emitToBuffer() }
}

/// Counts and times every request for the metrics.
struct MetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: ServerMetrics

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let start = ContinuousClock.now
        let response = try await next(request, context)
        metrics.request(method: request.method.rawValue, status: response.status.code, duration: ContinuousClock.now - start)
        return response
    }
}
