import Foundation
import HTTPTypes
import Hummingbird
import NIOCore
import PackageFormat
import Registry
import Storage

/// Blob uploads of the OCI API: sessions opened by POST (or a monolithic POST with the digest,
/// or a cross-repository mount), chunks in order by PATCH, closed by PUT with the digest,
/// looked at by GET and cancelled by DELETE.
extension OCIRoutes {
    /// 201 for a blob now in the repository.
    func blobCreated(_ link: OCIBlobLink) -> Response {
        Response(status: .created, headers: [.location: "/v2/\(link.repository)/blobs/\(link.digest)", Self.contentDigest: link.digest.description,
                                             .contentLength: "0"])
    }

    func uploadHeaders(_ upload: OCIUploads.Upload) -> HTTPFields {
        [.location: "/v2/\(upload.repository)/blobs/uploads/\(upload.id)", .range: "0-\(max(0, upload.size - 1))",
         Self.uploadUUID: upload.id, .contentLength: "0"]
    }

    @Sendable func startUpload(_ request: Request, _ context: RegistryRequestContext) async throws -> Response {
        let repository = try repository(context)
        let caller = try await caller(request, context, may: "push", on: repository)
        try await registry.ociBeginPush(repository: repository, principal: caller.principal)
        let query = request.uri.queryParameters
        if let mount = query.get("mount") {
            let digest = try digest(mount)
            if let from = query.get("from"), let source = try? registry.ociRepository(from),
               caller.allows("pull", on: source) || caller.access == nil,
               let link = try await registry.ociMount(repository: repository, from: source, digest: digest, principal: caller.principal) {
                return blobCreated(link)
            }
        }
        let file = try registry.blobs.temporaryFile()
        var upload = try await uploads.start(repository: repository, owner: caller.principal?.name, file: file)
        if let expected = query.get("digest") {
            // A monolithic upload: the body is the whole blob.
            let link: OCIBlobLink
            do {
                let digest = try digest(expected)
                try await append(request.body, to: &upload)
                link = try await registry.ociReceiveBlob(repository: repository, file: upload.file, actual: upload.hasher.finalize(),
                                                         size: upload.size, expected: digest, principal: caller.principal)
                await uploads.finish(upload.id)
            } catch {
                await uploads.finish(upload.id)
                throw error
            }
            return blobCreated(link)
        }
        guard FileManager.default.createFile(atPath: file.path, contents: nil, attributes: [.posixPermissions: 0o600]) else {
            await uploads.finish(upload.id)
            throw OCIError.blobUploadInvalid("the upload cannot be spooled", status: 500)
        }
        var headers = uploadHeaders(upload)
        headers[Self.chunkMinLength] = "0"
        return Response(status: .accepted, headers: headers)
    }

    /// Appends a request body to the session's file, hashing it, within the upload size limit.
    func append(_ body: RequestBody, to upload: inout OCIUploads.Upload) async throws {
        let fd = open(upload.file.path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw OCIError.blobUploadInvalid("the upload cannot be spooled", status: 500) }
        defer { close(fd) }
        let limit = configuration.maxUploadSize
        for try await buffer in body {
            guard upload.size + Int64(buffer.readableBytes) <= limit else {
                throw OCIError.sizeInvalid("blobs are at most \(limit) bytes", status: 413)
            }
            try buffer.withUnsafeReadableBytes { bytes in
                upload.hasher.update(bytes)
                var offset = 0
                while offset < bytes.count {
                    let n = Glibc.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
                    if n < 0, errno == EINTR { continue }
                    guard n > 0 else { throw OCIError.blobUploadInvalid("the upload could not be stored", status: 507) }
                    offset += n
                }
            }
            upload.size += Int64(buffer.readableBytes)
        }
    }

    @Sendable func uploadStatus(_ request: Request, _ context: RegistryRequestContext) async throws -> Response {
        let repository = try repository(context), id = try context.parameters.require("id")
        let caller = try await caller(request, context, may: "push", on: repository)
        let upload = try await uploads.peek(id, repository: repository, owner: caller.principal?.name)
        return Response(status: .noContent, headers: uploadHeaders(upload))
    }

    @Sendable func patchUpload(_ request: Request, _ context: RegistryRequestContext) async throws -> Response {
        let repository = try repository(context), id = try context.parameters.require("id")
        let caller = try await caller(request, context, may: "push", on: repository)
        var upload = try await uploads.take(id, repository: repository, owner: caller.principal?.name)
        var expected: (start: Int64, end: Int64)?
        if let range = request.headers[.contentRange] {
            let bounds = range.replacingOccurrences(of: "bytes ", with: "").split(separator: "-").map { Int64($0.trimmingCharacters(in: .whitespaces)) }
            let problem: String? = if bounds.count == 2, let start = bounds[0], let end = bounds[1], end >= start - 1 {
                start == upload.size ? nil : "chunks come in order: this upload holds \(upload.size) bytes, the chunk starts at \(start)"
            } else { "Content-Range \(range) is not start-end" }
            if let problem {
                // Nothing was written: the session stays as it was, and says where it stands.
                await uploads.put(upload)
                var response = errorResponse(.blobUploadInvalid(problem, status: 416), request: request, context: context)
                for field in uploadHeaders(upload) where field.name != .contentLength { response.headers[field.name] = field.value }
                return response
            }
            expected = (bounds[0]!, bounds[1]!)
        }
        do {
            if let (start, end) = expected {
                let before = upload.size
                try await append(request.body, to: &upload)
                guard upload.size - before == end - start + 1 else {
                    throw OCIError.blobUploadInvalid("the chunk holds \(upload.size - before) bytes, not the \(end - start + 1) its range says", status: 416)
                }
            } else {
                try await append(request.body, to: &upload)
            }
        } catch {
            // A broken chunk ends the session: what was written cannot be taken back.
            await uploads.finish(id)
            throw error
        }
        await uploads.put(upload)
        return Response(status: .accepted, headers: uploadHeaders(upload))
    }

    @Sendable func finishUpload(_ request: Request, _ context: RegistryRequestContext) async throws -> Response {
        let repository = try repository(context), id = try context.parameters.require("id")
        let caller = try await caller(request, context, may: "push", on: repository)
        guard let expected = request.uri.queryParameters.get("digest") else {
            throw OCIError.digestInvalid("finish an upload with ?digest=sha256:...")
        }
        let digest = try digest(expected)
        var upload = try await uploads.take(id, repository: repository, owner: caller.principal?.name)
        let link: OCIBlobLink
        do {
            try await append(request.body, to: &upload)
            link = try await registry.ociReceiveBlob(repository: repository, file: upload.file, actual: upload.hasher.finalize(), size: upload.size,
                                                     expected: digest, principal: caller.principal)
            await uploads.finish(id)
        } catch {
            await uploads.finish(id)
            throw error
        }
        return blobCreated(link)
    }

    @Sendable func cancelUpload(_ request: Request, _ context: RegistryRequestContext) async throws -> Response {
        let repository = try repository(context), id = try context.parameters.require("id")
        let caller = try await caller(request, context, may: "push", on: repository)
        // Taken first: a session another request is writing to is not cancelled under it.
        _ = try await uploads.take(id, repository: repository, owner: caller.principal?.name)
        await uploads.finish(id)
        return Response(status: .noContent)
    }
}
