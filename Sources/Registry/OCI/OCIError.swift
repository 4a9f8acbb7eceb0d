import Foundation

/// An error of the OCI distribution API: one of the specification's codes, with the HTTP status
/// it is answered with.
public struct OCIError: Error, Sendable, Equatable, CustomStringConvertible {
    public let code: String
    public let status: Int
    public let message: String
    public let detail: String?

    public init(code: String, status: Int, message: String, detail: String? = nil) {
        self.code = code
        self.status = status
        self.message = message
        self.detail = detail
    }

    public var description: String { "\(code): \(message)" + (detail.map { " (\($0))" } ?? "") }

    public static func blobUnknown(_ digest: String) -> OCIError { OCIError(code: "BLOB_UNKNOWN", status: 404, message: "blob unknown to registry", detail: digest) }
    public static func blobUploadUnknown(_ id: String) -> OCIError {
        OCIError(code: "BLOB_UPLOAD_UNKNOWN", status: 404, message: "blob upload unknown to registry", detail: id)
    }
    public static func blobUploadInvalid(_ reason: String, status: Int = 400) -> OCIError {
        OCIError(code: "BLOB_UPLOAD_INVALID", status: status, message: "blob upload invalid", detail: reason)
    }
    public static func digestInvalid(_ reason: String) -> OCIError {
        OCIError(code: "DIGEST_INVALID", status: 400, message: "provided digest did not match uploaded content", detail: reason)
    }
    public static func manifestBlobUnknown(_ digests: [String]) -> OCIError {
        OCIError(code: "MANIFEST_BLOB_UNKNOWN", status: 400, message: "manifest references a manifest or blob unknown to registry",
                 detail: digests.joined(separator: ", "))
    }
    public static func manifestInvalid(_ reason: String) -> OCIError {
        OCIError(code: "MANIFEST_INVALID", status: 400, message: "manifest invalid", detail: reason)
    }
    public static func manifestUnknown(_ reference: String) -> OCIError {
        OCIError(code: "MANIFEST_UNKNOWN", status: 404, message: "manifest unknown to registry", detail: reference)
    }
    public static func nameInvalid(_ name: String, _ reason: String) -> OCIError {
        OCIError(code: "NAME_INVALID", status: 400, message: "invalid repository name", detail: "\(name): \(reason)")
    }
    public static func nameUnknown(_ name: String) -> OCIError {
        OCIError(code: "NAME_UNKNOWN", status: 404, message: "repository name not known to registry", detail: name)
    }
    public static func sizeInvalid(_ reason: String, status: Int = 400) -> OCIError {
        OCIError(code: "SIZE_INVALID", status: status, message: "provided length did not match content length", detail: reason)
    }
    public static func unsupported(_ reason: String, status: Int = 405) -> OCIError {
        OCIError(code: "UNSUPPORTED", status: status, message: "the operation is unsupported", detail: reason)
    }
    public static func denied(_ reason: String) -> OCIError {
        OCIError(code: "DENIED", status: 403, message: "requested access to the resource is denied", detail: reason)
    }
    /// A valid token that does not grant what the request needs (RFC 6750's insufficient_scope):
    /// answered 403 with a challenge naming the scope to ask for.
    public static func insufficientScope(_ reason: String) -> OCIError {
        OCIError(code: "DENIED", status: 403, message: insufficientScopeMessage, detail: reason)
    }
    public static let insufficientScopeMessage = "the token's scope does not cover the request"
    public static func unauthorized(_ reason: String) -> OCIError {
        OCIError(code: "UNAUTHORIZED", status: 401, message: "authentication required", detail: reason)
    }
    public static func tooManyRequests(_ reason: String) -> OCIError {
        OCIError(code: "TOOMANYREQUESTS", status: 429, message: "too many requests", detail: reason)
    }
}
