import Foundation
import SQLiteNIO

extension SQLiteMetadataStore: WebhookStore {
    static let webhooksTable = """
        CREATE TABLE webhooks (name TEXT PRIMARY KEY, cursor INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
            next_attempt_at REAL, last_error TEXT, last_delivered_at REAL, dropped INTEGER NOT NULL DEFAULT 0)
        """

    public func webhookState(name: String) async throws -> WebhookState? {
        try await reader.query("SELECT * FROM webhooks WHERE name = ?", [.text(name)]).first.map { row in
            WebhookState(name: name, cursor: row.column("cursor")?.integer ?? 0, attempts: row.column("attempts")?.integer ?? 0,
                         nextAttemptAt: row.column("next_attempt_at")?.double.map(Date.init(timeIntervalSince1970:)),
                         lastError: row.column("last_error")?.string,
                         lastDeliveredAt: row.column("last_delivered_at")?.double.map(Date.init(timeIntervalSince1970:)),
                         dropped: row.column("dropped")?.integer ?? 0)
        }
    }

    public func saveWebhookState(_ state: WebhookState) async throws {
        try await execute("""
            INSERT INTO webhooks (name, cursor, attempts, next_attempt_at, last_error, last_delivered_at, dropped) VALUES (?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT(name) DO UPDATE SET cursor = excluded.cursor, attempts = excluded.attempts, next_attempt_at = excluded.next_attempt_at,
            last_error = excluded.last_error, last_delivered_at = excluded.last_delivered_at, dropped = excluded.dropped
            """, [.text(state.name), .integer(state.cursor), .integer(state.attempts),
                  state.nextAttemptAt.map { .float($0.timeIntervalSince1970) } ?? .null, Self.optional(state.lastError),
                  state.lastDeliveredAt.map { .float($0.timeIntervalSince1970) } ?? .null, .integer(state.dropped)])
    }
}
