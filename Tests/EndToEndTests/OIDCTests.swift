import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import Registry
import TestSupport
import Testing

/// A real OpenID Connect provider (`oidc-provider-mock`, from PyPI) on a free loopback port.
final class OIDCProviderProcess: @unchecked Sendable { // the Process is only touched by the test that owns it
    let process = Process()
    private(set) var port = 0
    private let log: URL

    /// `tokenLifetime` may be negative: tokens that expired before they were issued.
    init(directory: URL, users: [[String: Any]], tokenLifetime: Int = 300) throws {
        guard let executable = Fixtures.tool("oidc-provider-mock") else {
            throw Fixtures.FixtureError(description: "oidc-provider-mock is not installed (pip install oidc-provider-mock)")
        }
        log = directory.appendingPathComponent("oidc-\(UUID().uuidString).log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let output = try FileHandle(forWritingTo: log)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = ["--port", "0", "--token-max-age", "\(tokenLifetime)"]
            + users.flatMap { ["--user-claims", String(decoding: try! JSONSerialization.data(withJSONObject: $0), as: UTF8.self)] }
        process.environment = ProcessInfo.processInfo.environment.merging(["NO_COLOR": "1"]) { $1 }
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            if let range = text.range(of: #"running on http://127\.0\.0\.1:(\d+)"#, options: .regularExpression) {
                port = Int(text[range].split(separator: ":").last ?? "") ?? 0
                if port > 0 { return }
            }
            guard process.isRunning else { throw Fixtures.FixtureError(description: "oidc-provider-mock exited: \(text)") }
            Thread.sleep(forTimeInterval: 0.05)
        }
        throw Fixtures.FixtureError(description: "oidc-provider-mock did not start")
    }

    var issuer: String { "http://127.0.0.1:\(port)" }

    /// SIGTERM, then SIGKILL after two seconds: its graceful shutdown waits for idle
    /// keep-alive connections, which clients may hold open.
    func stop() {
        guard process.isRunning else { return }
        process.terminate()
        let deadline = Date().addingTimeInterval(2)
        while process.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }
}

/// A browser: follows nothing by itself, keeps cookies by name.
final class Browser: @unchecked Sendable { // used by one test at a time
    /// One client for every browser, alive for the whole run (it is never shut down).
    static let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: .init(redirectConfiguration: .disallow))
    var http: HTTPClient { Self.client }
    var cookies: [String: String] = [:]

    struct Page {
        var status: Int
        var location: String?
        var body: String
        var setCookies: [String]
    }

    func go(_ url: String, method: HTTPMethod = .GET, form: String? = nil, headers: [(String, String)] = [], sendCookies: Bool = true) async throws -> Page {
        var request = HTTPClientRequest(url: url)
        request.method = method
        if sendCookies, !cookies.isEmpty { request.headers.add(name: "Cookie", value: cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; ")) }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let form {
            request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            request.body = .bytes(ByteBuffer(string: form))
        }
        let response = try await http.execute(request, timeout: .seconds(30))
        let body = String(buffer: try await response.body.collect(upTo: 1 << 20))
        let setCookies = response.headers["Set-Cookie"]
        for cookie in setCookies {
            let pair = cookie.split(separator: ";").first.map(String.init) ?? ""
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { continue }
            if parts[1].isEmpty || cookie.contains("Max-Age=0") { cookies[parts[0]] = nil } else { cookies[parts[0]] = parts[1] }
        }
        return Page(status: Int(response.status.code), location: response.headers.first(name: "Location"), body: body, setCookies: setCookies)
    }

    /// Starts at epr, signs in at the provider as `subject`, and returns epr's callback answer.
    /// `change` may alter the address of the provider's authorization page first.
    func signIn(start: String, as subject: String, change: (URLComponents) -> URLComponents = { $0 },
                dropStateCookie: Bool = false) async throws -> (authorization: URLComponents, callback: String, answer: Page) {
        let first = try await go(start)
        guard first.status == 302, let location = first.location, let authorization = URLComponents(string: location) else {
            throw Fixtures.FixtureError(description: "start answered \(first.status): \(first.body)")
        }
        let changed = change(authorization)
        let provider = try await go(changed.string ?? "", method: .POST, form: "sub=\(subject)", sendCookies: false)
        guard provider.status == 302, let callback = provider.location else {
            throw Fixtures.FixtureError(description: "the provider answered \(provider.status): \(provider.body)")
        }
        if dropStateCookie { cookies["__Host-epr_oidc_state"] = nil }
        return (authorization, callback, try await go(callback))
    }

}

@Suite(.serialized) struct OIDCTests {
    nonisolated(unsafe) static let alice: [String: Any] = ["sub": "alice-sub", "email": "alice@example.com", "email_verified": true, "preferred_username": "alice"]
    nonisolated(unsafe) static let bob: [String: Any] = ["sub": "bob-sub", "email": "bob@example.com", "email_verified": true, "preferred_username": "bob-at-idp"]

    /// Sign-in through the provider opens a session; replays, a foreign browser, a wrong
    /// nonce and an expired ID token are refused; an account links to an existing user; the
    /// command line signs in through the browser.
    @Test func signInWithARealProvider() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let provider = try OIDCProviderProcess(directory: directory, users: [Self.alice, Self.bob])
        defer { provider.stop() }
        let stale = try OIDCProviderProcess(directory: directory, users: [Self.alice], tokenLifetime: -120)
        defer { stale.stop() }
        let config = directory.appendingPathComponent("epr.toml")
        try """
        [server]
        registration = "open"
        password_cost = 4

        [oidc.mock]
        issuer = "\(provider.issuer)"
        client_id = "epr-test"
        client_secret = "test-client-secret"
        label = "Test provider"

        [oidc.stale]
        issuer = "\(stale.issuer)"
        client_id = "epr-test"
        client_secret = "test-client-secret"
        """.write(to: config, atomically: true, encoding: .utf8)
        Fixtures.recordSecret("test-client-secret")
        let server = try ServerProcess(data: directory.appendingPathComponent("data"), arguments: ["--config", config.path])
        defer { server.stop() }
        let browser = Browser()

        let providers = try await server.get("/api/v1/oidc/providers")
        #expect(String(decoding: providers.body, as: UTF8.self).contains(#""label":"Test provider""#))

        // Signing in: PKCE with S256, state and nonce sent; a session comes back.
        let start = server.baseURL + "/api/v1/oidc/mock/start"
        let first = try await browser.signIn(start: start, as: "alice-sub")
        let query = Dictionary(uniqueKeysWithValues: (first.authorization.queryItems ?? []).map { ($0.name, $0.value ?? "") })
        #expect(query["code_challenge_method"] == "S256" && query["code_challenge"]?.count == 43)
        #expect(query["client_id"] == "epr-test" && query["response_type"] == "code" && query["scope"] == "openid email profile")
        #expect((query["state"]?.count ?? 0) >= 32 && (query["nonce"]?.count ?? 0) >= 32 && query["state"] != query["nonce"])
        #expect(first.answer.status == 303, "\(first.answer.body)")
        let session = try #require(browser.cookies["__Host-epr_session"])
        Fixtures.recordSecret(session)
        let current = try await browser.go(server.baseURL + "/api/v1/session")
        #expect(current.status == 200 && current.body.contains(#""user":"alice""#) && current.body.contains(#""method":"oidc:mock""#), "\(current.body)")
        let identities = try await browser.go(server.baseURL + "/api/v1/me/identities")
        #expect(identities.body.contains(#""subject":"alice-sub""#) && identities.body.contains(provider.issuer))

        // The same callback again: the sign-in was used up.
        let replay = try await browser.go(first.callback)
        #expect(replay.status == 401 && replay.body.contains("external-sign-in-failed"), "\(replay.body)")
        // A callback carried to a browser that did not start the sign-in.
        let foreign = try await Browser().signIn(start: start, as: "alice-sub", dropStateCookie: true)
        #expect(foreign.answer.status == 401 && foreign.answer.body.contains("another browser"), "\(foreign.answer.body)")
        #expect(browser.cookies["epr_oidc_state"] == nil && first.answer.setCookies.contains { $0.hasPrefix("__Host-epr_oidc_state=;") })
        // A nonce other than the one epr sent.
        let nonce = try await browser.signIn(start: start, as: "alice-sub") { components in
            var changed = components
            changed.queryItems = changed.queryItems?.map { $0.name == "nonce" ? URLQueryItem(name: "nonce", value: "not-the-nonce") : $0 }
            return changed
        }
        #expect(nonce.answer.status == 401 && nonce.answer.body.contains("nonce"), "\(nonce.answer.body)")
        // An ID token that expired before it arrived.
        let expired = try await browser.signIn(start: server.baseURL + "/api/v1/oidc/stale/start", as: "alice-sub")
        #expect(expired.answer.status == 401 && expired.answer.body.contains("expired"), "\(expired.answer.body)")

        // Linking: bob registered with a password links his provider account, which then signs in as bob.
        let bobBrowser = Browser()
        let registered = try await bobBrowser.go(server.baseURL + "/api/v1/registrations", method: .POST, headers: [("Content-Type", "application/json")],
                                                 sendCookies: false)
        #expect(registered.status == 400 || registered.status == 415)
        var request = HTTPClientRequest(url: server.baseURL + "/api/v1/registrations")
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/json")
        request.body = .bytes(ByteBuffer(string: #"{"name": "bob", "password": "bob's long password"}"#))
        Fixtures.recordSecret("bob's long password")
        #expect(try await HTTPClient.shared.execute(request, timeout: .seconds(30)).status.code == 201)
        var signIn = HTTPClientRequest(url: server.baseURL + "/api/v1/session")
        signIn.method = .POST
        signIn.headers.add(name: "Content-Type", value: "application/json")
        signIn.body = .bytes(ByteBuffer(string: #"{"name": "bob", "password": "bob's long password"}"#))
        let signedIn = try await HTTPClient.shared.execute(signIn, timeout: .seconds(30))
        let cookie = try #require(signedIn.headers["Set-Cookie"].first?.split(separator: ";").first).split(separator: "=", maxSplits: 1)
        bobBrowser.cookies[String(cookie[0])] = String(cookie[1])
        // Not with a token, even bob's own: linking adds a way into the account.
        var tokenRequest = HTTPClientRequest(url: server.baseURL + "/api/v1/session/token")
        tokenRequest.method = .POST
        tokenRequest.headers.add(name: "Content-Type", value: "application/json")
        tokenRequest.body = .bytes(ByteBuffer(string: #"{"name": "bob", "password": "bob's long password", "token_name": "t"}"#))
        let issued = try await HTTPClient.shared.execute(tokenRequest, timeout: .seconds(30))
        let bobToken = try #require(try JSONSerialization.jsonObject(with: Data(buffer: try await issued.body.collect(upTo: 1 << 16))) as? [String: Any])["token"] as? String
        Fixtures.recordSecret(bobToken ?? "")
        #expect(try await Browser().go(start + "?link=1", headers: [("Authorization", "Bearer \(bobToken ?? "")")], sendCookies: false).status == 401)
        let link = try await bobBrowser.signIn(start: start + "?link=1", as: "bob-sub")
        #expect(link.answer.status == 200 && link.answer.body.contains("signs in as bob"), "\(link.answer.body)")
        let asBob = Browser()
        let bobAgain = try await asBob.signIn(start: start, as: "bob-sub")
        #expect(bobAgain.answer.status == 303)
        #expect(try await asBob.go(server.baseURL + "/api/v1/session").body.contains(#""user":"bob""#))
        // Linking needs a signed-in user.
        #expect(try await Browser().go(start + "?link=1").status == 401)

        // The command line: epr login --oidc waits while the browser signs in.
        let clientConfig = directory.appendingPathComponent("client.toml")
        let login = Process()
        login.executableURL = URL(fileURLWithPath: Fixtures.eprBinary)
        login.arguments = ["login", "--oidc", "mock", "--no-browser"]
        login.environment = ProcessInfo.processInfo.environment.merging(["EPR_CONFIG": clientConfig.path, "EPR_REGISTRY": server.baseURL]) { $1 }
        let errors = Pipe()
        login.standardError = errors
        login.standardOutput = FileHandle.nullDevice
        try login.run()
        var shown = ""
        let deadline = Date().addingTimeInterval(20)
        while Date() < deadline, !shown.contains("cli=") {
            shown += String(decoding: errors.fileHandleForReading.availableData, as: UTF8.self)
        }
        let url = try #require(shown.split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.first { $0.hasPrefix("http") })
        let cliBrowser = Browser()
        let cli = try await cliBrowser.signIn(start: url, as: "alice-sub")
        // The browser is sent to the command line's own port on this machine, with the code.
        let loopback = try #require(cli.answer.location)
        #expect(cli.answer.status == 303 && loopback.hasPrefix("http://127.0.0.1:") && loopback.contains("code="), "\(cli.answer)")
        let landed = try await cliBrowser.go(loopback)
        #expect(landed.status == 200 && landed.body.contains("Signed in as alice"), "\(landed.body)")
        login.waitUntilExit()
        #expect(login.terminationStatus == 0)
        let saved = try String(contentsOf: clientConfig, encoding: .utf8)
        let token = try #require(saved.split(separator: "\n").first { $0.hasPrefix("token = ") }).dropFirst(9).dropLast()
        Fixtures.recordSecret(String(token))
        let (_, whoami) = try Fixtures.run("/usr/bin/env", ["EPR_CONFIG=\(clientConfig.path)", "EPR_REGISTRY=\(server.baseURL)", Fixtures.eprBinary, "whoami"])
        #expect(whoami.contains("alice (user)"), "\(whoami)")

        // Someone else's command-line sign-in, finished by a victim's browser: the code goes to
        // the victim's machine, and without it the token cannot be collected.
        var begin = HTTPClientRequest(url: server.baseURL + "/api/v1/cli-logins")
        begin.method = .POST
        begin.headers.add(name: "Content-Type", value: "application/json")
        begin.body = .bytes(ByteBuffer(string: #"{"provider": "mock", "redirect_port": 9}"#))
        #expect(try await HTTPClient.shared.execute(begin, timeout: .seconds(30)).status.code == 400, "a port below 1024 is refused")
        begin.body = .bytes(ByteBuffer(string: #"{"provider": "mock", "redirect_port": 40999}"#))
        let started = try await HTTPClient.shared.execute(begin, timeout: .seconds(30))
        let planted = try #require(try JSONSerialization.jsonObject(with: Data(buffer: try await started.body.collect(upTo: 1 << 16))) as? [String: Any])
        let plantedURL = try #require(planted["url"] as? String), plantedID = try #require(planted["id"] as? String)
        let plantedSecret = try #require(planted["secret"] as? String)
        let victim = try await Browser().signIn(start: plantedURL, as: "alice-sub")
        #expect(victim.answer.location?.hasPrefix("http://127.0.0.1:40999/") == true)
        func collect(_ code: String) async throws -> Int {
            var request = HTTPClientRequest(url: server.baseURL + "/api/v1/cli-logins/\(plantedID)/token")
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(string: #"{"secret": "\#(plantedSecret)", "code": "\#(code)"}"#))
            return Int(try await HTTPClient.shared.execute(request, timeout: .seconds(30)).status.code)
        }
        #expect(try await collect("") == 404)
        #expect(try await collect("guessed-code") == 404)
        let code = try #require(URLComponents(string: victim.answer.location ?? "")?.queryItems?.first { $0.name == "code" }?.value)
        #expect(try await collect(code) == 201, "only the holder of the code collects")
        #expect(try await collect(code) == 404, "once")

        // Unlinking: bob's session removes his provider account; it no longer signs in as bob.
        var unlink = HTTPClientRequest(url: server.baseURL + "/api/v1/me/identities/mock")
        unlink.method = .DELETE
        let bobSession = try #require(bobBrowser.cookies["__Host-epr_session"])
        unlink.headers.add(name: "Cookie", value: "__Host-epr_session=\(bobSession)")
        #expect(try await HTTPClient.shared.execute(unlink, timeout: .seconds(30)).status.code == 403, "a cookie needs its CSRF token")
        let csrfPage = try await bobBrowser.go(server.baseURL + "/api/v1/session")
        let csrf = try #require(try JSONSerialization.jsonObject(with: Data(csrfPage.body.utf8)) as? [String: Any])["csrf_token"] as? String
        unlink.headers.add(name: "X-CSRF-Token", value: csrf ?? "")
        #expect(try await HTTPClient.shared.execute(unlink, timeout: .seconds(30)).status.code == 204)
        let unlinked = Browser()
        _ = try await unlinked.signIn(start: start, as: "bob-sub")
        #expect(try await unlinked.go(server.baseURL + "/api/v1/session").body.contains(#""user":"bob-at-idp""#), "a new user now, not bob")

    }

    /// ID tokens from the real provider, checked by epr's validator: the genuine one passes;
    /// tampered, unsigned, foreign-issuer, other-audience, wrong-nonce, expired and
    /// other-key tokens are refused.
    @Test func idTokenChecks() async throws {
        let directory = try Fixtures.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let provider = try OIDCProviderProcess(directory: directory, users: [Self.alice])
        defer { provider.stop() }
        let stale = try OIDCProviderProcess(directory: directory, users: [Self.alice], tokenLifetime: -120)
        defer { stale.stop() }
        let browser = Browser()

        /// An ID token straight from the provider at `host`, for `client`.
        func idToken(from port: Int, host: String = "127.0.0.1", client: String = "tester", nonce: String = "the-nonce") async throws -> String {
            let base = "http://\(host):\(port)"
            let authorization = try await browser.go(base + "/oauth2/authorize?response_type=code&client_id=\(client)&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb"
                                                     + "&scope=openid%20email&state=s&nonce=\(nonce)", method: .POST, form: "sub=alice-sub")
            let code = try #require(URLComponents(string: authorization.location ?? "")?.queryItems?.first { $0.name == "code" }?.value)
            let token = try await browser.go(base + "/oauth2/token", method: .POST,
                                             form: "grant_type=authorization_code&code=\(code)&redirect_uri=http%3A%2F%2F127.0.0.1%2Fcb&client_id=\(client)&client_secret=x")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(token.body.utf8)) as? [String: Any])
            return try #require(json["id_token"] as? String, "\(token.body)")
        }
        func keys(_ port: Int) async throws -> JSONWebKeySet {
            try JSONDecoder().decode(JSONWebKeySet.self, from: Data(try await browser.go("http://127.0.0.1:\(port)/jwks").body.utf8))
        }
        let jwks = try await keys(provider.port)
        let expect = IDTokenValidator.Expectation(issuer: provider.issuer, clientID: "tester", nonce: "the-nonce")
        func refusal(_ token: String, keys: JSONWebKeySet? = nil, _ expectation: IDTokenValidator.Expectation? = nil) -> String? {
            do {
                _ = try IDTokenValidator.validate(token, keys: keys ?? jwks, expecting: expectation ?? expect)
                return nil
            } catch {
                return error.detail
            }
        }

        let genuine = try await idToken(from: provider.port)
        let claims = try IDTokenValidator.validate(genuine, keys: jwks, expecting: expect)
        #expect(claims.subject == "alice-sub" && claims.email == "alice@example.com" && claims.issuer == provider.issuer)

        let parts = genuine.split(separator: ".").map(String.init)
        let payloadBytes = try #require(IDTokenValidator.base64URL(parts[1]))
        var payload = try #require(try JSONSerialization.jsonObject(with: payloadBytes) as? [String: Any])
        payload["sub"] = "mallory"
        let forged = parts[0] + "." + IDTokenValidator.base64URL(try JSONSerialization.data(withJSONObject: payload)) + "." + parts[2]
        #expect(refusal(forged)?.contains("signature does not verify") == true)
        var signature = try #require(IDTokenValidator.base64URL(parts[2]))
        signature[signature.count / 2] ^= 0x01
        #expect(refusal(parts[0] + "." + parts[1] + "." + IDTokenValidator.base64URL(signature))?.contains("signature") == true)
        let none = IDTokenValidator.base64URL(Data(#"{"alg":"none","typ":"JWT"}"#.utf8)) + "." + parts[1] + "."
        #expect(refusal(none)?.contains("algorithm") == true)
        let hmac = IDTokenValidator.base64URL(Data(#"{"alg":"HS256","typ":"JWT"}"#.utf8)) + "." + parts[1] + "." + parts[2]
        #expect(refusal(hmac)?.contains("algorithm") == true)

        #expect(refusal(try await idToken(from: provider.port, host: "localhost"))?.contains("issuer") == true, "wrong issuer")
        #expect(refusal(try await idToken(from: provider.port, client: "someone-else"))?.contains("not this registry") == true, "wrong audience")
        #expect(refusal(genuine, keys: nil, .init(issuer: provider.issuer, clientID: "tester", nonce: "another-nonce"))?.contains("nonce") == true)
        let expired = try await idToken(from: stale.port)
        #expect(refusal(expired, keys: try await keys(stale.port), .init(issuer: stale.issuer, clientID: "tester", nonce: "the-nonce"))?
            .contains("expired") == true)
        #expect(refusal(genuine, keys: try await keys(stale.port))?.contains("signature") == true, "another provider's key")
    }
}
