#if canImport(Glibc)
import Glibc
#endif

/// Interface name <-> index lookups in the calling thread's network namespace: call them inside a
/// `NamespaceRunner` body to see that namespace's interfaces (the filter's `dev NAME`, the output's
/// `iface` column). glibc answers them over a netlink/ioctl socket it opens on the calling thread,
/// which is why the thread's namespace is the one that counts.
public enum Interfaces {
    /// Every interface of the current namespace: ifindex -> name (if_nameindex(3), RTM_GETLINK).
    public static func names() throws -> [UInt32: String] {
        guard let list = if_nameindex() else {
            let err = errno
            throw NamespaceError(.system, "if_nameindex: \(String(cString: strerror(err)))", errno: err)
        }
        defer { if_freenameindex(list) }
        var out: [UInt32: String] = [:]
        var p = list
        while p.pointee.if_index != 0, let name = p.pointee.if_name {
            out[p.pointee.if_index] = String(cString: name)
            p += 1
        }
        return out
    }

    /// The index of interface `name` in the current namespace (if_nametoindex(3)), nil if none.
    public static func index(of name: String) -> UInt32? {
        let i = if_nametoindex(name)
        return i == 0 ? nil : i
    }

    /// The name of interface `index` in the current namespace (if_indextoname(3)), nil if none.
    public static func name(of index: UInt32) -> String? {
        var buf = [CChar](repeating: 0, count: Int(IF_NAMESIZE) + 1)
        guard if_indextoname(index, &buf) != nil else { return nil }
        return String(cString: buf)
    }
}

/// Free-function form named in the design notes: `Interfaces.names()`.
public func interfaceNames() throws -> [UInt32: String] { try Interfaces.names() }
