/// Who is acting: the owner of the credential that authenticated the request, and its role.
public struct Principal: Sendable, Equatable {
    public enum Role: String, Sendable, CaseIterable {
        case admin, reviewer, publisher, user
    }

    public var name: String
    public var role: Role

    public init(name: String, role: Role) {
        self.name = name
        self.role = role
    }
}

/// What a request wants to do, as the authorisation policy sees it.
public enum Action: Sendable, Equatable {
    case read
    /// Publishing; the package is nil while the upload has not been read yet.
    case publish(package: String?)
    case yank(package: String)
    case deprecate(package: String)
}

/// The one authorisation policy every endpoint goes through.
///
/// Reading published packages is open to everyone. Changing the registry needs an
/// authenticated principal whose role allows it; package ownership joins this policy when
/// accounts do.
public struct AuthorizationPolicy: Sendable {
    public init() {}

    public func authorize(_ action: Action, for principal: Principal?) throws(RegistryError) {
        switch action {
        case .read:
            return
        case .publish, .yank, .deprecate:
            guard let principal else { throw .unauthenticated }
            guard principal.role == .admin || principal.role == .publisher else {
                throw .forbidden("the \(principal.role.rawValue) role cannot change packages")
            }
        }
    }
}
