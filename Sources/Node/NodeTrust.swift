import Foundation
import Logging
import Signing
import X509

/// What a node trusts, and the revocation list it keeps current: lists are taken only when
/// they verify to the node's roots and are not older (by sequence number) than the one it has,
/// so an old list cannot be replayed to it; the list it has is kept on disk across restarts.
public actor NodeTrust {
    public let roots: [Certificate]
    /// The repository whose attestations count, when the node names one.
    public let repository: String?
    let file: URL
    let logger: Logger
    private(set) var current: (list: RevocationList, content: RevocationList.Content)?

    public init(roots: [Certificate], repository: String? = nil, file: URL, logger: Logger) async {
        self.roots = roots
        self.repository = repository
        self.file = file
        self.logger = logger
        if let data = try? Data(contentsOf: file), let list = try? JSONDecoder().decode(RevocationList.self, from: data),
           let content = try? await list.verifiedContent(roots: roots, at: list.signedTime) {
            current = (list, content)
        }
    }

    /// The sequence number of the list kept, 0 without one.
    public var sequence: Int { current?.content.sequence ?? 0 }

    /// Offers a list from the repository or a mirror; returns whether it is now the one kept.
    @discardableResult
    /// A list is taken when it verifies to the roots at `now`, its number is above the kept
    /// one's, its signer is not revoked by the kept list, and it keeps every revocation the kept
    /// list holds.
    public func offer(_ data: Data, from source: String, now: Date = Date()) async -> Bool {
        let list: RevocationList, content: RevocationList.Content
        do {
            list = try JSONDecoder().decode(RevocationList.self, from: data)
            content = try await list.verifiedContent(roots: roots, at: now)
        } catch {
            logger.warning("revocation list refused", metadata: ["source": "\(source)", "reason": "\(error)"])
            return false
        }
        if let current {
            if content.sequence < current.content.sequence {
                logger.warning("revocation list refused", metadata: ["source": "\(source)",
                    "reason": "its number \(content.sequence) is below the \(current.content.sequence) already seen (an old list replayed)"])
                return false
            }
            if content.sequence == current.content.sequence {
                // The same list again; a different one under the same number is not taken.
                if content != current.content {
                    logger.warning("revocation list refused", metadata: ["source": "\(source)",
                        "reason": "it differs from the list of the same number \(content.sequence) already seen"])
                }
                return content == current.content
            }
            // An authority the kept list revokes cannot sign itself back into trust.
            if let signer = list.signer, current.content.entry(for: signer) != nil {
                logger.error("revocation list refused", metadata: ["source": "\(source)",
                    "reason": "it is signed by the revoked authority \(RevocationList.serial(of: signer))"])
                return false
            }
            // What was revoked stays revoked: a later list drops no entry.
            let kept = Set(content.revoked.map(\.serial))
            if let dropped = current.content.revoked.first(where: { !kept.contains($0.serial) }) {
                logger.error("revocation list refused", metadata: ["source": "\(source)",
                    "reason": "it no longer lists \(dropped.serial), which was revoked"])
                return false
            }
        }
        if current?.content.sequence != content.sequence {
            do {
                try FileManager.default.createDirectory(at: file.deletingLastPathComponent(), withIntermediateDirectories: true)
                try data.write(to: file, options: .atomic)
            } catch {
                logger.error("cannot keep the revocation list", metadata: ["file": "\(file.path)", "error": "\(error)"])
            }
            logger.info("revocation list", metadata: ["sequence": "\(content.sequence)", "revoked": "\(content.revoked.count)",
                                                     "expires": "\(content.expires)"])
        }
        current = (list, content)
        return true
    }

    /// What trusted mode checks against now; refused without a current revocation list.
    public func anchors(now: Date = Date()) throws(VerificationRefusal) -> TrustAnchors {
        guard let current else {
            throw VerificationRefusal(.revocationsUnavailable, "no revocation list of the repository's signing authority is known: revocations cannot be checked")
        }
        guard current.content.expires > now else {
            throw VerificationRefusal(.revocationsUnavailable, "the revocation list expired on \(current.content.expires.formatted(.iso8601)): fetch a current one")
        }
        return TrustAnchors(roots: roots, revocations: current.content, repository: repository)
    }
}
