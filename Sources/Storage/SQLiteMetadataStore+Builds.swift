import Foundation
import NIOCore
import PackageFormat
import SQLiteNIO

/// Build jobs: taken by build workers only, and completed with the built archive when the
/// submission carried sources.
extension SQLiteMetadataStore {
    static let buildCheck = CheckJob.buildCheck

    public func claimBuildJob(lease: TimeInterval) async throws -> CheckJob? {
        try await claim(lease: lease, build: true)
    }

    public func completeBuildJob(id: Int, attempt: Int, result: CheckResult, rebuilt: RebuiltArchive?, commitBlob: @Sendable () async throws -> Void,
                                 verdict: @Sendable ([CheckResult], Bool) -> CheckVerdict) async throws -> Bool {
        try await transaction { writer in
            let now = Date().timeIntervalSince1970
            guard let submission = try await writer.query("""
                SELECT submission FROM check_jobs WHERE id = ? AND state = 'running' AND attempts = ? AND check_id = '\(Self.buildCheck)'
                """, [.integer(id), .integer(attempt)]).first?.column("submission")?.string else { return false }
            if let rebuilt {
                // The contributor's signature covered the sources, not the built archive.
                _ = try await writer.query("""
                    UPDATE submissions SET digest = ?, size = ?, report = ?, updated_at = ?, signature = NULL, signer = NULL, signer_key_id = NULL,
                        signature_checked_at = NULL WHERE id = ?
                    """,
                                           [.text(rebuilt.digest.hex), .integer(Int(rebuilt.size)), .blob(ByteBuffer(bytes: rebuilt.report)),
                                            .float(now), .text(submission)])
                _ = try await writer.query("UPDATE check_jobs SET result = ? WHERE submission = ? AND check_id = 'inspection'",
                                           [.blob(ByteBuffer(bytes: rebuilt.inspection)), .text(submission)])
            }
            _ = try await writer.query("""
                UPDATE check_jobs SET state = 'done', result = ?, finished_at = ?, lease_until = NULL WHERE id = ?
                """, [.blob(ByteBuffer(bytes: try JSONEncoder().encode(result))), .float(now), .integer(id)])
            if rebuilt != nil { try await commitBlob() }
            try await Self.decideIfChecked(submission, at: now, verdict: verdict, writer)
            return true
        }
    }
}
