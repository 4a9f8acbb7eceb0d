import NIOConcurrencyHelpers
import NIOCore

/// A bounded least-recently-used cache of byte buffers: small package archives (immutable,
/// addressed by digest) and encoded metadata answers, so hot downloads and look-ups are served
/// from memory instead of the disk and the database.
final class MemoryCache<Key: Hashable & Sendable>: Sendable {
    private struct State {
        var buffers: [Key: (buffer: ByteBuffer, used: UInt64)] = [:]
        var bytes = 0
        var clock: UInt64 = 0
    }

    private let state = NIOLockedValueBox(State())
    /// The most bytes held at once; 0 disables the cache.
    let capacity: Int
    /// Larger buffers are never cached.
    let largestEntry: Int

    init(capacity: Int, largestEntry: Int) {
        self.capacity = capacity
        self.largestEntry = min(largestEntry, capacity)
    }

    func get(_ key: Key) -> ByteBuffer? {
        state.withLockedValue { state in
            guard let entry = state.buffers[key] else { return nil }
            state.clock += 1
            state.buffers[key] = (entry.buffer, state.clock)
            return entry.buffer
        }
    }

    func put(_ key: Key, _ buffer: ByteBuffer) {
        guard buffer.readableBytes <= largestEntry, buffer.readableBytes > 0 else { return }
        state.withLockedValue { state in
            if let old = state.buffers.removeValue(forKey: key) { state.bytes -= old.buffer.readableBytes }
            while state.bytes + buffer.readableBytes > capacity,
                  let victim = state.buffers.min(by: { $0.value.used < $1.value.used }) {
                state.buffers[victim.key] = nil
                state.bytes -= victim.value.buffer.readableBytes
            }
            state.clock += 1
            state.buffers[key] = (buffer, state.clock)
            state.bytes += buffer.readableBytes
        }
    }
}
