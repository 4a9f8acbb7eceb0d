import Foundation
import PackageFormat
import Storage

/// Organisations: namespaces whose members own packages together, and transfers of packages
/// to other owners.
extension RegistryService {
    /// An organisation, its members and its packages.
    public struct OrganisationView: Sendable {
        public var organisation: Organisation
        public var members: [OrgMember]
        public var packages: [String]
    }

    /// Creates an organisation (admins: its name claims a namespace) with its first admin.
    public func createOrganisation(name: String, description: String, admin: String, by principal: Principal?) async throws -> OrganisationView {
        try await authorize(.manageUsers, principal, target: name)
        try Self.validateUserName(name)
        // Its namespace is matched against canonical package names, which have no `_`.
        guard !name.contains("_") else { throw RegistryError.invalidRequest("an organisation name has lower-case letters, digits and - only") }
        guard description.count <= 500 else { throw RegistryError.invalidRequest("a description has at most 500 characters") }
        let record = Organisation(name: name, description: description, createdBy: principal?.name ?? "", createdAt: Date())
        do { try await organisations.createOrganisation(record, admin: admin) } catch OrganisationStoreError.exists {
            throw RegistryError.organisationConflict("there is already an organisation \(name)")
        } catch AccountStoreError.userNotFound {
            throw RegistryError.userNotFound(admin)
        }
        await audit("org.create", principal, target: name, detail: "admin \(admin)")
        return try await organisation(name)
    }

    public func organisation(_ name: String) async throws -> OrganisationView {
        guard let organisation = try await organisations.organisation(name: name) else { throw RegistryError.organisationNotFound(name) }
        return OrganisationView(organisation: organisation, members: try await organisations.members(org: name),
                                packages: try await organisations.packages(org: name))
    }

    public func organisationList() async throws -> [Organisation] { try await organisations.organisations() }

    /// The organisation's admins (who manage its members); unknown organisations are refused.
    public func organisationAdmins(_ org: String) async throws -> [String] {
        guard try await organisations.organisation(name: org) != nil else { throw RegistryError.organisationNotFound(org) }
        return try await organisations.members(org: org).filter { $0.role == "admin" }.map(\.user)
    }

    /// Adds a member, or changes a member's role (`admin` or `member`): the organisation's admins.
    public func setMember(_ org: String, user: String, role: String, by principal: Principal?) async throws -> OrgMember {
        try await authorize(.manageOrganisation(org: org), principal, owners: try await organisationAdmins(org), target: org)
        guard ["admin", "member"].contains(role) else { throw RegistryError.invalidRequest("an organisation role is admin or member") }
        if try await accounts.user(name: user)?.disabled != false { throw RegistryError.userNotFound(user) }
        let member = OrgMember(org: org, user: user, role: role, addedAt: Date())
        do { try await organisations.setMember(member) } catch OrganisationStoreError.lastAdmin {
            throw RegistryError.organisationConflict("\(org) would have no admin left; make another member admin first")
        }
        await audit("org.member", principal, target: org, detail: "\(user) as \(role)")
        return try await organisations.members(org: org).first { $0.user == user } ?? member
    }

    /// Removes a member: the organisation's admins, or the member itself.
    public func removeMember(_ org: String, user: String, by principal: Principal?) async throws {
        if let principal, principal.name == user {
            try await authorize(.giveUpAccess(what: "leaving an organisation"), principal, target: org)
            guard try await organisations.organisation(name: org) != nil else { throw RegistryError.organisationNotFound(org) }
        } else {
            try await authorize(.manageOrganisation(org: org), principal, owners: try await organisationAdmins(org), target: org)
        }
        do { try await organisations.removeMember(org: org, user: user) } catch OrganisationStoreError.lastAdmin {
            throw RegistryError.organisationConflict("\(user) is the last admin of \(org); make another member admin first")
        } catch OrganisationStoreError.notMember {
            throw RegistryError.organisationConflict("\(user) is not a member of \(org)")
        }
        await audit("org.member-remove", principal, target: org, detail: user)
    }

    /// Moves a package into an organisation (whoever manages its owners, being an admin
    /// there), or out of its organisation (nil: that organisation's admins; a direct owner must
    /// remain). Moving between organisations takes an admin of both.
    public func setOrganisation(ofPackage name: String, to org: String?, by principal: Principal?) async throws {
        let canonical = try Self.canonical(name)
        guard try await metadata.package(canonical: canonical) != nil else { throw RegistryError.packageNotFound(name) }
        try await authorize(.manageOwners(package: name), principal, owners: try await organisations.ownerManagers(package: canonical),
                            target: canonical)
        if let current = try await organisations.organisation(ofPackage: canonical), current != org {
            try await authorize(.manageOrganisation(org: current), principal, owners: try await organisationAdmins(current), target: canonical)
        }
        if let org {
            try await authorize(.manageOrganisation(org: org), principal, owners: try await organisationAdmins(org), target: canonical)
        }
        do { try await organisations.setOrganisation(ofPackage: canonical, to: org) } catch AccountStoreError.lastOwner {
            throw RegistryError.ownerConflict("\(name) has no owner outside its organisation; add one before taking it out")
        }
        await audit(org == nil ? "org.package-remove" : "org.package-add", principal, target: canonical, detail: org)
    }

    /// Offers a package to a user, who becomes its only owner on accepting.
    public func transfer(_ name: String, to user: String, by principal: Principal?) async throws -> OwnerInvitation {
        let canonical = try Self.canonical(name)
        guard try await metadata.package(canonical: canonical) != nil else { throw RegistryError.packageNotFound(name) }
        try await authorize(.manageOwners(package: name), principal, owners: try await organisations.ownerManagers(package: canonical),
                            target: canonical)
        guard let target = try await accounts.user(name: user), !target.disabled else { throw RegistryError.userNotFound(user) }
        guard (Principal.Role(rawValue: target.role) ?? .user).scopes.contains(.owners) else {
            throw RegistryError.ownerConflict("\(user) has the \(target.role) role, which cannot own packages")
        }
        if let org = try await organisations.organisation(ofPackage: canonical) {
            throw RegistryError.ownerConflict("\(name) belongs to the organisation \(org), whose members would keep it; take it out first")
        }
        // The offer stands while whoever made it owns the package directly.
        guard let principal, try await accounts.owners(package: canonical).contains(principal.name) else {
            throw RegistryError.ownerConflict("only a direct owner of \(name) can transfer it; \(principal?.name ?? "") owns it through an organisation")
        }
        let invitation = OwnerInvitation(package: canonical, user: user, invitedBy: principal.name, createdAt: Date(), transfer: true)
        do { try await organisations.offerTransfer(invitation) } catch AccountStoreError.alreadyOwner {
            throw RegistryError.ownerConflict("\(user) already owns \(name); remove the other owners instead")
        }
        await audit("owner.transfer-offer", principal, target: canonical, detail: user)
        return invitation
    }
}
