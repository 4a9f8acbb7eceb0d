import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import Registry
import RegistryAPI

/// OpenID Connect sign-in (authorization code flow with PKCE, state and nonce): a browser is
/// sent to the provider and comes back to the callback, which trades the code for an ID token,
/// checks it, and opens a session, links the identity to the signed-in user, or hands a token
/// to the command line that asked for one.
struct OIDCRoutes: Sendable {
    let registry: RegistryService
    let authenticator: Authenticator
    let directory: OIDCDirectory
    let flows: OIDCFlows
    /// The registry's own URL as clients reach it (redirect URIs are built from it).
    let publicURL: String?
    /// Whether the server itself speaks HTTPS (for redirect URIs when no public URL is set).
    let tls: Bool

    func add(to router: Router<RegistryRequestContext>) {
        let api = router.group("api/v1")
        api.get("oidc/providers", use: providers)
        api.get("oidc/:provider/start", use: start)
        api.get("oidc/:provider/callback", use: callback)
        api.get("me/identities", use: identities)
        api.delete("me/identities/:provider", use: unlink)
        api.post("cli-logins", use: beginCommandLine)
        api.post("cli-logins/:id/token", use: collect)
    }

    /// The cookie binding a sign-in to the browser that started it: `__Host-` (this host
    /// only, path /) when cookies are Secure.
    var stateCookie: String { authenticator.cookies.secure ? "__Host-epr_oidc_state" : "epr_oidc_state" }

    func stateCookie(_ value: String, maxAge: Int) -> String {
        "\(stateCookie)=\(value); Path=/; Max-Age=\(maxAge); HttpOnly; SameSite=Lax" + (authenticator.cookies.secure ? "; Secure" : "")
    }

    /// How recently a session must have signed in to link another way of signing in to it.
    static let linkWindow: TimeInterval = 900

    func base(_ request: Request) -> String {
        publicURL ?? "\(tls ? "https" : "http")://\(request.head.authority ?? "localhost")"
    }

    @Sendable func providers(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let list = await directory.providers.values.sorted { $0.name < $1.name }
        return try JSON.response(list.map { ProviderBody(name: $0.name, label: $0.label, start: "/api/v1/oidc/\($0.name)/start") })
    }

    /// Redirects to the provider. `?link=1` links the provider's account to the signed-in
    /// user; `?cli=ID` finishes a command-line sign-in.
    @Sendable func start(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let provider = try await directory.provider(try context.parameters.require("provider"))
        var purpose = OIDCFlows.Purpose.session
        if request.uri.queryParameters.get("link") != nil {
            // A new way into the account: only from a browser session that signed in lately
            // with every right it needs, never with an API token.
            guard request.headers[.authorization] == nil, let (principal, session) = try await authenticator.session(request, context) else {
                throw RegistryError.unauthenticated
            }
            try await registry.authorize(.readSelf, principal, target: nil)
            guard principal.restriction == nil, Date().timeIntervalSince(session.createdAt) < Self.linkWindow else {
                throw RegistryError.forbidden("linking needs a session signed in within the last 15 minutes, with its second factor; sign in again")
            }
            purpose = .link(user: principal.name)
        } else if let id = request.uri.queryParameters.get("cli") {
            guard let waiting = flows.commandLineSignIn(id), waiting.provider == provider.name, waiting.token == nil else {
                throw Problem(.notFound, "sign-in-not-found", "this command-line sign-in is unknown, finished or expired; start again")
            }
            purpose = .commandLine(id: id)
        }
        let metadata = try await directory.metadata(provider)
        let authorization = AuthorizationRequest()
        let redirectURI = base(request) + "/api/v1/oidc/\(provider.name)/callback"
        flows.begin(.init(provider: provider.name, request: authorization, redirectURI: redirectURI, purpose: purpose, created: Date(),
                          address: authenticator.address(request, context) ?? "-"))
        guard var location = URLComponents(string: metadata.authorization_endpoint) else {
            throw RegistryError.externalSignInFailed("the provider's authorization endpoint is not a URL")
        }
        location.queryItems = (location.queryItems ?? []) + [
            URLQueryItem(name: "response_type", value: "code"), URLQueryItem(name: "client_id", value: provider.clientID),
            URLQueryItem(name: "redirect_uri", value: redirectURI), URLQueryItem(name: "scope", value: provider.scopes.joined(separator: " ")),
            URLQueryItem(name: "state", value: authorization.state), URLQueryItem(name: "nonce", value: authorization.nonce),
            URLQueryItem(name: "code_challenge", value: authorization.challenge), URLQueryItem(name: "code_challenge_method", value: "S256"),
        ]
        // The state is also bound to this browser, so a callback carried to another browser
        // (a forged sign-in) is refused. Lax: the provider's redirect back is a cross-site navigation.
        return Response(status: .found, headers: [.location: location.string ?? "", .setCookie: stateCookie(authorization.state, maxAge: 600),
                                                  .cacheControl: "no-store"])
    }

    @Sendable func callback(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let name = try context.parameters.require("provider")
        let query = request.uri.queryParameters
        guard let state = query.get("state"), let flow = flows.take(state: state), flow.provider == name else {
            throw RegistryError.externalSignInFailed("the sign-in is unknown or expired (state); start again")
        }
        let bound = SessionCookies.value(of: stateCookie, in: request.headers[values: .cookie]) == state
        do {
            guard bound else { throw RegistryError.externalSignInFailed("the sign-in was started in another browser") }
            if let error = query.get("error") {
                throw RegistryError.externalSignInFailed("the provider answered \(error)" + (query.get("error_description").map { ": \($0)" } ?? ""))
            }
            guard let code = query.get("code"), !code.isEmpty else { throw RegistryError.externalSignInFailed("the provider sent no code") }
            let provider = try await directory.provider(name)
            let idToken = try await directory.exchange(provider, code: code, verifier: flow.request.verifier, redirectURI: flow.redirectURI)
            let expectation = IDTokenValidator.Expectation(issuer: provider.issuer, clientID: provider.clientID, nonce: flow.request.nonce)
            let claims: IDTokenClaims
            do {
                claims = try IDTokenValidator.validate(idToken, keys: try await directory.keys(provider, refresh: false), expecting: expectation)
            } catch RegistryError.externalSignInFailed(let reason) where reason.hasPrefix("no key") {
                claims = try IDTokenValidator.validate(idToken, keys: try await directory.keys(provider, refresh: true), expecting: expectation)
            }
            let address = authenticator.address(request, context)
            let clear = stateCookie("", maxAge: 0)
            switch flow.purpose {
            case .session:
                let signedIn = try await registry.signIn(provider: name, claims: claims, address: address)
                let issued = try await registry.startSession(for: signedIn, address: address)
                var headers: HTTPFields = [.location: base(request) + "/", .cacheControl: "no-store"]
                headers.append(HTTPField(name: .setCookie, value: authenticator.cookies.setting(issued.secret)))
                headers.append(HTTPField(name: .setCookie, value: clear))
                return Response(status: .seeOther, headers: headers)
            case let .link(user):
                let principal = Principal(name: user, role: .user, address: address)
                try await registry.link(provider: name, claims: claims, to: principal)
                return page("Your \(provider.label) account now signs in as \(user).", clear: clear)
            case let .commandLine(id):
                guard let waiting = flows.commandLineSignIn(id) else { throw RegistryError.externalSignInFailed("the command line stopped waiting") }
                let signedIn = try await registry.signIn(provider: name, claims: claims, address: address)
                let token = try await registry.issueSignInToken(for: signedIn, name: waiting.tokenName,
                                                                expiresIn: waiting.expiresInDays.map { TimeInterval($0) * 86_400 }, address: address)
                // The token goes only to the command line on this browser's machine: the
                // browser carries a one-time code to its loopback port.
                let code = flows.finishCommandLine(id, token: token)
                return loopback(waiting.port, ["code": code, "user": signedIn.user.name], clear: clear)
            }
        } catch {
            if case let .commandLine(id) = flow.purpose, let waiting = flows.commandLineSignIn(id) {
                flows.dropCommandLine(id)
                let reason = (error as? RegistryError)?.detail ?? (error as? Problem)?.detail ?? "the sign-in failed"
                return loopback(waiting.port, ["error": reason], clear: stateCookie("", maxAge: 0))
            }
            throw error
        }
    }

    /// Sends the browser to the command line's listener on this machine.
    func loopback(_ port: Int, _ items: [String: String], clear: String) -> Response {
        var components = URLComponents()
        components.scheme = "http"
        components.host = "127.0.0.1"
        components.port = port
        components.path = "/"
        components.queryItems = items.sorted { $0.key < $1.key }.map { URLQueryItem(name: $0.key, value: $0.value) }
        return Response(status: .seeOther, headers: [.location: components.string ?? "", .setCookie: clear, .cacheControl: "no-store"])
    }

    func page(_ text: String, clear: String) -> Response {
        Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8", .setCookie: clear, .cacheControl: "no-store"],
                 body: .init(byteBuffer: ByteBuffer(string: text + "\n")))
    }

    @Sendable func unlink(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        try await registry.unlink(provider: try context.parameters.require("provider"), by: try await authenticator.principal(request, context))
        return Response(status: .noContent)
    }

    @Sendable func identities(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let list = try await registry.identities(by: try await authenticator.principal(request, context))
        return try JSON.response(list.map { IdentityBody(provider: $0.provider, issuer: $0.issuer, subject: $0.subject, email: $0.email, linked_at: $0.linkedAt) })
    }

    // MARK: Command-line sign-in

    @Sendable func beginCommandLine(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let body = try await JSONBody.decode(CommandLineSignInRequest.self, from: request, example: #"{"provider": "github", "redirect_port": 49152, "token_name": "laptop"}"#)
        let provider = try await directory.provider(body.provider)
        if let days = body.expires_in_days, !(1...1830).contains(days) { throw RegistryError.invalidToken("expires_in_days must be between 1 and 1830") }
        if let name = body.token_name { try RegistryService.validateTokenName(name) }
        let id = RegistryService.randomString(20, prefix: "cli_", lowercase: true), secret = RegistryService.randomString(43, prefix: "")
        guard (1024...65535).contains(body.redirect_port) else {
            throw RegistryError.invalidRequest("redirect_port must be the port (1024 to 65535) the command line listens on at 127.0.0.1")
        }
        flows.beginCommandLine(id, .init(provider: provider.name, secretHash: AccessToken.hash(secret), port: body.redirect_port,
                                         tokenName: String((body.token_name ?? "signed in with \(provider.name)").prefix(100)),
                                         expiresInDays: body.expires_in_days, created: Date(), address: authenticator.address(request, context) ?? "-"))
        return try JSON.response(CommandLineSignInBody(id: id, secret: secret, url: base(request) + "/api/v1/oidc/\(provider.name)/start?cli=\(id)",
                                                       expires_in: Int(OIDCFlows.lifetime)), status: .created, headers: [.cacheControl: "no-store"])
    }

    /// The token, once, for the secret of the request and the code its loopback port received.
    @Sendable func collect(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let body = try await JSONBody.decode(CommandLineCollectRequest.self, from: request, example: #"{"secret": "...", "code": "..."}"#)
        guard let token = flows.collect(try context.parameters.require("id"), secretHash: AccessToken.hash(body.secret),
                                        codeHash: AccessToken.hash(body.code)) else {
            throw Problem(.notFound, "sign-in-not-found", "this command-line sign-in is unknown, unfinished, collected or expired; start again")
        }
        return try JSON.response(AccountRoutes.body(token.record, secret: token.secret), status: .created, headers: [.cacheControl: "no-store"])
    }
}
