import AsyncHTTPClient
import Crypto
import Foundation
import Logging
import NIOCore
import Registry
import RegistryAPI
import Storage

/// Sends submissions' events to the configured webhooks, each signed with the webhook's secret.
///
/// Every webhook follows the event log in order from where it was when first configured, and
/// its progress is stored, so a restart neither repeats delivered events nor skips any. An event
/// is delivered until the receiver answers 2xx, with growing pauses between attempts; after
/// the last attempt it is given up on (and counted), so one broken receiver cannot hold the rest
/// back for ever. Deliveries are at least once: a receiver keys on `X-Epr-Delivery`.
///
/// Each request carries `X-Epr-Event`, `X-Epr-Delivery` (the event's number),
/// `X-Epr-Timestamp` (Unix seconds) and `X-Epr-Signature: sha256=<hex>`, the HMAC-SHA256 with the
/// secret of `<timestamp>.<body>`.
struct WebhookDispatcher: Sendable {
    struct Webhook: Sendable, Equatable {
        var name: String
        var url: String
        var secret: String
        /// Event names it wants; nil for all.
        var events: Set<String>?
    }

    let webhooks: [Webhook]
    let registry: RegistryService
    let store: any WebhookStore & SubmissionStore
    let http: HTTPClient
    let logger: Logger
    /// Attempts at one event before it is given up on.
    var maxAttempts = 8
    /// The pause after the first failed attempt; it doubles with each.
    var firstPause: Duration = .seconds(1)

    func run() async {
        await withTaskGroup(of: Void.self) { group in
            for webhook in webhooks { group.addTask { await follow(webhook) } }
        }
    }

    /// The event name webhooks see for an event of the log.
    static func name(_ event: ReviewEvent) -> String {
        switch event.kind {
        case .comment: "submission.commented"
        case .approve: event.state == .published ? "submission.published" : "submission.approved"
        default: "submission.\(event.state?.rawValue ?? "changed")"
        }
    }

    static func signature(secret: String, timestamp: String, body: Data) -> String {
        let code = HMAC<SHA256>.authenticationCode(for: Data(timestamp.utf8) + Data(".".utf8) + body, using: SymmetricKey(data: Data(secret.utf8)))
        return "sha256=" + code.map { String(format: "%02x", $0) }.joined()
    }

    func follow(_ webhook: Webhook) async {
        var state: WebhookState
        do {
            // A new webhook starts from now: it is not sent the past.
            if let saved = try await store.webhookState(name: webhook.name) {
                state = saved
            } else {
                state = WebhookState(name: webhook.name, cursor: try await store.lastEventID())
            }
            try await store.saveWebhookState(state)
        } catch {
            if !Task.isCancelled { logger.error("webhook cannot start", metadata: ["webhook": "\(webhook.name)", "error": "\(error)"]) }
            return
        }
        while !Task.isCancelled {
            let generation = registry.notices.generation
            if let next = state.nextAttemptAt, next > Date() {
                try? await Task.sleep(for: .milliseconds(Int(next.timeIntervalSinceNow * 1000) + 1))
                continue
            }
            let events: [ReviewEvent]
            do { events = try await store.events(after: state.cursor, limit: 100) } catch {
                if Task.isCancelled { return }
                logger.error("webhook cannot read events", metadata: ["webhook": "\(webhook.name)", "error": "\(error)"])
                try? await Task.sleep(for: .seconds(5))
                continue
            }
            if events.isEmpty {
                await registry.notices.wait(after: generation, upTo: .seconds(5))
                continue
            }
            for event in events {
                let name = Self.name(event)
                if let wanted = webhook.events, !wanted.contains(name) {
                    state.cursor = event.id
                    continue
                }
                do {
                    try await deliver(event, name: name, to: webhook)
                    state.cursor = event.id
                    state.attempts = 0
                    state.nextAttemptAt = nil
                    state.lastDeliveredAt = Date()
                    // Saved after each delivery, so a restart repeats none that went through.
                    try? await store.saveWebhookState(state)
                } catch {
                    if Task.isCancelled { return }
                    state.attempts += 1
                    state.lastError = "\(error)"
                    if state.attempts >= maxAttempts {
                        logger.error("webhook gave up on an event", metadata: ["webhook": "\(webhook.name)", "event": "\(event.id)", "error": "\(error)"])
                        state.cursor = event.id
                        state.attempts = 0
                        state.nextAttemptAt = nil
                        state.dropped += 1
                    } else {
                        let pause = firstPause * (1 << min(state.attempts - 1, 16))
                        state.nextAttemptAt = Date().addingTimeInterval(Double(pause.components.seconds) + Double(pause.components.attoseconds) / 1e18)
                        logger.warning("webhook delivery failed", metadata: ["webhook": "\(webhook.name)", "event": "\(event.id)",
                                                                             "attempt": "\(state.attempts)", "error": "\(error)"])
                    }
                    break
                }
            }
            do { try await store.saveWebhookState(state) } catch {
                if !Task.isCancelled { logger.error("webhook progress not saved", metadata: ["webhook": "\(webhook.name)", "error": "\(error)"]) }
            }
        }
    }

    struct Refused: Error, CustomStringConvertible {
        let status: Int
        var description: String { "the receiver answered \(status)" }
    }

    func deliver(_ event: ReviewEvent, name: String, to webhook: Webhook) async throws {
        guard let submission = try await store.submission(id: event.submission) else { return }
        let payload = WebhookPayload(event: name, delivery: event.id, at: event.at, actor: event.actor, message: event.message,
                                     submission: SubmissionRoutes.summary(submission))
        let body = try APICoding.encoder.encode(payload)
        let timestamp = String(Int(Date().timeIntervalSince1970))
        var request = HTTPClientRequest(url: webhook.url)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.headers.add(name: "User-Agent", value: "epr-webhook")
        request.headers.add(name: "X-Epr-Event", value: name)
        request.headers.add(name: "X-Epr-Delivery", value: String(event.id))
        request.headers.add(name: "X-Epr-Timestamp", value: timestamp)
        request.headers.add(name: "X-Epr-Signature", value: Self.signature(secret: webhook.secret, timestamp: timestamp, body: body))
        request.body = .bytes(ByteBuffer(bytes: body))
        let response = try await http.execute(request, timeout: .seconds(15))
        _ = try? await response.body.collect(upTo: 64 * 1024)
        guard (200..<300).contains(Int(response.status.code)) else { throw Refused(status: Int(response.status.code)) }
    }

    /// Each webhook's progress, for admins.
    func status() async throws -> [WebhookStatus] {
        var list: [WebhookStatus] = []
        for webhook in webhooks {
            let state = try await store.webhookState(name: webhook.name)
            list.append(WebhookStatus(name: webhook.name, url: webhook.url, events: webhook.events.map { $0.sorted() },
                                      delivered_through: state?.cursor ?? 0, failed_attempts: state?.attempts ?? 0,
                                      next_attempt_at: state?.nextAttemptAt, last_error: state?.lastError,
                                      last_delivered_at: state?.lastDeliveredAt, dropped: state?.dropped ?? 0))
        }
        return list
    }
}
