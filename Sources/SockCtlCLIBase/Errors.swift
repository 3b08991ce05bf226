import ArgumentParser
import Namespaces
import Netlink
import SocketFilter
#if canImport(Glibc)
import Glibc
#endif

/// Exit statuses shared by every verb (DESIGN.md): 0 done, 1 nothing matched, 2 usage/filter/config,
/// 3 permission or kernel support missing, 4 partial failure.
public enum Exit {
    public static let nothingMatched: Int32 = 1
    public static let usage: Int32 = 2
    public static let permission: Int32 = 3
    public static let partial: Int32 = 4
}

/// Prints one line to stderr and exits with the status the error calls for.
public func fail(_ error: Error) -> ExitCode {
    let (text, status) = describe(error)
    FileHandleStderr.write("sockctl: \(text)\n")
    return ExitCode(status)
}

public func describe(_ error: Error) -> (String, Int32) {
    switch error {
    case let e as FilterSyntaxError: return ("\(e)", Exit.usage)
    case let e as FilterCompileError: return ("\(e)", Exit.usage)
    case let e as NamespaceError: return ("\(e)", e.exitStatus)
    case let e as NetlinkError:
        if e.isPermission {
            return ("\(e): needs CAP_NET_ADMIN in the socket's network namespace", Exit.permission)
        }
        if e.code == EOPNOTSUPP && e.operation.hasPrefix("SOCK_DESTROY") {
            return ("\(e): kernel built without CONFIG_INET_DIAG_DESTROY", Exit.permission)
        }
        return ("\(e)", Exit.partial)
    default: return ("\(error)", Exit.partial)
    }
}

public enum FileHandleStderr {
    public static func write(_ s: String) {
        var s = s
        s.withUTF8 { _ = Glibc.write(2, $0.baseAddress, $0.count) }
    }
}
