import Foundation

/// How far a webhook has got through the events it is sent.
public struct WebhookState: Sendable, Equatable {
    public var name: String
    /// The last event delivered (or given up on).
    public var cursor: Int
    /// Failed attempts at the event after the cursor.
    public var attempts: Int
    public var nextAttemptAt: Date?
    public var lastError: String?
    public var lastDeliveredAt: Date?
    /// Events given up on after every attempt failed.
    public var dropped: Int

    public init(name: String, cursor: Int, attempts: Int = 0, nextAttemptAt: Date? = nil, lastError: String? = nil,
                lastDeliveredAt: Date? = nil, dropped: Int = 0) {
        self.name = name
        self.cursor = cursor
        self.attempts = attempts
        self.nextAttemptAt = nextAttemptAt
        self.lastError = lastError
        self.lastDeliveredAt = lastDeliveredAt
        self.dropped = dropped
    }
}

/// Where webhook delivery progress is kept, so a restart neither repeats nor skips events.
public protocol WebhookStore: Sendable {
    func webhookState(name: String) async throws -> WebhookState?
    func saveWebhookState(_ state: WebhookState) async throws
}
