import NIOCore
@testable import Server
import Testing

@Suite struct MemoryCacheTests {
    @Test func evictsTheLeastRecentlyUsedWithinItsCapacity() {
        let cache = MemoryCache<String>(capacity: 300, largestEntry: 150)
        let buffer = { (size: Int) in ByteBuffer(repeating: 1, count: size) }
        cache.put("a", buffer(100))
        cache.put("b", buffer(100))
        cache.put("c", buffer(100))
        #expect(cache.get("a") != nil) // a is now the most recently used
        cache.put("d", buffer(100))     // evicts b, the least recently used
        #expect(cache.get("b") == nil)
        #expect(cache.get("a")?.readableBytes == 100)
        #expect(cache.get("c") != nil && cache.get("d") != nil)
        cache.put("huge", buffer(151))
        #expect(cache.get("huge") == nil, "entries over the largest size are not kept")
        #expect(MemoryCache<String>(capacity: 0, largestEntry: 100).get("x") == nil)
        let disabled = MemoryCache<String>(capacity: 0, largestEntry: 100)
        disabled.put("x", buffer(10))
        #expect(disabled.get("x") == nil, "a capacity of 0 turns the cache off")
    }
}
