import Crypto
import Foundation
import _CryptoExtras

/// A key of an OpenID provider's JWKS document (RFC 7517): RSA or P-256 public keys.
public struct JSONWebKey: Codable, Sendable, Equatable {
    public var kty: String
    public var kid: String?
    public var alg: String?
    public var use: String?
    public var n: String?
    public var e: String?
    public var crv: String?
    public var x: String?
    public var y: String?
}

public struct JSONWebKeySet: Codable, Sendable, Equatable {
    public var keys: [JSONWebKey]
    public init(keys: [JSONWebKey]) { self.keys = keys }
}

/// What epr takes from a valid ID token.
public struct IDTokenClaims: Sendable, Equatable {
    public var issuer: String
    public var subject: String
    public var audience: [String]
    public var expiresAt: Date
    public var issuedAt: Date
    public var nonce: String?
    public var email: String?
    public var emailVerified: Bool
    public var preferredUsername: String?
    public var name: String?
    /// Authentication methods (RFC 8176), when the provider says: `mfa`, `otp`, `hwk`, ...
    public var methods: [String]

    /// Whether the provider says the user gave more than one factor (RFC 8176 `mfa`; a single
    /// `otp` or `hwk` may have been the only factor).
    public var multiFactor: Bool { methods.contains("mfa") }
}

/// Checks ID tokens (OpenID Connect Core 1.0, section 3.1.3.7): a JWS signed with RS256 or
/// ES256 by a key of the provider's JWKS (no `none`, no symmetric algorithms, no critical
/// extensions), from the configured issuer, for this client, unexpired, and carrying the
/// nonce of the sign-in it answers.
public enum IDTokenValidator {
    public struct Expectation: Sendable {
        public var issuer: String
        public var clientID: String
        public var nonce: String
        public var now: Date
        /// Clock difference tolerated between provider and registry.
        public var leeway: TimeInterval

        public init(issuer: String, clientID: String, nonce: String, now: Date = Date(), leeway: TimeInterval = 60) {
            self.issuer = issuer
            self.clientID = clientID
            self.nonce = nonce
            self.now = now
            self.leeway = leeway
        }
    }

    public static let algorithms = ["RS256", "ES256"]

    public static func validate(_ token: String, keys: JSONWebKeySet, expecting: Expectation) throws(RegistryError) -> IDTokenClaims {
        func refuse(_ reason: String) -> RegistryError { .externalSignInFailed(reason) }
        let parts = token.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 3, let headerBytes = base64URL(parts[0]), let payloadBytes = base64URL(parts[1]),
              let signature = base64URL(parts[2]) else { throw refuse("the ID token is not a signed JWT") }
        guard let header = try? JSONSerialization.jsonObject(with: headerBytes) as? [String: Any],
              let payload = try? JSONSerialization.jsonObject(with: payloadBytes) as? [String: Any] else {
            throw refuse("the ID token's header or claims are not JSON objects")
        }
        guard let algorithm = header["alg"] as? String, algorithms.contains(algorithm) else {
            throw refuse("the ID token's algorithm \(header["alg"] ?? "none") is not one of \(algorithms.joined(separator: ", "))")
        }
        guard header["crit"] == nil else { throw refuse("the ID token has critical header extensions") }
        let kid = header["kid"] as? String
        let candidates = keys.keys.filter { key in
            (key.use == nil || key.use == "sig") && (key.alg == nil || key.alg == algorithm) && (kid == nil || key.kid == kid)
                && (algorithm == "RS256" ? key.kty == "RSA" : key.kty == "EC" && key.crv == "P-256")
        }
        guard !candidates.isEmpty else { throw refuse("no key of the provider matches the ID token (kid \(kid ?? "none"), \(algorithm))") }
        let signed = Array((parts[0] + "." + parts[1]).utf8)
        guard candidates.contains(where: { verify(signature, over: signed, with: $0, algorithm: algorithm) }) else {
            throw refuse("the ID token's signature does not verify")
        }

        guard let issuer = payload["iss"] as? String, issuer == expecting.issuer else {
            throw refuse("the ID token comes from issuer \(payload["iss"] ?? "none"), not \(expecting.issuer)")
        }
        let audience: [String] = (payload["aud"] as? [String]) ?? ((payload["aud"] as? String).map { [$0] } ?? [])
        guard audience.contains(expecting.clientID) else { throw refuse("the ID token is for \(audience), not this registry") }
        if audience.count > 1, let party = payload["azp"] as? String, party != expecting.clientID {
            throw refuse("the ID token was issued to \(party), not this registry")
        }
        guard let subject = payload["sub"] as? String, !subject.isEmpty, subject.utf8.count <= 255 else {
            throw refuse("the ID token names no subject")
        }
        guard let exp = number(payload["exp"]), let iat = number(payload["iat"]) else { throw refuse("the ID token lacks exp or iat") }
        let now = expecting.now.timeIntervalSince1970
        guard exp + expecting.leeway > now else { throw refuse("the ID token expired") }
        guard iat - expecting.leeway <= now else { throw refuse("the ID token was issued in the future") }
        guard let nonce = payload["nonce"] as? String, ConstantTime.equal(nonce, expecting.nonce) else {
            throw refuse("the ID token's nonce does not match this sign-in")
        }
        let verified: Bool = (payload["email_verified"] as? Bool) ?? ((payload["email_verified"] as? String) == "true")
        return IDTokenClaims(issuer: issuer, subject: subject, audience: audience, expiresAt: Date(timeIntervalSince1970: exp),
                             issuedAt: Date(timeIntervalSince1970: iat), nonce: nonce, email: payload["email"] as? String,
                             emailVerified: verified, preferredUsername: payload["preferred_username"] as? String,
                             name: payload["name"] as? String, methods: payload["amr"] as? [String] ?? [])
    }

    static func verify(_ signature: Data, over signed: [UInt8], with key: JSONWebKey, algorithm: String) -> Bool {
        switch algorithm {
        case "RS256":
            guard let n = key.n.flatMap(base64URL), let e = key.e.flatMap(base64URL),
                  let publicKey = try? _RSA.Signing.PublicKey(n: n, e: e) else { return false }
            return publicKey.isValidSignature(_RSA.Signing.RSASignature(rawRepresentation: signature), for: SHA256.hash(data: signed),
                                              padding: .insecurePKCS1v1_5)
        case "ES256":
            guard let x = key.x.flatMap(base64URL), let y = key.y.flatMap(base64URL), x.count == 32, y.count == 32,
                  let publicKey = try? P256.Signing.PublicKey(rawRepresentation: x + y),
                  let ecdsa = try? P256.Signing.ECDSASignature(rawRepresentation: signature) else { return false }
            return publicKey.isValidSignature(ecdsa, for: SHA256.hash(data: signed))
        default:
            return false
        }
    }

    static func number(_ value: Any?) -> Double? {
        if let value = value as? NSNumber { return value.doubleValue }
        return nil
    }

    /// Base64url without padding (RFC 7515, section 2).
    public static func base64URL(_ text: some StringProtocol) -> Data? {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        guard !base64.contains("=") else { return nil }
        while base64.count % 4 != 0 { base64 += "=" }
        return Data(base64Encoded: base64)
    }

    public static func base64URL(_ data: some DataProtocol) -> String {
        Data(data).base64EncodedString().replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }
}

/// PKCE (RFC 7636) with S256, and the random values of one sign-in.
public struct AuthorizationRequest: Sendable, Equatable {
    public var state: String
    public var nonce: String
    public var verifier: String

    public init() {
        state = RegistryService.randomString(32, prefix: "")
        nonce = RegistryService.randomString(32, prefix: "")
        verifier = RegistryService.randomString(64, prefix: "")
    }

    public var challenge: String { IDTokenValidator.base64URL(Data(SHA256.hash(data: Array(verifier.utf8)))) }
}
