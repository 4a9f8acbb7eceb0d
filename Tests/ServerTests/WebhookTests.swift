import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOConcurrencyHelpers
import NIOCore
@testable import Registry
import RegistryAPI
@testable import Server
import TestSupport
import Testing

/// Webhooks: submissions' events posted in order, signed, repeated until the receiver takes them.
@Suite struct WebhookTests {
    /// An HTTP receiver on a loopback port that refuses its first `failures` requests.
    final class Receiver: Sendable {
        struct Delivery: Sendable {
            var event: String
            var delivery: String
            var timestamp: String
            var signature: String
            var body: Data
            var accepted: Bool
        }

        let received = NIOLockedValueBox<[Delivery]>([])
        let failures: Int
        let port = NIOLockedValueBox<Int>(0)

        init(failures: Int) { self.failures = failures }

        struct ReceiverFailure: Error, CustomStringConvertible { let description: String }

        func start() async throws -> Task<Void, any Error> {
            let router = Router()
            router.post("hook") { request, _ -> HTTPResponse.Status in
                let body = try await request.body.collect(upTo: 1 << 20)
                let accepted = self.received.withLockedValue { list in
                    let accepted = list.count >= self.failures
                    list.append(Delivery(event: request.headers[HTTPField.Name("X-Epr-Event")!] ?? "",
                                         delivery: request.headers[HTTPField.Name("X-Epr-Delivery")!] ?? "",
                                         timestamp: request.headers[HTTPField.Name("X-Epr-Timestamp")!] ?? "",
                                         signature: request.headers[HTTPField.Name("X-Epr-Signature")!] ?? "",
                                         body: Data(buffer: body), accepted: accepted))
                    return accepted
                }
                return accepted ? .noContent : .serviceUnavailable
            }
            var logger = Logger(label: "receiver")
            logger.logLevel = .warning
            let app = Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)),
                                  onServerRunning: { [port] channel in port.withLockedValue { $0 = channel.localAddress?.port ?? 0 } },
                                  logger: logger)
            let ended = NIOLockedValueBox<String?>(nil)
            let task = Task {
                do { try await app.runService() } catch {
                    ended.withLockedValue { $0 = "\(error)" }
                    throw error
                }
                ended.withLockedValue { $0 = "returned" }
            }
            // Generous: other tests may keep the machine busy while it starts.
            let deadline = ContinuousClock.now + .seconds(120)
            while port.withLockedValue({ $0 }) == 0, ContinuousClock.now < deadline {
                if let reason = ended.withLockedValue({ $0 }) {
                    throw ReceiverFailure(description: "the webhook receiver stopped before it listened: \(reason)")
                }
                try await Task.sleep(for: .milliseconds(20))
            }
            return task
        }
    }

    static let secret = "webhook-secret-for-the-tests-0123"

    @Test func eventsArriveInOrderSignedAndOnce() async throws {
        let receiver = Receiver(failures: 2)
        let task = try await receiver.start()
        defer { task.cancel() }
        let port = receiver.port.withLockedValue { $0 }
        try #require(port != 0)
        let registry = try await TestRegistry.make {
            $0.webhooks = [.init(name: "ci", url: "http://127.0.0.1:\(port)/hook", secret: Self.secret)]
            $0.autoPublish = []
        }
        let service = registry.server.registry
        let admin = Principal(name: "admin", role: .admin)
        _ = try await service.createUser(name: "rev", role: .reviewer, by: admin)
        let rev = try await service.createToken(for: "rev", name: "t", scopes: ["review"], packages: [], expiresIn: nil, by: admin).secret
        let archive = try registry.archive("xdp-port-filter")
        try await registry.run { client in
            let submission = try await client.publish(archive).json(SubmissionDetail.self).submission
            #expect(submission.state == "awaiting-review")
            let approved = try await client.execute(uri: "/api/v1/submissions/\(submission.id)/approve", method: .post,
                                                    headers: [.authorization: "Bearer \(rev)"])
            #expect(approved.status == .ok)

            // Two refusals: the first event is sent three times (after 1 s, then 2 s), then the rest.
            let deadline = ContinuousClock.now + .seconds(30)
            while receiver.received.withLockedValue({ $0.filter(\.accepted).count }) < 3, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(100))
            }
            let deliveries = receiver.received.withLockedValue { $0 }
            #expect(deliveries.map(\.event) == ["submission.submitted", "submission.submitted", "submission.submitted",
                                                "submission.awaiting-review", "submission.published"])
            #expect(Set(deliveries.prefix(3).map(\.delivery)).count == 1, "a repeated delivery keeps its number")
            let accepted = deliveries.filter(\.accepted)
            #expect(accepted.compactMap { Int($0.delivery) } == accepted.compactMap { Int($0.delivery) }.sorted())
            for delivery in deliveries {
                let mac = HMAC<SHA256>.authenticationCode(for: Data(delivery.timestamp.utf8) + Data(".".utf8) + delivery.body,
                                                          using: SymmetricKey(data: Data(Self.secret.utf8)))
                #expect(delivery.signature == "sha256=" + mac.map { String(format: "%02x", $0) }.joined())
                let payload = try APICoding.decoder.decode(WebhookPayload.self, from: delivery.body)
                #expect(payload.event == delivery.event && String(payload.delivery) == delivery.delivery)
                #expect(payload.submission.id == submission.id && payload.submission.name == "xdp-port-filter")
            }
            let last = try APICoding.decoder.decode(WebhookPayload.self, from: try #require(accepted.last).body)
            #expect(last.actor == "rev" && last.submission.state == "published")

            // Admins see how deliveries went.
            let status = try await client.execute(uri: "/api/v1/webhooks", method: .get, headers: [.authorization: "Bearer \(TestRegistry.token)"])
                .json([WebhookStatus].self)
            #expect(status.count == 1 && status[0].name == "ci" && status[0].failed_attempts == 0 && status[0].dropped == 0)
            #expect(status[0].delivered_through == Int(accepted.last?.delivery ?? "") && status[0].last_error?.contains("503") == true)
            #expect(try await client.execute(uri: "/api/v1/webhooks", method: .get, headers: [.authorization: "Bearer \(rev)"]).status == .forbidden)
        }
    }

    @Test func configurationRefusesWeakOrUnknownSettings() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("epr.toml")
        func load(_ text: String, environment: [String: String] = [:]) throws -> ServerConfiguration {
            try text.write(to: file, atomically: true, encoding: .utf8)
            return try ServerConfiguration.resolve(file: file.path, environment: environment, overrides: [:])
        }
        let good = try load("[server]\n[webhook.ci]\nurl = \"https://ci.example/hook\"\nsecret = \"0123456789abcdef\"\nevents = [\"submission.published\"]\n")
        #expect(good.webhooks == [.init(name: "ci", url: "https://ci.example/hook", secret: "0123456789abcdef", events: ["submission.published"])])
        let fromEnvironment = try load("[server]\n[webhook.ci]\nurl = \"https://ci.example/hook\"\n",
                                       environment: ["EPR_WEBHOOK_CI_SECRET": "a-secret-from-the-environment"])
        #expect(fromEnvironment.webhooks.first?.secret == "a-secret-from-the-environment")
        for text in ["[server]\n[webhook.ci]\nurl = \"https://ci.example/hook\"\nsecret = \"short\"\n",
                     "[server]\n[webhook.ci]\nurl = \"ftp://ci.example/hook\"\nsecret = \"0123456789abcdef\"\n",
                     "[server]\n[webhook.ci]\nurl = \"https://ci.example/hook\"\nsecret = \"0123456789abcdef\"\nevents = [\"x\"]\n",
                     "[server]\n[webhook.ci]\nurl = \"https://ci.example/hook\"\nsecret = \"0123456789abcdef\"\nretries = 3\n"] {
            #expect(throws: ServerConfiguration.Invalid.self) { try load(text) }
        }
    }
}
