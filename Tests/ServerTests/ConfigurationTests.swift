import Checks
import Foundation
import Server
import TestSupport
import Testing

/// Settings come from flags, then the environment, then the config file, then defaults.
@Suite struct ConfigurationTests {
    @Test func defaults() throws {
        let configuration = try ServerConfiguration.resolve(file: nil, environment: [:], overrides: [:])
        #expect(configuration == ServerConfiguration())
        #expect(configuration.port == 8080 && configuration.host == "127.0.0.1" && configuration.dataDirectory == "epr-data")
    }

    @Test func precedence() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("epr.toml")
        try """
        [server]
        data = "/srv/epr"
        port = 9000
        host = "0.0.0.0"
        max_upload_size = "512M"
        public_url = "https://epr.example.org/"
        log_level = "notice"
        """.write(to: file, atomically: true, encoding: .utf8)
        let fromFile = try ServerConfiguration.resolve(file: file.path, environment: [:], overrides: [:])
        #expect(fromFile.dataDirectory == "/srv/epr")
        #expect(fromFile.port == 9000)
        #expect(fromFile.maxUploadSize == 512 << 20)
        #expect(fromFile.publicURL == "https://epr.example.org")
        #expect(fromFile.logLevel == "notice")
        let fromEnvironment = try ServerConfiguration.resolve(file: file.path, environment: ["EPR_PORT": "9100", "EPR_MAX_UPLOAD_SIZE": "1024"],
                                                              overrides: [:])
        #expect(fromEnvironment.port == 9100)
        #expect(fromEnvironment.maxUploadSize == 1024)
        #expect(fromEnvironment.host == "0.0.0.0")
        let fromFlags = try ServerConfiguration.resolve(file: file.path, environment: ["EPR_PORT": "9100"], overrides: ["port": "9200"])
        #expect(fromFlags.port == 9200)
    }

    @Test func trustedProxies() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("epr.toml")
        try "[server]\ntrusted_proxies = [\"10.0.0.2\", \"::1\"]\n".write(to: file, atomically: true, encoding: .utf8)
        #expect(try ServerConfiguration.resolve(file: file.path, environment: [:], overrides: [:]).trustedProxies == ["10.0.0.2", "::1"])
        #expect(try ServerConfiguration.resolve(file: nil, environment: ["EPR_TRUSTED_PROXIES": "10.0.0.2, 10.0.0.3"], overrides: [:])
            .trustedProxies == ["10.0.0.2", "10.0.0.3"])
        #expect(throws: ServerConfiguration.Invalid.self) {
            try ServerConfiguration.resolve(file: nil, environment: ["EPR_TRUSTED_PROXIES": "proxy.example"], overrides: [:])
        }
    }

    /// The checks' settings reach the check workers as they were configured.
    @Test func checkSettings() throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("epr.toml")
        try "[server]\nverifier = \"host\"\nverifier_timeout = 90\nsources_check = false\n\n[scanner.clam]\ncommand = [\"/usr/bin/clamscan\", \"-r\"]\ntimeout = 40\npaths = [\"/var/lib/clamav\"]\n"
            .write(to: file, atomically: true, encoding: .utf8)
        let settings = try ServerConfiguration.resolve(file: file.path, environment: [:], overrides: [:]).checkSettings
        #expect(settings == CheckSettings(verifier: .init(timeout: 90, host: true), sources: nil,
                                          scanners: [.init(name: "clam", command: ["/usr/bin/clamscan", "-r"], timeout: 40, paths: ["/var/lib/clamav"])]))
        #expect(settings.jobs == ["verifier", "scanner.clam"] && settings.longestTimeout == 90)
        let plain = try ServerConfiguration.resolve(file: nil, environment: [:], overrides: [:]).checkSettings
        #expect(plain.verifier == .init(timeout: 60, host: false) && plain.sources != nil && plain.jobs == ["verifier", "sources"])
    }

    @Test func cachesAndThreads() throws {
        let configuration = try ServerConfiguration.resolve(
            file: nil, environment: ["EPR_ANSWER_CACHE_SIZE": "8M", "EPR_BLOB_CACHE_SIZE": "0", "EPR_THREADS": "3"], overrides: [:])
        #expect(configuration.answerCacheSize == 8 << 20)
        #expect(configuration.blobCacheSize == 0)
        #expect(configuration.threads == 3)
        let limits = try ServerConfiguration.resolve(
            file: nil, environment: ["EPR_TOKEN_REQUESTS_PER_MINUTE": "0", "EPR_PUBLISHES_PER_HOUR": "30", "EPR_AUTH_FAILURES_BEFORE_LOCKOUT": "5"],
            overrides: [:])
        #expect(limits.tokenRequestsPerMinute == 0 && limits.publishesPerHour == 30 && limits.authFailuresBeforeLockout == 5)
        #expect(throws: ServerConfiguration.Invalid.self) {
            try ServerConfiguration.resolve(file: nil, environment: ["EPR_PUBLISHES_PER_HOUR": "many"], overrides: [:])
        }
        #expect(throws: ServerConfiguration.Invalid.self) {
            try ServerConfiguration.resolve(file: nil, environment: ["EPR_THREADS": "-1"], overrides: [:])
        }
        #expect(throws: ServerConfiguration.Invalid.self) {
            try ServerConfiguration.resolve(file: nil, environment: ["EPR_ANSWER_CACHE_SIZE": "big"], overrides: [:])
        }
    }

    @Test(arguments: [
        ("[server]\nport = 70000", "port"), ("[server]\nmax_upload_size = \"lots\"", "max_upload_size"),
        ("[server]\npublic_url = \"ftp://x\"", "public_url"), ("[server]\nlog_level = \"loud\"", "log_level"),
        ("[server]\nprot = 1", "server.prot"), ("[server]\nport = true", "port"), ("[client]\nx = 1", "[server]"),
        ("[server]\n[scanner.a]\ncommand = [\"x\"]\npaths = [\"relative\"]", "scanner.a.paths"),
        ("[server]\n[scanner.a]\ncommand = [\"x\"]\npaths = [\"/var/../etc\"]", "scanner.a.paths"),
    ] as [(String, String)])
    func invalidFilesNameTheProblem(text: String, mention: String) throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("epr.toml")
        try text.write(to: file, atomically: true, encoding: .utf8)
        do {
            _ = try ServerConfiguration.resolve(file: file.path, environment: [:], overrides: [:])
            Issue.record("accepted \(text)")
        } catch {
            #expect("\(error)".contains(mention), "\(error)")
        }
    }
}
