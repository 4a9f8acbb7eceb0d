import Foundation
import NIOCore
import PackageFormat
import Registry

/// How `epr serve` runs. Values come from command-line flags, then `EPR_*` environment
/// variables, then a TOML config file, then the defaults (docs/configuration.md).
public struct ServerConfiguration: Sendable, Equatable {
    public var dataDirectory = "epr-data"
    public var host = "127.0.0.1"
    public var port = 8080
    /// The largest package upload accepted, in bytes (larger requests get 413).
    public var maxUploadSize: Int64 = 2 << 30
    /// The URL clients reach the server at, for links and generated L3AFD configs.
    public var publicURL: String?
    public var logLevel = "info"
    /// Seconds in-flight requests get to finish after SIGTERM.
    public var shutdownGracePeriod = 30
    /// Bytes of package archives (each at most 8 MiB) kept in memory for downloads; 0 disables.
    public var blobCacheSize: Int64 = 64 << 20
    /// Bytes of whole answers to anonymous reads kept for the event loops to send without
    /// routing (metadata JSON; downloads count only their headers); 0 disables.
    public var answerCacheSize: Int64 = 32 << 20
    /// Event loop threads answering connections; 0 means one per core.
    public var threads = 0
    /// Requests one token may make per minute (also its burst); 0 turns the limit off.
    public var tokenRequestsPerMinute = 1200
    /// Publishes one user may make per hour (a sixth of them at once); 0 turns the limit off.
    public var publishesPerHour = 120
    /// Failed authentications from one address within ten minutes before it is locked out
    /// (for a minute, doubling with each lockout up to an hour); 0 turns the lockout off.
    public var authFailuresBeforeLockout = 20
    /// Addresses of reverse proxies in front of the server, whose `X-Forwarded-For` header names
    /// the client (for the audit log and the lockout); empty: the header is ignored.
    public var trustedProxies: [String] = []
    /// Who may register: `closed` (admins create users), `invitation` (with an admin's
    /// invitation code) or `open` (anyone, as a user).
    public var registration = "invitation"
    /// The bcrypt cost of password hashes (4 to 31): each step doubles the work.
    public var passwordCost = 12
    /// Roles that must enrol a second factor before acting beyond their own account.
    public var twoFactorRoles = ["admin", "reviewer"]
    /// Hours a web session lasts after sign-in.
    public var sessionHours = 168
    /// Failed sign-ins for one account within fifteen minutes before it is locked out (with
    /// the same backoff as addresses); 0 turns the lockout off.
    public var signInFailuresBeforeLockout = 10
    /// Whether session cookies are marked Secure (sent only over HTTPS, and to localhost).
    public var secureCookies = true
    /// PEM files of the certificate chain and its private key: with both, the server speaks
    /// only HTTPS (TLS 1.2 and 1.3, forward-secret AEAD ciphers).
    public var tlsCertificate: String?
    public var tlsKey: String?
    /// Seconds of `Strict-Transport-Security` sent over HTTPS; 0 sends none.
    public var hstsMaxAge = 31_536_000
    /// OpenID Connect providers people may sign in with (`[oidc.NAME]` tables of the config file).
    public var oidcProviders: [OIDCProvider] = []
    /// Approvals a submission needs from reviewers other than its publisher.
    public var approvalsRequired = 1
    /// Users whose submissions are published without review once every check passes.
    public var autoPublish: [String] = []
    /// Check jobs the server runs at once, each in a sandboxed worker process it starts; 0: it
    /// runs none, and check workers elsewhere (`epr worker --jobs check`) take them.
    public var checkWorkers = 1
    /// Whether submissions are loaded into the kernel verifier.
    public var verifier = true
    /// Whether the verifier is this host's own kernel (an operator's choice), not the kernel of
    /// the verifier machine.
    public var verifierHost = false
    /// Where `scripts/install-verifier-vm.sh` installed the verifier machine.
    public var verifierMachine = "/var/lib/epr/vm"
    /// Whether included C sources are checked (compiler warnings, layout, complexity, repeats).
    public var sourcesCheck = true
    /// Seconds the verifier check gets per package (all its objects together).
    public var verifierTimeout = 60
    /// External scanners (`[scanner.NAME]` tables of the config file).
    public var scanners: [Scanner] = []
    /// Webhooks told of submissions' events (`[webhook.NAME]` tables of the config file).
    public var webhooks: [Webhook] = []
    /// The directory `epr trust init` wrote (root.crt, intermediate.crt, intermediate.key):
    /// with it the repository certifies keys, checks signatures and attests what it publishes.
    public var trustDirectory: String?
    /// The local socket of the signer process (`epr signer`) that holds the repository's keys:
    /// with it the server holds none of them.
    public var signer: String?
    /// Whether uploads must carry a contributor's signature.
    public var requireSignatures = false
    /// Days a contributor's certificate is valid.
    public var certificateDays = 365
    /// The repository's name in its attestations.
    public var repositoryName = "epr"
    /// Whether the OCI API deletes pushed manifests, tags and blobs (DELETE answers 405 otherwise).
    public var ociDelete = false
    /// Whether every submission with a `[build]` table is rebuilt by a build worker and compared
    /// (submissions of sources are always built).
    public var rebuildSources = false
    /// Timeouts and limits of client connections.
    var connections = ConnectionLimits()
    /// Bytes of private blobs one user may have pushed through the OCI API; 0: no limit.
    public var ociPushQuota: Int64 = 1 << 30

    /// An OpenID Connect provider: its issuer (whose discovery document says the rest) and
    /// this registry's client registration there.
    public struct OIDCProvider: Sendable, Equatable {
        public var name: String
        public var issuer: String
        public var clientID: String
        public var clientSecret: String?
        public var scopes: [String]
        /// What the sign-in button says.
        public var label: String

        public init(name: String, issuer: String, clientID: String, clientSecret: String? = nil,
                    scopes: [String] = ["openid", "email", "profile"], label: String? = nil) {
            self.name = name
            self.issuer = issuer
            self.clientID = clientID
            self.clientSecret = clientSecret
            self.scopes = scopes
            self.label = label ?? name
        }
    }

    public init() {}

    /// A boolean key, when given: `true` or `false`, anything else refused.
    static func flag(_ values: [String: String], _ key: String, into target: inout Bool) throws {
        guard let text = values[key] else { return }
        guard let value = Bool(text) else { throw Invalid(description: "\(key) \(text) is not true or false") }
        target = value
    }

    public struct Invalid: Error, CustomStringConvertible {
        public let description: String
    }

    /// Keys of the config file and the environment variables that set them.
    static let keys: [(file: String, environment: String)] = [
        ("data", "EPR_DATA"), ("host", "EPR_HOST"), ("port", "EPR_PORT"), ("max_upload_size", "EPR_MAX_UPLOAD_SIZE"),
        ("public_url", "EPR_PUBLIC_URL"), ("log_level", "EPR_LOG_LEVEL"), ("shutdown_grace_period", "EPR_SHUTDOWN_GRACE_PERIOD"),
        ("blob_cache_size", "EPR_BLOB_CACHE_SIZE"), ("answer_cache_size", "EPR_ANSWER_CACHE_SIZE"),
        ("threads", "EPR_THREADS"), ("token_requests_per_minute", "EPR_TOKEN_REQUESTS_PER_MINUTE"),
        ("publishes_per_hour", "EPR_PUBLISHES_PER_HOUR"), ("auth_failures_before_lockout", "EPR_AUTH_FAILURES_BEFORE_LOCKOUT"),
        ("trusted_proxies", "EPR_TRUSTED_PROXIES"), ("registration", "EPR_REGISTRATION"), ("password_cost", "EPR_PASSWORD_COST"),
        ("two_factor_roles", "EPR_TWO_FACTOR_ROLES"), ("session_hours", "EPR_SESSION_HOURS"),
        ("sign_in_failures_before_lockout", "EPR_SIGN_IN_FAILURES_BEFORE_LOCKOUT"), ("secure_cookies", "EPR_SECURE_COOKIES"),
        ("tls_certificate", "EPR_TLS_CERTIFICATE"), ("tls_key", "EPR_TLS_KEY"), ("hsts_max_age", "EPR_HSTS_MAX_AGE"),
    ] + reviewKeys + trustKeys + [("oci_delete", "EPR_OCI_DELETE"), ("rebuild_sources", "EPR_REBUILD_SOURCES"), ("oci_push_quota", "EPR_OCI_PUSH_QUOTA")]
        + connectionKeys

    /// Applies a config file's `[server]` table, then the environment, then explicit values.
    public static func resolve(file: String?, environment: [String: String], overrides: [String: String]) throws -> ServerConfiguration {
        var values: [String: String] = [:]
        var providers: [OIDCProvider] = []
        var scanners: [Scanner] = []
        var webhooks: [Webhook] = []
        if let file {
            let text = try String(contentsOfFile: file, encoding: .utf8)
            let document = try TOMLParser.parse(text)
            guard case let .table(server)? = document["server"] else { throw Invalid(description: "\(file) has no [server] table") }
            providers = try oidcProviders(document["oidc"], file: file, environment: environment)
            scanners = try self.scanners(document["scanner"], file: file)
            webhooks = try self.webhooks(document["webhook"], file: file, environment: environment)
            for key in server.keys {
                guard keys.contains(where: { $0.file == key }) else { throw Invalid(description: "\(file): unknown key server.\(key)") }
                switch server[key]! {
                case let .string(value): values[key] = value
                case let .integer(value): values[key] = String(value)
                case let .boolean(value): values[key] = String(value)
                case let .array(items) where ["trusted_proxies", "two_factor_roles", "auto_publish"].contains(key):
                    values[key] = try items.map { item -> String in
                        guard case let .string(text) = item else { throw Invalid(description: "\(file): server.\(key) must list strings") }
                        return text
                    }.joined(separator: ",")
                case let other: throw Invalid(description: "\(file): server.\(key) must be a string or an integer, not \(other.typeName)")
                }
            }
        }
        for (key, variable) in keys { if let value = environment[variable], !value.isEmpty { values[key] = value } }
        for (key, value) in overrides { values[key] = value }

        var configuration = ServerConfiguration()
        if let data = values["data"] { configuration.dataDirectory = data }
        if let host = values["host"] { configuration.host = host }
        if let port = values["port"] {
            guard let number = Int(port), (0...65535).contains(number) else { throw Invalid(description: "port \(port) is not a TCP port") }
            configuration.port = number
        }
        if let size = values["max_upload_size"] {
            guard let bytes = parseSize(size) else { throw Invalid(description: "max_upload_size \(size) is not a size (bytes, or with K, M, G)") }
            configuration.maxUploadSize = bytes
        }
        if let url = values["public_url"] {
            guard url.hasPrefix("http://") || url.hasPrefix("https://") else { throw Invalid(description: "public_url \(url) is not an http(s) URL") }
            configuration.publicURL = String(url.reversed().drop { $0 == "/" }.reversed())
        }
        if let level = values["log_level"] {
            guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(level) else {
                throw Invalid(description: "log_level \(level) is not one of trace, debug, info, notice, warning, error, critical")
            }
            configuration.logLevel = level
        }
        if let size = values["blob_cache_size"] {
            guard let bytes = parseSize(size) else { throw Invalid(description: "blob_cache_size \(size) is not a size (bytes, or with K, M, G)") }
            configuration.blobCacheSize = bytes
        }
        if let size = values["answer_cache_size"] {
            guard let bytes = parseSize(size) else { throw Invalid(description: "answer_cache_size \(size) is not a size (bytes, or with K, M, G)") }
            configuration.answerCacheSize = bytes
        }
        if let threads = values["threads"] {
            guard let count = Int(threads), (0...1024).contains(count) else { throw Invalid(description: "threads \(threads) is not a number from 0 to 1024") }
            configuration.threads = count
        }
        for (key, path) in [("token_requests_per_minute", \ServerConfiguration.tokenRequestsPerMinute),
                            ("publishes_per_hour", \ServerConfiguration.publishesPerHour),
                            ("auth_failures_before_lockout", \ServerConfiguration.authFailuresBeforeLockout)] {
            guard let text = values[key] else { continue }
            guard let number = Int(text), (0...1_000_000).contains(number) else {
                throw Invalid(description: "\(key) \(text) is not a number from 0 to 1000000 (0 turns the limit off)")
            }
            configuration[keyPath: path] = number
        }
        if let proxies = values["trusted_proxies"] {
            let list = proxies.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            for address in list where (try? SocketAddress(ipAddress: address, port: 0)) == nil {
                throw Invalid(description: "trusted_proxies: \(address) is not an IP address")
            }
            configuration.trustedProxies = list
        }
        try applySignIn(values, to: &configuration)
        try applyReview(values, to: &configuration)
        try applyTrust(values, to: &configuration)
        try applyConnections(values, to: &configuration)
        try flag(values, "oci_delete", into: &configuration.ociDelete)
        try flag(values, "rebuild_sources", into: &configuration.rebuildSources)
        if let size = values["oci_push_quota"] {
            guard let bytes = parseSize(size) else { throw Invalid(description: "oci_push_quota \(size) is not a size (bytes, or with K, M, G; 0 for no limit)") }
            configuration.ociPushQuota = bytes
        }
        configuration.oidcProviders = providers
        configuration.scanners = scanners
        configuration.webhooks = webhooks
        if let grace = values["shutdown_grace_period"] {
            guard let seconds = Int(grace), seconds >= 0 else { throw Invalid(description: "shutdown_grace_period \(grace) is not a number of seconds") }
            configuration.shutdownGracePeriod = seconds
        }
        return configuration
    }

    /// `[oidc.NAME]` tables: issuer, client_id, client_secret (or EPR_OIDC_<NAME>_CLIENT_SECRET),
    /// scopes, label.
    static func oidcProviders(_ value: TOMLValue?, file: String, environment: [String: String]) throws -> [OIDCProvider] {
        try namedTables(value, "oidc", file: file, keys: ["issuer", "client_id", "client_secret", "scopes", "label"]).map { name, table in
            func text(_ key: String) throws -> String? {
                guard let item = table[key] else { return nil }
                guard case let .string(value) = item else { throw Invalid(description: "\(file): oidc.\(name).\(key) must be a string") }
                return value
            }
            // Plain HTTP only on this machine: elsewhere anyone on the way could forge the keys.
            guard let issuer = try text("issuer"), let url = URL(string: issuer),
                  url.scheme == "https" || (url.scheme == "http" && ["127.0.0.1", "localhost", "::1"].contains(url.host ?? "")) else {
                throw Invalid(description: "\(file): oidc.\(name).issuer must be the provider's https issuer URL (http only on 127.0.0.1 or localhost)")
            }
            guard let clientID = try text("client_id"), !clientID.isEmpty else { throw Invalid(description: "\(file): oidc.\(name) needs client_id") }
            let variable = "EPR_OIDC_\(name.uppercased().replacingOccurrences(of: "-", with: "_"))_CLIENT_SECRET"
            var scopes = ["openid", "email", "profile"]
            if let item = table["scopes"] {
                guard case let .array(list) = item else { throw Invalid(description: "\(file): oidc.\(name).scopes must list strings") }
                scopes = try list.map { entry in
                    guard case let .string(scope) = entry else { throw Invalid(description: "\(file): oidc.\(name).scopes must list strings") }
                    return scope
                }
                if !scopes.contains("openid") { scopes.insert("openid", at: 0) }
            }
            let fileSecret = try text("client_secret")
            return OIDCProvider(name: name, issuer: issuer, clientID: clientID,
                                clientSecret: environment[variable].flatMap { $0.isEmpty ? nil : $0 } ?? fileSecret,
                                scopes: scopes, label: try text("label"))
        }
    }

    /// The sign-in rules the registry applies.
    public var signInSettings: SignInSettings {
        var settings = SignInSettings()
        settings.registration = SignInSettings.Registration(rawValue: registration) ?? .invitation
        settings.passwords = PasswordHasher(cost: passwordCost)
        settings.twoFactorRoles = Set(twoFactorRoles.compactMap(Principal.Role.init(rawValue:)))
        settings.sessionLifetime = TimeInterval(sessionHours) * 3600
        settings.accountLockout = signInFailuresBeforeLockout > 0 ? Lockout(threshold: signInFailuresBeforeLockout, window: .seconds(900)) : nil
        settings.accountWideLockout = signInFailuresBeforeLockout > 0 ? Lockout(threshold: 5 * signInFailuresBeforeLockout, window: .seconds(900)) : nil
        return settings
    }

    static func applySignIn(_ values: [String: String], to configuration: inout ServerConfiguration) throws {
        if let mode = values["registration"] {
            guard ["closed", "invitation", "open"].contains(mode) else { throw Invalid(description: "registration \(mode) is not one of closed, invitation, open") }
            configuration.registration = mode
        }
        if let text = values["password_cost"] {
            guard let cost = Int(text), (4...31).contains(cost) else { throw Invalid(description: "password_cost \(text) is not a bcrypt cost from 4 to 31") }
            configuration.passwordCost = cost
        }
        if let text = values["two_factor_roles"] {
            let roles = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            for role in roles where !["admin", "reviewer", "publisher", "user"].contains(role) {
                throw Invalid(description: "two_factor_roles: \(role) is not a role (admin, reviewer, publisher, user)")
            }
            configuration.twoFactorRoles = roles
        }
        if let text = values["session_hours"] {
            guard let hours = Int(text), (1...8784).contains(hours) else { throw Invalid(description: "session_hours \(text) is not a number from 1 to 8784") }
            configuration.sessionHours = hours
        }
        if let text = values["sign_in_failures_before_lockout"] {
            guard let count = Int(text), (0...1_000_000).contains(count) else {
                throw Invalid(description: "sign_in_failures_before_lockout \(text) is not a number from 0 to 1000000 (0 turns the lockout off)")
            }
            configuration.signInFailuresBeforeLockout = count
        }
        configuration.tlsCertificate = values["tls_certificate"].flatMap { $0.isEmpty ? nil : $0 }
        configuration.tlsKey = values["tls_key"].flatMap { $0.isEmpty ? nil : $0 }
        if (configuration.tlsCertificate == nil) != (configuration.tlsKey == nil) {
            throw Invalid(description: "tls_certificate and tls_key go together: give both or neither")
        }
        if let text = values["hsts_max_age"] {
            guard let seconds = Int(text), (0...(2 * 31_536_000)).contains(seconds) else {
                throw Invalid(description: "hsts_max_age \(text) is not a number of seconds from 0 to 63072000")
            }
            configuration.hstsMaxAge = seconds
        }
        try flag(values, "secure_cookies", into: &configuration.secureCookies)
    }

    /// "1048576", "512K", "100M", "2G".
    static func parseSize(_ text: String) -> Int64? {
        let units: [Character: Int64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
        if let last = text.last?.uppercased().first, let unit = units[last], let value = Int64(text.dropLast()), value >= 0 {
            let (bytes, overflow) = value.multipliedReportingOverflow(by: unit)
            return overflow ? nil : bytes
        }
        return Int64(text).flatMap { $0 >= 0 ? $0 : nil }
    }
}
