/// One 8-byte BPF instruction slot, decoded for the byte order of its object.
struct Instruction: Sendable {
    let opcode: UInt8
    let destination: UInt8
    let source: UInt8
    let offset: Int16
    let immediate: Int32

    static let size = 8
    static let call: UInt8 = 0x85          // BPF_JMP | BPF_CALL
    static let loadImmediate64: UInt8 = 0x18 // BPF_LD | BPF_IMM | BPF_DW, occupies two slots
    static let pseudoCall: UInt8 = 1
    static let pseudoKfuncCall: UInt8 = 2
    static let tailCallHelper: Int32 = 12

    init(_ r: ByteReader, at offset: Int) {
        opcode = r.bytes[offset]
        let registers = r.bytes[offset + 1]
        // The register nibbles are a C bitfield, so their order follows the byte order.
        if r.littleEndian {
            destination = registers & 0x0F
            source = registers >> 4
        } else {
            destination = registers >> 4
            source = registers & 0x0F
        }
        self.offset = Int16(bitPattern: r.unchecked16(offset + 2))
        immediate = Int32(bitPattern: r.unchecked32(offset + 4))
    }
}
