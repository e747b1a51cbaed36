import Foundation

/// What the dynamic loader needs to know about an ELF file: its interpreter and the
/// libraries and search paths of its dynamic section.
///
/// Read from the program headers only (PT_INTERP, PT_DYNAMIC, PT_LOAD), which stripped
/// binaries keep, and without running the binary (unlike `ldd`, which runs the loader on it).
struct ELFFile: Equatable {
    /// ELFCLASS32 or ELFCLASS64.
    let is64Bit: Bool
    /// e_machine, so a 64-bit program never gets a 32-bit library of the same name.
    let machine: UInt16
    /// PT_INTERP, e.g. `/lib64/ld-linux-x86-64.so.2`; nil for static binaries.
    let interpreter: String?
    /// DT_NEEDED entries in order.
    let needed: [String]
    /// DT_RPATH, split at ':'.
    let rpath: [String]
    /// DT_RUNPATH, split at ':'.
    let runpath: [String]

    private static let programHeaderInterp: UInt32 = 3
    private static let programHeaderDynamic: UInt32 = 2
    private static let programHeaderLoad: UInt32 = 1
    private static let dynamicNeeded: UInt64 = 1
    private static let dynamicStringTable: UInt64 = 5
    private static let dynamicStringTableSize: UInt64 = 10
    private static let dynamicRPath: UInt64 = 15
    private static let dynamicRunPath: UInt64 = 29

    /// Parses `path`; nil if it is not an ELF file (a script, a text file).
    static func read(path: String) throws -> ELFFile? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw ImageError.io("cannot open", path, errno: errno) }
        defer { close(fd) }
        let file = Reader(fd: fd, path: path)
        let ident = try file.bytes(at: 0, count: 16, allowShort: true)
        guard ident.count == 16, ident[0] == 0x7f, ident[1] == 0x45, ident[2] == 0x4c, ident[3] == 0x46 else {
            return nil
        }
        guard ident[4] == 1 || ident[4] == 2, ident[5] == 1 || ident[5] == 2 else {
            throw ImageError(.recipe, "\(path) is an ELF file of an unknown class or byte order")
        }
        let is64 = ident[4] == 2
        let decoder = ByteOrderReader(littleEndian: ident[5] == 1)
        let header = try file.bytes(at: 0, count: is64 ? 64 : 52)
        let machine = decoder.u16(header, 18)
        let programOffset = is64 ? decoder.u64(header, 32) : UInt64(decoder.u32(header, 28))
        let entrySize = Int(decoder.u16(header, is64 ? 54 : 42))
        let entryCount = Int(decoder.u16(header, is64 ? 56 : 44))

        struct Segment {
            let type: UInt32
            let offset: UInt64
            let address: UInt64
            let fileSize: UInt64
        }
        var segments: [Segment] = []
        if entryCount > 0 {
            guard entrySize >= (is64 ? 56 : 32) else {
                throw ImageError(.recipe, "\(path) has program headers of an impossible size \(entrySize)")
            }
            let table = try file.bytes(at: programOffset, count: entrySize * entryCount)
            for index in 0..<entryCount {
                let base = index * entrySize
                if is64 {
                    segments.append(Segment(
                        type: decoder.u32(table, base), offset: decoder.u64(table, base + 8),
                        address: decoder.u64(table, base + 16), fileSize: decoder.u64(table, base + 32)))
                } else {
                    segments.append(Segment(
                        type: decoder.u32(table, base), offset: UInt64(decoder.u32(table, base + 4)),
                        address: UInt64(decoder.u32(table, base + 8)), fileSize: UInt64(decoder.u32(table, base + 16))))
                }
            }
        }

        var interpreter: String?
        if let interp = segments.first(where: { $0.type == programHeaderInterp }) {
            let raw = try file.bytes(at: interp.offset, count: Int(interp.fileSize))
            interpreter = String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        guard let dynamic = segments.first(where: { $0.type == programHeaderDynamic }) else {
            return ELFFile(is64Bit: is64, machine: machine, interpreter: interpreter, needed: [], rpath: [], runpath: [])
        }

        // Dynamic entries are (tag, value) pairs; string values are offsets into DT_STRTAB,
        // which is given as a virtual address and must be mapped back to a file offset.
        let raw = try file.bytes(at: dynamic.offset, count: Int(dynamic.fileSize))
        let pairSize = is64 ? 16 : 8
        var entries: [(tag: UInt64, value: UInt64)] = []
        var position = 0
        while position + pairSize <= raw.count {
            let tag = is64 ? decoder.u64(raw, position) : UInt64(decoder.u32(raw, position))
            let value = is64 ? decoder.u64(raw, position + 8) : UInt64(decoder.u32(raw, position + 4))
            if tag == 0 { break }
            entries.append((tag, value))
            position += pairSize
        }
        guard let tableAddress = entries.first(where: { $0.tag == dynamicStringTable })?.value else {
            return ELFFile(is64Bit: is64, machine: machine, interpreter: interpreter, needed: [], rpath: [], runpath: [])
        }
        guard let load = segments.first(where: {
            $0.type == programHeaderLoad && tableAddress >= $0.address && tableAddress < $0.address + $0.fileSize
        }) else {
            throw ImageError(.recipe, "\(path): the dynamic string table lies outside every loaded segment")
        }
        let tableOffset = tableAddress - load.address + load.offset
        let tableSize = entries.first(where: { $0.tag == dynamicStringTableSize })?.value ?? (load.fileSize - (tableAddress - load.address))
        let strings = try file.bytes(at: tableOffset, count: Int(tableSize), allowShort: true)
        func string(_ offset: UInt64) -> String {
            guard offset < UInt64(strings.count) else { return "" }
            return String(decoding: strings[Int(offset)...].prefix { $0 != 0 }, as: UTF8.self)
        }
        func paths(_ tag: UInt64) -> [String] {
            entries.filter { $0.tag == tag }.flatMap { string($0.value).split(separator: ":").map(String.init) }
        }
        return ELFFile(
            is64Bit: is64, machine: machine, interpreter: interpreter,
            needed: entries.filter { $0.tag == dynamicNeeded }.map { string($0.value) },
            rpath: paths(dynamicRPath), runpath: paths(dynamicRunPath))
    }

    private struct Reader {
        let fd: Int32
        let path: String

        func bytes(at offset: UInt64, count: Int, allowShort: Bool = false) throws -> [UInt8] {
            guard count >= 0, count < 1 << 28 else { throw ImageError(.recipe, "\(path): implausible ELF table size \(count)") }
            var buffer = [UInt8](repeating: 0, count: count)
            var filled = 0
            while filled < count {
                let got = buffer.withUnsafeMutableBytes { raw in
                    pread(fd, raw.baseAddress.map { $0 + filled }, count - filled, off_t(offset) + off_t(filled))
                }
                if got < 0 {
                    if errno == EINTR { continue }
                    throw ImageError.io("cannot read", path, errno: errno)
                }
                if got == 0 { break }
                filled += got
            }
            if filled < count {
                guard allowShort else { throw ImageError(.recipe, "\(path) is a truncated ELF file") }
                buffer.removeLast(count - filled)
            }
            return buffer
        }
    }

    private struct ByteOrderReader {
        let littleEndian: Bool

        func u16(_ bytes: [UInt8], _ at: Int) -> UInt16 { UInt16(truncatingIfNeeded: value(bytes, at, 2)) }
        func u32(_ bytes: [UInt8], _ at: Int) -> UInt32 { UInt32(truncatingIfNeeded: value(bytes, at, 4)) }
        func u64(_ bytes: [UInt8], _ at: Int) -> UInt64 { value(bytes, at, 8) }

        private func value(_ bytes: [UInt8], _ at: Int, _ width: Int) -> UInt64 {
            var result: UInt64 = 0
            for index in 0..<width {
                let byte = UInt64(bytes[at + (littleEndian ? width - 1 - index : index)])
                result = result << 8 | byte
            }
            return result
        }
    }
}
