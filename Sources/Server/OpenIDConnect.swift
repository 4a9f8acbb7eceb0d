import AsyncHTTPClient
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import Registry

/// What a provider's discovery document (`/.well-known/openid-configuration`) says, and its
/// keys, fetched when first needed and kept for an hour; keys are fetched again (at most once a
/// minute) when a token names one not seen yet, so providers can rotate them.
actor OIDCDirectory {
    struct Metadata: Decodable, Sendable {
        var issuer: String
        var authorization_endpoint: String
        var token_endpoint: String
        var jwks_uri: String
    }

    let providers: [String: ServerConfiguration.OIDCProvider]
    let http: HTTPClient
    private var metadata: [String: (Metadata, Date)] = [:]
    private var keys: [String: (JSONWebKeySet, Date)] = [:]

    init(providers: [ServerConfiguration.OIDCProvider], http: HTTPClient = .shared) {
        self.providers = Dictionary(providers.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.http = http
    }

    func provider(_ name: String) throws -> ServerConfiguration.OIDCProvider {
        guard let provider = providers[name] else { throw Problem(.notFound, "provider-not-found", "there is no sign-in provider \(name)") }
        return provider
    }

    func metadata(_ provider: ServerConfiguration.OIDCProvider) async throws -> Metadata {
        if let (known, fetched) = metadata[provider.name], Date().timeIntervalSince(fetched) < 3600 { return known }
        let url = provider.issuer.reversed().drop { $0 == "/" }.reversed() + "/.well-known/openid-configuration"
        guard let document = try? JSONDecoder().decode(Metadata.self, from: try await fetch(String(url))) else {
            throw RegistryError.externalSignInFailed("the provider's discovery document is not valid")
        }
        // The issuer it names must be the one configured (OpenID Connect Discovery, section 4.3).
        guard document.issuer == provider.issuer else {
            throw RegistryError.externalSignInFailed("the provider's discovery document names issuer \(document.issuer), not \(provider.issuer)")
        }
        metadata[provider.name] = (document, Date())
        return document
    }

    func keys(_ provider: ServerConfiguration.OIDCProvider, refresh: Bool) async throws -> JSONWebKeySet {
        if let (known, fetched) = keys[provider.name], Date().timeIntervalSince(fetched) < (refresh ? 60 : 3600) { return known }
        guard let set = try? JSONDecoder().decode(JSONWebKeySet.self, from: try await fetch(try await metadata(provider).jwks_uri)) else {
            throw RegistryError.externalSignInFailed("the provider's key set is not valid")
        }
        keys[provider.name] = (set, Date())
        return set
    }

    /// Trades the code for tokens at the token endpoint (with the PKCE verifier) and returns the ID token.
    func exchange(_ provider: ServerConfiguration.OIDCProvider, code: String, verifier: String, redirectURI: String) async throws -> String {
        var request = HTTPClientRequest(url: try await metadata(provider).token_endpoint)
        request.method = .POST
        request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
        request.headers.add(name: "Accept", value: "application/json")
        var form = ["grant_type": "authorization_code", "code": code, "redirect_uri": redirectURI, "code_verifier": verifier,
                    "client_id": provider.clientID]
        if let secret = provider.clientSecret {
            let credentials = Self.formEncode(provider.clientID) + ":" + Self.formEncode(secret)
            request.headers.add(name: "Authorization", value: "Basic " + Data(credentials.utf8).base64EncodedString())
            form["client_id"] = nil
        }
        request.body = .bytes(ByteBuffer(string: form.sorted { $0.key < $1.key }.map { "\($0.key)=\(Self.formEncode($0.value))" }.joined(separator: "&")))
        let response: HTTPClientResponse, body: ByteBuffer
        do {
            response = try await http.execute(request, timeout: .seconds(15))
            body = try await response.body.collect(upTo: 1 << 20)
        } catch {
            throw RegistryError.externalSignInFailed("the provider's token endpoint cannot be reached")
        }
        struct Tokens: Decodable { var id_token: String?; var error: String?; var error_description: String? }
        let tokens = try? JSONDecoder().decode(Tokens.self, from: Data(buffer: body))
        guard response.status == .ok, let idToken = tokens?.id_token else {
            let reason = [tokens?.error, tokens?.error_description].compactMap { $0 }.joined(separator: ": ")
            throw RegistryError.externalSignInFailed("the provider refused the code (\(response.status.code)\(reason.isEmpty ? "" : ", " + reason))")
        }
        return idToken
    }

    private func fetch(_ url: String) async throws -> Data {
        do {
            let response = try await http.execute(HTTPClientRequest(url: url), timeout: .seconds(15))
            let body = try await response.body.collect(upTo: 1 << 20)
            guard response.status == .ok else { throw RegistryError.externalSignInFailed("\(url) answered \(response.status.code)") }
            return Data(buffer: body)
        } catch let error as RegistryError {
            throw error
        } catch {
            throw RegistryError.externalSignInFailed("the provider cannot be reached (\(url))")
        }
    }

    /// `application/x-www-form-urlencoded` encoding of one value.
    static func formEncode(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")) ?? value
    }
}

/// Sign-ins under way: the state, nonce and PKCE verifier of each redirect to a provider,
/// and the command-line sign-ins waiting for a browser. Each lives ten minutes and is used once.
final class OIDCFlows: Sendable {
    enum Purpose: Sendable, Equatable {
        case session
        case link(user: String)
        case commandLine(id: String)
    }

    struct Pending: Sendable {
        var provider: String
        var request: AuthorizationRequest
        var redirectURI: String
        var purpose: Purpose
        var created: Date
        var address: String
    }

    struct CommandLineSignIn: Sendable {
        var provider: String
        var secretHash: String
        var port: Int
        var tokenName: String
        var expiresInDays: Int?
        var created: Date
        var address: String
        var token: IssuedToken?
        /// Hash of the one-time code sent to the loopback port with the token.
        var codeHash: String?
    }

    static let lifetime: TimeInterval = 600
    static let capacity = 10_000
    /// Sign-ins under way from one address; more push out its oldest.
    static let perAddress = 20
    private let pending = NIOLockedValueBox<[String: Pending]>([:])
    private let commandLine = NIOLockedValueBox<[String: CommandLineSignIn]>([:])

    /// Makes room: expired entries go; then, past the address's quota or the capacity, the
    /// oldest of that address, else the oldest of all. No one can fill the table for others.
    static func makeRoom<Value>(_ table: inout [String: Value], address: String, created: (Value) -> Date, owner: (Value) -> String) {
        let now = Date()
        if table.count >= capacity { table = table.filter { now.timeIntervalSince(created($0.value)) < lifetime } }
        let mine = table.filter { owner($0.value) == address }
        if mine.count >= perAddress, let oldest = mine.min(by: { created($0.value) < created($1.value) }) {
            table[oldest.key] = nil
        } else if table.count >= capacity, let oldest = table.min(by: { created($0.value) < created($1.value) }) {
            table[oldest.key] = nil
        }
    }

    func begin(_ flow: Pending) {
        pending.withLockedValue { pending in
            Self.makeRoom(&pending, address: flow.address, created: \.created, owner: \.address)
            pending[flow.request.state] = flow
        }
    }

    /// The sign-in this state belongs to, taken so it cannot be answered twice.
    func take(state: String) -> Pending? {
        pending.withLockedValue { pending in
            guard let flow = pending.removeValue(forKey: state), Date().timeIntervalSince(flow.created) < Self.lifetime else { return nil }
            return flow
        }
    }

    func beginCommandLine(_ id: String, _ signIn: CommandLineSignIn) {
        commandLine.withLockedValue { waiting in
            Self.makeRoom(&waiting, address: signIn.address, created: \.created, owner: \.address)
            waiting[id] = signIn
        }
    }

    func commandLineSignIn(_ id: String) -> CommandLineSignIn? {
        commandLine.withLockedValue { waiting in
            guard let signIn = waiting[id], Date().timeIntervalSince(signIn.created) < Self.lifetime else {
                waiting[id] = nil
                return nil
            }
            return signIn
        }
    }

    /// Keeps the token for the command line; returns the one-time code the browser carries to it.
    func finishCommandLine(_ id: String, token: IssuedToken) -> String {
        let code = RegistryService.randomString(32, prefix: "")
        commandLine.withLockedValue { waiting in
            waiting[id]?.token = token
            waiting[id]?.codeHash = AccessToken.hash(code)
        }
        return code
    }

    func dropCommandLine(_ id: String) {
        commandLine.withLockedValue { $0[id] = nil }
    }

    /// The token, once, for the command line holding both the request's secret and the code
    /// its loopback port received.
    func collect(_ id: String, secretHash: String, codeHash: String) -> IssuedToken? {
        commandLine.withLockedValue { waiting in
            guard let signIn = waiting[id], Date().timeIntervalSince(signIn.created) < Self.lifetime,
                  let token = signIn.token, let expected = signIn.codeHash,
                  ConstantTime.equal(signIn.secretHash, secretHash), ConstantTime.equal(expected, codeHash) else {
                return nil
            }
            waiting[id] = nil
            return token
        }
    }
}
