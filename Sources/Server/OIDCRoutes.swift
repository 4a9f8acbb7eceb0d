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
        api.post("cli-logins", use: beginCommandLine)
        api.post("cli-logins/:id/token", use: collect)
    }

    static let stateCookie = "epr_oidc_state"

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
            guard let principal = try await authenticator.principal(request, context) else { throw RegistryError.unauthenticated }
            try await registry.authorize(.readSelf, principal, target: nil)
            purpose = .link(user: principal.name)
        } else if let id = request.uri.queryParameters.get("cli") {
            guard let waiting = flows.commandLineSignIn(id), waiting.provider == provider.name, waiting.token == nil, waiting.failure == nil else {
                throw Problem(.notFound, "sign-in-not-found", "this command-line sign-in is unknown, finished or expired; start again")
            }
            purpose = .commandLine(id: id)
        }
        let metadata = try await directory.metadata(provider)
        let authorization = AuthorizationRequest()
        let redirectURI = base(request) + "/api/v1/oidc/\(provider.name)/callback"
        try flows.begin(.init(provider: provider.name, request: authorization, redirectURI: redirectURI, purpose: purpose, created: Date()))
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
        let cookie = "\(Self.stateCookie)=\(authorization.state); Path=/api/v1/oidc; Max-Age=600; HttpOnly; SameSite=Lax" + (authenticator.cookies.secure ? "; Secure" : "")
        return Response(status: .found, headers: [.location: location.string ?? "", .setCookie: cookie, .cacheControl: "no-store"])
    }

    @Sendable func callback(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let name = try context.parameters.require("provider")
        let query = request.uri.queryParameters
        guard let state = query.get("state"), let flow = flows.take(state: state), flow.provider == name else {
            throw RegistryError.externalSignInFailed("the sign-in is unknown or expired (state); start again")
        }
        let bound = request.headers[values: .cookie].flatMap { $0.split(separator: ";") }.contains {
            $0.trimmingCharacters(in: .whitespaces) == "\(Self.stateCookie)=\(state)"
        }
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
            let clear = "\(Self.stateCookie)=; Path=/api/v1/oidc; Max-Age=0; HttpOnly; SameSite=Lax" + (authenticator.cookies.secure ? "; Secure" : "")
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
                flows.finishCommandLine(id, token: token, failure: nil)
                return page("Signed in as \(signedIn.user.name). Return to the terminal.", clear: clear)
            }
        } catch {
            if case let .commandLine(id) = flow.purpose { flows.finishCommandLine(id, token: nil, failure: "\(error)") }
            throw error
        }
    }

    func page(_ text: String, clear: String) -> Response {
        Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8", .setCookie: clear, .cacheControl: "no-store"],
                 body: .init(byteBuffer: ByteBuffer(string: text + "\n")))
    }

    @Sendable func identities(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let list = try await registry.identities(by: try await authenticator.principal(request, context))
        return try JSON.response(list.map { IdentityBody(provider: $0.provider, issuer: $0.issuer, subject: $0.subject, email: $0.email, linked_at: $0.linkedAt) })
    }

    // MARK: Command-line sign-in

    @Sendable func beginCommandLine(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let body = try await SessionRoutes(registry: registry, authenticator: authenticator)
            .body(CommandLineSignInRequest.self, request, example: #"{"provider": "github", "token_name": "laptop"}"#)
        let provider = try await directory.provider(body.provider)
        if let days = body.expires_in_days, !(1...1830).contains(days) { throw RegistryError.invalidToken("expires_in_days must be between 1 and 1830") }
        if let name = body.token_name, !(1...100).contains(name.count) || name.unicodeScalars.contains(where: { $0.properties.generalCategory == .control }) {
            throw RegistryError.invalidToken("the token needs a name of 1 to 100 printable characters")
        }
        let id = RegistryService.randomString(20, prefix: "cli_", lowercase: true), secret = RegistryService.randomString(43, prefix: "")
        try flows.beginCommandLine(id, .init(provider: provider.name, secretHash: AccessToken.hash(secret),
                                             tokenName: String((body.token_name ?? "signed in with \(provider.name)").prefix(100)),
                                             expiresInDays: body.expires_in_days, created: Date()))
        return try JSON.response(CommandLineSignInBody(id: id, secret: secret, url: base(request) + "/api/v1/oidc/\(provider.name)/start?cli=\(id)",
                                                       expires_in: Int(OIDCFlows.lifetime)), status: .created, headers: [.cacheControl: "no-store"])
    }

    /// 202 while the browser has not finished, then the token (once), or why it failed.
    @Sendable func collect(_ request: Request, context: RegistryRequestContext) async throws -> Response {
        let body = try await SessionRoutes(registry: registry, authenticator: authenticator)
            .body(CommandLineCollectRequest.self, request, example: #"{"secret": "..."}"#)
        guard let waiting = flows.collect(try context.parameters.require("id"), secretHash: AccessToken.hash(body.secret)) else {
            throw Problem(.notFound, "sign-in-not-found", "this command-line sign-in is unknown, finished or expired; start again")
        }
        if let token = waiting.token {
            return try JSON.response(AccountRoutes.body(token.record, secret: token.secret), status: .created, headers: [.cacheControl: "no-store"])
        }
        if let failure = waiting.failure { throw RegistryError.externalSignInFailed(failure) }
        return Response(status: .accepted, headers: [.retryAfter: "2", .cacheControl: "no-store"])
    }
}
