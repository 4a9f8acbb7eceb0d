import Foundation
import HTTPTypes
import HummingbirdTesting
import NIOCore
@testable import Registry
import RegistryAPI
@testable import Server
import Storage
import TestSupport
import Testing

extension TestClientProtocol {
    func send(_ method: HTTPRequest.Method, _ uri: String, json: String? = nil, headers: HTTPFields = [:]) async throws -> TestResponse {
        var fields = headers
        if json != nil { fields[.contentType] = "application/json" }
        return try await execute(uri: uri, method: method, headers: fields, body: json.map { ByteBuffer(string: $0) })
    }

    /// A sign-in from `address`, as the reverse proxy in front of the server names it.
    func signIn(_ body: String, from address: String) async throws -> TestResponse {
        try await send(.post, "/api/v1/session", json: body, headers: [.xForwardedFor: address])
    }
}

/// A registry with fast password hashes and a publisher `alice` who has a password.
private func signInRegistry(_ configure: (inout ServerConfiguration) -> Void = { _ in }) async throws -> TestRegistry {
    for secret in [alicePassword, "admin password 1234", "bob's own password", "brand new password", "a long enough password",
                   "another long password", TestRegistry.token] {
        Fixtures.recordSecret(secret)
    }
    let registry = try await TestRegistry.make {
        $0.passwordCost = 4
        configure(&$0)
    }
    let service = registry.server.registry
    let admin = Principal(name: "admin", role: .admin)
    _ = try await service.createUser(name: "alice", role: .publisher, by: admin)
    try await service.credentials.setPassword(user: "alice", hash: try await service.signIn.passwords.hash(alicePassword), at: Date(),
                                              endSessions: true)
    return registry
}

private let alicePassword = "correct horse battery staple"

private func signInBody(_ name: String = "alice", _ password: String = alicePassword, otp: String? = nil, recovery: String? = nil) -> String {
    let body = SignInRequest(name: name, password: password, otp: otp, recovery_code: recovery)
    return String(decoding: try! JSONEncoder().encode(body), as: UTF8.self)
}

/// The cookie a Set-Cookie header sets, as a Cookie header sends it back.
private func cookie(_ response: TestResponse) -> String? {
    response.headers[.setCookie]?.split(separator: ";").first.map(String.init)
}

@Suite struct SignInTests {
    @Test func passwordSignInOpensASessionWithAHardenedCookie() async throws {
        let registry = try await signInRegistry()
        let service = registry.server.registry
        try await registry.run { client in
            let response = try await client.send(.post, "/api/v1/session", json: signInBody())
            #expect(response.status == .created, "\(String(buffer: response.body))")
            let setCookie = try #require(response.headers[.setCookie])
            #expect(setCookie.hasPrefix("__Host-epr_session=eprs_"))
            for attribute in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] { #expect(setCookie.contains(attribute), "\(attribute)") }
            let session = try response.json(SessionBody.self)
            #expect(session.user == "alice" && session.method == "password" && session.restriction == nil)
            let csrf = try #require(session.csrf_token)
            let jar: HTTPFields = [.cookie: try #require(cookie(response))]

            // The cookie authenticates reads; unsafe requests also need the CSRF token.
            let me = try await client.get("/api/v1/me", headers: jar)
            #expect(try me.status == .ok && (me.json(AccountBody.self)).user.name == "alice")
            let forged = try await client.send(.post, "/api/v1/tokens", json: #"{"name": "x", "scopes": []}"#, headers: jar)
            #expect(forged.status == .forbidden && forged.problemCode == "csrf-failed")
            var wrong = jar
            wrong[.xCSRFToken] = String(csrf.reversed())
            #expect(try await client.send(.post, "/api/v1/tokens", json: #"{"name": "x", "scopes": []}"#, headers: wrong).problemCode == "csrf-failed")
            var crossSite = jar
            crossSite[.xCSRFToken] = csrf
            crossSite[.origin] = "https://evil.example"
            #expect(try await client.send(.post, "/api/v1/tokens", json: #"{"name": "x", "scopes": []}"#, headers: crossSite).problemCode == "csrf-failed")
            var good = jar
            good[.xCSRFToken] = csrf
            #expect(try await client.send(.post, "/api/v1/tokens", json: #"{"name": "x", "scopes": []}"#, headers: good).status == .created)

            // The stored session is a hash; the password is a bcrypt hash of its own cost.
            let secret = String(try #require(cookie(response)).split(separator: "=", maxSplits: 1)[1])
            #expect(try await service.credentials.session(hash: AccessToken.hash(secret))?.user == "alice")
            let stored = try #require(try await service.credentials.credentials(user: "alice")?.passwordHash)
            #expect(stored.hasPrefix("bcrypt-sha256$$2b$04$") && !stored.contains(alicePassword))

            // Signing out ends the session for good.
            let out = try await client.send(.delete, "/api/v1/session", headers: good)
            #expect(out.status == .noContent && out.headers[.setCookie]?.contains("Max-Age=0") == true)
            #expect(try await client.get("/api/v1/me", headers: jar).status == .unauthorized)
        }
    }

    @Test func wrongPasswordsAndUnknownUsersLookAlike() async throws {
        let registry = try await signInRegistry()
        let accounts = registry.server.registry.accounts
        try await registry.run { client in
            let wrong = try await client.send(.post, "/api/v1/session", json: signInBody("alice", "not the password at all"))
            let unknown = try await client.send(.post, "/api/v1/session", json: signInBody("nobody", alicePassword))
            #expect(wrong.status == .unauthorized && unknown.status == .unauthorized)
            #expect(wrong.problemCode == "sign-in-failed" && unknown.problemCode == "sign-in-failed")
            #expect(wrong.headers[.setCookie] == nil)
            let form = try await client.execute(uri: "/api/v1/session", method: .post, headers: [.contentType: "application/x-www-form-urlencoded"],
                                                body: ByteBuffer(string: "name=alice&password=x"))
            #expect(form.status == .unsupportedMediaType, "a cross-site form cannot sign anyone in")
            let audit = try await accounts.audit(actor: nil, action: "signin", offset: 0, limit: 10).items
            #expect(audit.filter { $0.outcome == "denied" }.count == 2)
        }
    }

    @Test func totpEnrolmentSignInReplayAndRecoveryCodes() async throws {
        let registry = try await signInRegistry()
        let service = registry.server.registry
        try await registry.run { client in
            let token = try await client.send(.post, "/api/v1/session/token",
                                              json: #"{"name": "alice", "password": "\#(alicePassword)", "token_name": "laptop"}"#)
            #expect(token.status == .created)
            let bearer: HTTPFields = [.authorization: "Bearer \(try #require(token.json(TokenRecordBody.self).token))"]
            #expect(try await client.send(.post, "/api/v1/me/totp", json: #"{"password": "wrong password here"}"#, headers: bearer).status == .unauthorized)
            let begin = try await client.send(.post, "/api/v1/me/totp", json: #"{"password": "\#(alicePassword)"}"#, headers: bearer)
            #expect(begin.status == .created)
            let enrolment = try begin.json(SecondFactorBody.self)
            let secret = try #require(enrolment.secret)
            let totp = try #require(TOTP(base32: secret))
            #expect(enrolment.uri?.hasPrefix("otpauth://totp/epr:alice?secret=\(totp.base32)") == true)
            // Until confirmed, signing in needs no code.
            #expect(try await client.send(.post, "/api/v1/session", json: signInBody()).status == .created)
            let now = totp.step(at: Date())
            let wrongCode = totp.code(step: now + 5)
            #expect(try await client.send(.post, "/api/v1/me/totp/confirm", json: #"{"code": "\#(wrongCode)"}"#, headers: bearer).status == .unauthorized)
            // Confirm with this step's code; signing in then uses the next step's (the server
            // allows one step of drift either way, and only steps after the last used one).
            let confirmed = totp.step(at: Date())
            let confirm = try await client.send(.post, "/api/v1/me/totp/confirm", json: #"{"code": "\#(totp.code(step: confirmed))"}"#, headers: bearer)
            #expect(confirm.status == .ok)
            let codes = try #require(confirm.json(SecondFactorBody.self).recovery_codes)
            #expect(codes.count == 10 && Set(codes).count == 10)

            let bare = try await client.send(.post, "/api/v1/session", json: signInBody())
            #expect(bare.status == .unauthorized && bare.problemCode == "second-factor-required")
            let code = totp.code(step: confirmed + 1)
            let withCode = try await client.send(.post, "/api/v1/session", json: signInBody(otp: code))
            #expect(try withCode.status == .created && (withCode.json(SessionBody.self)).method == "password+totp")
            let replay = try await client.send(.post, "/api/v1/session", json: signInBody(otp: code))
            #expect(replay.status == .unauthorized && replay.problemCode == "sign-in-failed", "a code is good once")
            #expect(try await client.send(.post, "/api/v1/session", json: signInBody(otp: "000000")).status == .unauthorized)

            let recovery = try await client.send(.post, "/api/v1/session", json: signInBody(recovery: codes[3].uppercased()))
            #expect(try recovery.status == .created && (recovery.json(SessionBody.self)).method == "password+recovery-code")
            #expect(try await client.send(.post, "/api/v1/session", json: signInBody(recovery: codes[3])).status == .unauthorized)
            #expect(try await service.credentials.recoveryCodesLeft(user: "alice") == 9)
            let status = try await client.get("/api/v1/me/totp", headers: bearer).json(SecondFactorBody.self)
            #expect(status.enabled && status.recovery_codes_left == 9)
        }
    }

    @Test func adminsWithoutASecondFactorMayOnlyLookAfterThemselves() async throws {
        let registry = try await signInRegistry()
        let service = registry.server.registry
        try await service.credentials.setPassword(user: "admin", hash: try await service.signIn.passwords.hash("admin password 1234"), at: Date(),
                                                  endSessions: true)
        try await registry.run { client in
            let response = try await client.send(.post, "/api/v1/session", json: signInBody("admin", "admin password 1234"))
            #expect(response.status == .created)
            let session = try response.json(SessionBody.self)
            #expect(session.restriction?.contains("second factor") == true)
            let headers: HTTPFields = [.cookie: try #require(cookie(response)), .xCSRFToken: try #require(session.csrf_token)]
            let refused = try await client.send(.post, "/api/v1/users", json: #"{"name": "carol"}"#, headers: headers)
            #expect(refused.status == .forbidden && String(buffer: refused.body).contains("second factor"))
            #expect(try await client.get("/api/v1/me", headers: headers).status == .ok)
            // Enrolling lifts the restriction at the next sign-in.
            let begin = try await client.send(.post, "/api/v1/me/totp", json: #"{"password": "admin password 1234"}"#, headers: headers)
            let secret = try #require(begin.json(SecondFactorBody.self).secret)
            let totp = try #require(TOTP(base32: secret))
            let step = totp.step(at: Date())
            #expect(try await client.send(.post, "/api/v1/me/totp/confirm", json: #"{"code": "\#(totp.code(step: step))"}"#, headers: headers).status == .ok)
            let again = try await client.send(.post, "/api/v1/session", json: signInBody("admin", "admin password 1234", otp: totp.code(step: step + 1)))
            #expect(try again.status == .created && (again.json(SessionBody.self)).restriction == nil)
            let full: HTTPFields = [.cookie: try #require(cookie(again)), .xCSRFToken: try #require(again.json(SessionBody.self).csrf_token)]
            #expect(try await client.send(.post, "/api/v1/users", json: #"{"name": "carol"}"#, headers: full).status == .created)
        }
    }

    @Test func registrationByInvitationOrOpen() async throws {
        let registry = try await signInRegistry()
        let admin: HTTPFields = [.authorization: "Bearer \(TestRegistry.token)"]
        try await registry.run { client in
            let closed = try await client.send(.post, "/api/v1/registrations", json: #"{"name": "dave", "password": "a long enough password"}"#)
            #expect(closed.status == .forbidden && closed.problemCode == "registration-closed")
            let invite = try await client.send(.post, "/api/v1/signup-invitations", json: #"{"role": "publisher", "expires_in_days": 2}"#, headers: admin)
            #expect(invite.status == .created)
            let code = try #require(invite.json(SignupInvitationBody.self).code)
            let weak = try await client.send(.post, "/api/v1/registrations", json: #"{"name": "dave", "password": "short", "invitation": "\#(code)"}"#)
            #expect(weak.status == .unprocessableContent && weak.problemCode == "invalid-password")
            let made = try await client.send(.post, "/api/v1/registrations",
                                             json: #"{"name": "dave", "password": "a long enough password", "invitation": "\#(code)"}"#)
            #expect(try made.status == .created && (made.json(UserBody.self)).role == "publisher")
            let reuse = try await client.send(.post, "/api/v1/registrations",
                                              json: #"{"name": "erin", "password": "a long enough password", "invitation": "\#(code)"}"#)
            #expect(reuse.status == .forbidden && reuse.problemCode == "signup-invitation-invalid")
            #expect(try await client.send(.post, "/api/v1/session", json: signInBody("dave", "a long enough password")).status == .created)
            let listed = try await client.get("/api/v1/signup-invitations", headers: admin).json([SignupInvitationBody].self)
            #expect(listed.count == 1 && listed[0].used_by == "dave" && listed[0].code == nil)
        }
        let open = try await signInRegistry { $0.registration = "open" }
        try await open.run { client in
            let made = try await client.send(.post, "/api/v1/registrations", json: #"{"name": "frank", "password": "a long enough password"}"#)
            #expect(try made.status == .created && (made.json(UserBody.self)).role == "user")
            let taken = try await client.send(.post, "/api/v1/registrations", json: #"{"name": "frank", "password": "another long password"}"#)
            #expect(taken.status == .conflict)
        }
    }

    @Test func passwordChangeAndAdminReset() async throws {
        let registry = try await signInRegistry()
        let accounts = registry.server.registry.accounts
        let admin: HTTPFields = [.authorization: "Bearer \(TestRegistry.token)"]
        try await registry.run { client in
            let first = try await client.send(.post, "/api/v1/session", json: signInBody())
            let headers: HTTPFields = [.cookie: try #require(cookie(first)), .xCSRFToken: try #require(first.json(SessionBody.self).csrf_token)]
            let wrong = try await client.send(.put, "/api/v1/me/password", json: #"{"current": "not it at all", "new": "brand new password"}"#, headers: headers)
            #expect(wrong.status == .unauthorized)
            let changed = try await client.send(.put, "/api/v1/me/password", json: #"{"current": "\#(alicePassword)", "new": "brand new password"}"#,
                                                headers: headers)
            #expect(changed.status == .noContent)
            #expect(try await client.get("/api/v1/me", headers: headers).status == .unauthorized, "a password change ends every session")
            #expect(try await client.send(.post, "/api/v1/session", json: signInBody()).status == .unauthorized)
            #expect(try await client.send(.post, "/api/v1/session", json: signInBody("alice", "brand new password")).status == .created)

            let reset = try await client.send(.post, "/api/v1/users/alice/password-reset", json: "{}", headers: admin)
            #expect(reset.status == .ok)
            let temporary = try reset.json(PasswordResetBody.self).password
            #expect(temporary.count >= 20)
            #expect(try await client.send(.post, "/api/v1/session", json: signInBody("alice", "brand new password")).status == .unauthorized)
            #expect(try await client.send(.post, "/api/v1/session", json: signInBody("alice", temporary)).status == .created)
            let audit = try await accounts.audit(actor: nil, action: "password.reset", offset: 0, limit: 5).items
            #expect(audit.count == 1 && audit[0].target == "alice" && audit[0].actor == "admin")
        }
    }

    /// A thousand wrong passwords from a thousand addresses lock the account for password-only
    /// sign-ins after five times the per-address threshold; during the lockout even the right
    /// password is refused, while other users carry on.
    @Test func aThousandWrongPasswordsLockTheAccountOut() async throws {
        let registry = try await signInRegistry {
            $0.trustedProxies = ["127.0.0.1"]
            $0.signInFailuresBeforeLockout = 10
            $0.authFailuresBeforeLockout = 20
        }
        let service = registry.server.registry
        _ = try await service.createUser(name: "bob", role: .user, by: Principal(name: "admin", role: .admin))
        try await service.credentials.setPassword(user: "bob", hash: try await service.signIn.passwords.hash("bob's own password"), at: Date(),
                                                  endSessions: true)
        try await registry.run(.live) { client in
            var statuses: [UInt16: Int] = [:]
            // From a thousand addresses, so only the account's own lockout can stop them.
            for index in 0..<1000 {
                let address = "198.51.\(index / 250).\(index % 250 + 1)"
                let response = try await client.signIn(signInBody("alice", "wrong password \(index)"), from: address)
                statuses[UInt16(response.status.code), default: 0] += 1
            }
            #expect(statuses[401] == 50, "\(statuses)")
            #expect(statuses[429] == 950, "\(statuses)")
            let right = try await client.signIn(signInBody(), from: "203.0.113.50")
            #expect(right.status == .tooManyRequests && right.problemCode == "rate-limited")
            #expect(Int(right.headers[.retryAfter] ?? "") ?? 0 >= 1)
            // Others are served meanwhile.
            #expect(try await client.signIn(signInBody("bob", "bob's own password"), from: "203.0.113.51").status == .created)
            #expect(try await client.get("/api/v1/packages").status == .ok)

            // From one address, across accounts: the address is locked out.
            for index in 0..<20 { _ = try await client.signIn(signInBody("user\(index)", "wrong password"), from: "192.0.2.99") }
            let blocked = try await client.signIn(signInBody("bob", "bob's own password"), from: "192.0.2.99")
            #expect(blocked.status == .tooManyRequests)
            #expect(try await client.signIn(signInBody("bob", "bob's own password"), from: "192.0.2.100").status == .created)
        }
    }

    /// Someone else's failures lock the account only for them and for password-only sign-ins:
    /// the admin, who proves a second factor, signs in from the attacker's address and from
    /// another one, while the attacker is refused even the right password.
    @Test func anotherPersonsFailuresDoNotLockOutTheSecondFactor() async throws {
        let registry = try await signInRegistry {
            $0.trustedProxies = ["127.0.0.1"]
            $0.signInFailuresBeforeLockout = 10
            $0.authFailuresBeforeLockout = 0
        }
        let service = registry.server.registry
        let totp = TOTP.generate()
        try await service.credentials.setPassword(user: "admin", hash: try await service.signIn.passwords.hash("admin password 1234"), at: Date(),
                                                  endSessions: true)
        try await service.credentials.setTOTP(user: "admin", secret: totp.base32, enabled: true, recoveryCodeHashes: [], step: 0)
        try await registry.run(.live) { client in
            for index in 0..<10 {
                let status = try await client.signIn(signInBody("admin", "guess \(index)"), from: "198.51.100.7").status
                #expect(status == .unauthorized)
            }
            let step = totp.step(at: Date())
            // The attacker's address is locked for password-only sign-ins, even the right one.
            #expect(try await client.signIn(signInBody("admin", "admin password 1234"), from: "198.51.100.7").status == .tooManyRequests)
            // A second factor gets through, there and elsewhere; a wrong one does not.
            #expect(try await client.signIn(signInBody("admin", "admin password 1234", otp: totp.code(step: step + 5)), from: "198.51.100.7").status
                    == .unauthorized)
            #expect(try await client.signIn(signInBody("admin", "admin password 1234", otp: totp.code(step: step)), from: "198.51.100.7").status
                    == .created)
            #expect(try await client.signIn(signInBody("admin", "admin password 1234", otp: totp.code(step: step + 1)), from: "203.0.113.9").status
                    == .created)
            // Another account from the attacker's address is not locked by them.
            #expect(try await client.signIn(signInBody(), from: "198.51.100.7").status == .created)
        }
    }
}

/// A token as created (the secret shown once).
struct TokenRecordBody: Decodable { var id: String; var token: String? }

/// RFC 6238 with a fixed secret and clock.
@Suite struct TOTPTests {
    @Test func rfc6238ReferenceValues() {
        var totp = TOTP(secret: Array("12345678901234567890".utf8))
        totp.digits = 8
        // Appendix B of RFC 6238, SHA-1.
        for (time, code) in [(59.0, "94287082"), (1_111_111_109, "07081804"), (1_111_111_111, "14050471"), (1_234_567_890, "89005924"),
                             (2_000_000_000, "69279037"), (20_000_000_000, "65353130")] {
            #expect(totp.code(step: totp.step(at: Date(timeIntervalSince1970: time))) == code, "\(time)")
        }
        totp.digits = 6
        let at = Date(timeIntervalSince1970: 1_111_111_111)
        #expect(totp.match("050471", at: at) == totp.step(at: at))
        #expect(totp.match(totp.code(step: totp.step(at: at) - 1), at: at) == totp.step(at: at) - 1, "one step of drift")
        #expect(totp.match(totp.code(step: totp.step(at: at) - 2), at: at) == nil)
        #expect(totp.match("12345", at: at) == nil)
    }

    @Test func base32RoundTrips() {
        #expect(Base32.encode(Array("foobar".utf8)) == "MZXW6YTBOI")
        #expect(Base32.decode("mzxw 6ytb oi======") == Array("foobar".utf8))
        #expect(Base32.decode("MZ1") == nil)
        let secret = TOTP.generate()
        #expect(TOTP(base32: secret.base32) == secret && secret.secret.count == 20)
    }

    @Test func aReplayedCodeIsRefusedByTheStore() async throws {
        let registry = try await signInRegistry()
        let store = registry.server.registry.credentials
        try await store.setTOTP(user: "alice", secret: TOTP.generate().base32, enabled: true, recoveryCodeHashes: [], step: 100)
        #expect(try await store.useTOTPStep(user: "alice", step: 100) == false)
        #expect(try await store.useTOTPStep(user: "alice", step: 101) == true)
        #expect(try await store.useTOTPStep(user: "alice", step: 101) == false)
        #expect(try await store.useTOTPStep(user: "alice", step: 99) == false, "an older code after a newer one is refused too")
        await registry.close()
    }
}
