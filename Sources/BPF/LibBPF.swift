import CSockDestroy
import Glibc
import Logging

/// The libbpf 1.x entry points sockctl uses, resolved from `libbpf.so.1` with dlopen/dlsym at run
/// time, so neither the build nor any command needs libbpf-dev. One struct of function pointers:
/// tests can build one from fakes. Signatures mirror libbpf.h / bpf.h of libbpf 1.1 (every symbol
/// used exists in a single version there, so plain dlsym picks it).
public struct LibBPF: @unchecked Sendable {
    public typealias ObjectOpenMem = @convention(c) (UnsafeRawPointer?, Int, UnsafeRawPointer?) -> OpaquePointer?
    public typealias ObjectLoad = @convention(c) (OpaquePointer?) -> Int32
    public typealias ObjectClose = @convention(c) (OpaquePointer?) -> Void
    public typealias FindByName = @convention(c) (OpaquePointer?, UnsafePointer<CChar>?) -> OpaquePointer?
    public typealias AttachIter = @convention(c) (OpaquePointer?, UnsafeRawPointer?) -> OpaquePointer?
    public typealias HandleFD = @convention(c) (OpaquePointer?) -> Int32
    public typealias LinkDestroy = @convention(c) (OpaquePointer?) -> Int32
    public typealias IterCreate = @convention(c) (Int32) -> Int32
    public typealias MapUpdateElem = @convention(c) (Int32, UnsafeRawPointer?, UnsafeRawPointer?, UInt64) -> Int32
    public typealias MapLookupElem = @convention(c) (Int32, UnsafeRawPointer?, UnsafeMutableRawPointer?) -> Int32
    public typealias MapUpdateBatch = @convention(c) (Int32, UnsafeRawPointer?, UnsafeRawPointer?, UnsafeMutablePointer<UInt32>?, UnsafeRawPointer?) -> Int32
    public typealias MapDeleteBatch = @convention(c) (Int32, UnsafeRawPointer?, UnsafeMutablePointer<UInt32>?, UnsafeRawPointer?) -> Int32
    public typealias GetError = @convention(c) (UnsafeRawPointer?) -> Int
    public typealias SetPrint = @convention(c) (UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer?
    public typealias Version = @convention(c) () -> UInt32

    public var objectOpenMem: ObjectOpenMem        // bpf_object__open_mem
    public var objectLoad: ObjectLoad              // bpf_object__load
    public var objectClose: ObjectClose            // bpf_object__close
    public var findProgramByName: FindByName       // bpf_object__find_program_by_name
    public var findMapByName: FindByName           // bpf_object__find_map_by_name
    public var mapFD: HandleFD                     // bpf_map__fd
    public var attachIter: AttachIter              // bpf_program__attach_iter
    public var linkFD: HandleFD                    // bpf_link__fd
    public var linkDestroy: LinkDestroy            // bpf_link__destroy
    public var iterCreate: IterCreate              // bpf_iter_create
    public var mapUpdateElem: MapUpdateElem        // bpf_map_update_elem
    public var mapLookupElem: MapLookupElem        // bpf_map_lookup_elem
    public var mapUpdateBatch: MapUpdateBatch      // bpf_map_update_batch
    public var mapDeleteBatch: MapDeleteBatch      // bpf_map_delete_batch
    public var getError: GetError                  // libbpf_get_error
    public var setPrint: SetPrint                  // libbpf_set_print
    public var majorVersion: Version               // libbpf_major_version
    public var minorVersion: Version               // libbpf_minor_version

    /// The library every caller shares; dlopen'ed on first use, the error remembered.
    public static let shared = Result<LibBPF, BPFError> { () throws(BPFError) in try LibBPF.open() }

    /// dlopen("libbpf.so.1") and resolve every symbol; checks libbpf_major_version() == 1.
    public static func open(path: String = "libbpf.so.1") throws(BPFError) -> LibBPF {
        guard let handle = dlopen(path, RTLD_NOW | RTLD_LOCAL) else {
            let why = dlerror().map { String(cString: $0) } ?? "unknown dlopen error"
            throw .libbpfMissing(detail: why)
        }
        func sym<T>(_ name: String, _: T.Type) throws(BPFError) -> T {
            guard let p = dlsym(handle, name) else { throw .libbpfSymbolMissing(name: name) }
            return unsafeBitCast(p, to: T.self)
        }
        let lib = LibBPF(
            objectOpenMem: try sym("bpf_object__open_mem", ObjectOpenMem.self),
            objectLoad: try sym("bpf_object__load", ObjectLoad.self),
            objectClose: try sym("bpf_object__close", ObjectClose.self),
            findProgramByName: try sym("bpf_object__find_program_by_name", FindByName.self),
            findMapByName: try sym("bpf_object__find_map_by_name", FindByName.self),
            mapFD: try sym("bpf_map__fd", HandleFD.self),
            attachIter: try sym("bpf_program__attach_iter", AttachIter.self),
            linkFD: try sym("bpf_link__fd", HandleFD.self),
            linkDestroy: try sym("bpf_link__destroy", LinkDestroy.self),
            iterCreate: try sym("bpf_iter_create", IterCreate.self),
            mapUpdateElem: try sym("bpf_map_update_elem", MapUpdateElem.self),
            mapLookupElem: try sym("bpf_map_lookup_elem", MapLookupElem.self),
            mapUpdateBatch: try sym("bpf_map_update_batch", MapUpdateBatch.self),
            mapDeleteBatch: try sym("bpf_map_delete_batch", MapDeleteBatch.self),
            getError: try sym("libbpf_get_error", GetError.self),
            setPrint: try sym("libbpf_set_print", SetPrint.self),
            majorVersion: try sym("libbpf_major_version", Version.self),
            minorVersion: try sym("libbpf_minor_version", Version.self)
        )
        let major = lib.majorVersion()
        guard major == 1 else { throw .libbpfVersion(major: major, minor: lib.minorVersion()) }
        LibBPFLog.install(lib)
        return lib
    }

    /// "1.1" as reported by the loaded library.
    public var version: String { "\(majorVersion()).\(minorVersion())" }
}

/// Routes libbpf's own messages (libbpf_set_print) to swift-log and keeps the last warnings so a
/// failed load can say why (the verifier log and "extern ... not found" arrive this way).
/// Set `logger` before the first LibBPF.open / BPFSocketDestroyer() to route them elsewhere;
/// libbpf's debug lines are forwarded only when that logger's level is `.trace`.
public enum LibBPFLog {
    public nonisolated(unsafe) static var logger = Logger(label: "sockctl.bpf.libbpf")
    private nonisolated(unsafe) static var recent: [String] = []
    private nonisolated(unsafe) static var lock = pthread_mutex_t()
    private nonisolated(unsafe) static var installed = false

    static func install(_ lib: LibBPF) {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        guard !installed else { return }
        installed = true
        // libbpf's debug level (2) is hundreds of lines per load: only when the logger wants trace.
        let maxLevel: Int32 = LibBPFLog.logger.logLevel <= .trace ? 2 : 1
        sockctl_libbpf_set_sink({ level, message in
            guard let message else { return }
            let text = String(cString: message)
            switch level {
            case 0: LibBPFLog.remember(text); LibBPFLog.logger.warning("\(text)")
            case 1: LibBPFLog.logger.info("\(text)")
            default: LibBPFLog.logger.trace("\(text)")
            }
        }, maxLevel)
        _ = lib.setPrint(sockctl_libbpf_print_fn())
    }

    private static func remember(_ line: String) {
        pthread_mutex_lock(&lock)
        recent.append(line)
        if recent.count > 40 { recent.removeFirst(recent.count - 40) }
        pthread_mutex_unlock(&lock)
    }

    /// Returns and forgets the warnings collected since the last call.
    static func drainWarnings() -> [String] {
        pthread_mutex_lock(&lock)
        defer { pthread_mutex_unlock(&lock) }
        let out = recent
        recent.removeAll()
        return out
    }
}
