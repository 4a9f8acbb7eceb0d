import ArgumentParser
import Foundation

/// A one-request HTTP listener on 127.0.0.1 for the end of a browser sign-in (RFC 8252): the
/// browser is sent here with the code, so the token reaches only a command line on the machine
/// where the browser signed in.
final class LoopbackListener: @unchecked Sendable { // used by one command, from one task
    let descriptor: Int32
    let port: Int

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw ValidationError("cannot open a socket for the sign-in") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = 0
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let named = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard bound == 0, listen(descriptor, 4) == 0, named == 0 else {
            Glibc.close(descriptor)
            throw ValidationError("cannot listen on 127.0.0.1 for the sign-in")
        }
        self.descriptor = descriptor
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() { Glibc.close(descriptor) }

    /// The query of the first request that comes with one (others, such as a favicon, get 404).
    func awaitRedirect(timeout: TimeInterval) async throws -> [String: String] {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let ready = poll(&poller, 1, 200)
            if ready <= 0 {
                try await Task.sleep(for: .milliseconds(50))
                continue
            }
            let connection = accept(descriptor, nil, nil)
            guard connection >= 0 else { continue }
            defer { Glibc.close(connection) }
            var timeout = timeval(tv_sec: 5, tv_usec: 0)
            setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            var buffer = [UInt8](repeating: 0, count: 8192)
            let count = read(connection, &buffer, buffer.count)
            guard count > 0 else { continue }
            let head = String(decoding: buffer[0..<count], as: UTF8.self)
            let target = head.split(separator: " ", maxSplits: 2).dropFirst().first.map(String.init) ?? ""
            let items = URLComponents(string: "http://127.0.0.1" + target)?.queryItems ?? []
            let query = Dictionary(items.compactMap { item in item.value.map { (item.name, $0) } }, uniquingKeysWith: { first, _ in first })
            guard query["code"] != nil || query["error"] != nil else {
                respond(connection, status: "404 Not Found", text: "not here")
                continue
            }
            respond(connection, status: "200 OK", text: query["error"].map { "The sign-in failed: \($0)" }
                ?? "Signed in as \(query["user"] ?? "you"). Return to the terminal.")
            return query
        }
        Output.error("the sign-in was not finished in time")
        throw ReportedFailure()
    }

    private func respond(_ connection: Int32, status: String, text: String) {
        let body = Array((text + "\n").utf8)
        let head = "HTTP/1.1 \(status)\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: \(body.count)\r\nConnection: close\r\n"
            + "Cache-Control: no-store\r\n\r\n"
        let bytes = Array(head.utf8) + body
        _ = bytes.withUnsafeBytes { write(connection, $0.baseAddress, $0.count) }
    }
}
