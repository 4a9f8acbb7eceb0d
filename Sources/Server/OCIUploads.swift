import Foundation
import PackageFormat
import Registry

/// Blob upload sessions of the OCI API: each spools into a temporary file of the blob store,
/// hashed as it grows. Sessions idle for an hour are dropped with their files; a restart drops
/// them all (the sweep at start removes the files).
actor OCIUploads {
    struct Upload: Sendable {
        let id: String
        let repository: String
        let owner: String?
        let file: URL
        var size: Int64 = 0
        var hasher = StreamingSHA256()
        var updated = Date()
        /// A request is appending to it.
        var busy = false
    }

    static let idleLimit: TimeInterval = 3600
    static let sessionLimit = 1000
    /// Sessions one user (or all anonymous callers together) may hold at once.
    static let sessionsPerOwner = 50
    private var uploads: [String: Upload] = [:]

    func start(repository: String, owner: String?, file: URL) throws -> Upload {
        sweep()
        guard uploads.count < Self.sessionLimit, uploads.values.filter({ $0.owner == owner }).count < Self.sessionsPerOwner else {
            throw OCIError.tooManyRequests("too many uploads are under way; finish or cancel some")
        }
        let upload = Upload(id: UUID().uuidString.lowercased(), repository: repository, owner: owner, file: file)
        uploads[upload.id] = upload
        return upload
    }

    /// The session, taken for one request to write (refused while another writes).
    func take(_ id: String, repository: String, owner: String?) throws -> Upload {
        guard var upload = uploads[id], upload.repository == repository, upload.owner == owner else { throw OCIError.blobUploadUnknown(id) }
        guard !upload.busy else { throw OCIError.blobUploadInvalid("another request is writing to this upload", status: 409) }
        upload.busy = true
        uploads[id] = upload
        return upload
    }

    func peek(_ id: String, repository: String, owner: String?) throws -> Upload {
        guard let upload = uploads[id], upload.repository == repository, upload.owner == owner else { throw OCIError.blobUploadUnknown(id) }
        return upload
    }

    /// Gives the session back after a write, unless it ended meanwhile.
    func put(_ upload: Upload) {
        guard uploads[upload.id] != nil else { return }
        var upload = upload
        upload.busy = false
        upload.updated = Date()
        uploads[upload.id] = upload
    }

    /// Ends a session; its file is removed unless it was consumed.
    func finish(_ id: String) {
        if let upload = uploads.removeValue(forKey: id) { try? FileManager.default.removeItem(at: upload.file) }
    }

    private func sweep() {
        let cutoff = Date().addingTimeInterval(-Self.idleLimit)
        for (id, upload) in uploads where upload.updated < cutoff && !upload.busy {
            uploads[id] = nil
            try? FileManager.default.removeItem(at: upload.file)
        }
    }
}
