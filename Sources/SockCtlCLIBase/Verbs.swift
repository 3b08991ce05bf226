import ArgumentParser
#if canImport(Glibc)
import Glibc
#endif

/// The verbs `sockctl-full` implements. `sockctl` itself holds only list, kill, watch and netns,
/// the commands that run often and briefly: without the daemon's, supervisor's and SYN proxy's
/// libraries (NIO, Hummingbird, Foundation, Yams) it is a quarter of the size, and its start-up
/// (dynamic relocations, Swift protocol-conformance scans, which grow with the binary) is about
/// half: a kill or list in one namespace takes 4-5 ms of CPU instead of about 9. For these verbs `sockctl` execs `sockctl-full` from its own directory with
/// the same arguments, before parsing any: same pid, same fds, same environment (systemd's
/// NOTIFY_SOCKET and LISTEN_FDS included).
public enum FullVerb: String, CaseIterable, Sendable {
    case run, upgrade, status, fd, syn, daemon

    public var abstract: String {
        switch self {
        case .run: return "Start a server with listeners it inherits (LISTEN_FDS), and upgrade it without dropping a connection."
        case .upgrade: return "Start the next generation of a supervised server; exit 0 once it serves and the old one is gone."
        case .status: return "Show a supervisor's generations, listeners and upgrades."
        case .fd: return "Pass named fds between unrelated processes over a unix socket (SCM_RIGHTS)."
        case .syn: return "Fingerprint each client's SYN (TCP_SAVED_SYN): p0f signature, MuonFP, OS; optionally a filtering proxy."
        case .daemon: return "Kill sockets by policy: on address/link events in every namespace, on intervals, and on API request."
        }
    }

    /// The file name of the executable that implements these verbs, next to `sockctl`.
    public static let executableName = "sockctl-full"

    /// When `arguments` (argv) name one of these verbs, directly or as `help VERB`, replaces this
    /// process with `sockctl-full` and the same arguments; otherwise returns. Exits 4 with the
    /// reason when sockctl-full cannot be run.
    public static func forwardIfNeeded(_ arguments: [String]) {
        guard arguments.count > 1 else { return }
        let verb = arguments[1] == "help" && arguments.count > 2 ? arguments[2] : arguments[1]
        guard FullVerb(rawValue: verb) != nil else { return }
        let target = siblingPath()
        var argv: [UnsafeMutablePointer<CChar>?] = (["sockctl"] + arguments.dropFirst()).map { strdup($0) }
        argv.append(nil)
        execv(target, &argv)
        let err = errno
        FileHandleStderr.write("sockctl: '\(verb)' is implemented by \(executableName), which must sit next to sockctl: "
                               + "\(target): \(String(cString: strerror(err)))\n")
        exit(Exit.partial)
    }

    /// DIR/sockctl-full, DIR being the directory of this process's executable (symlinks resolved).
    static func siblingPath() -> String {
        var buf = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let n = readlink("/proc/self/exe", &buf, buf.count - 1)
        guard n > 0 else { return executableName }
        let exe = String(decoding: buf[0..<n].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        guard let slash = exe.lastIndex(of: "/") else { return executableName }
        return String(exe[...slash]) + executableName
    }

    /// What `sockctl --help` lists for the verb: its name and abstract (its options are in
    /// `sockctl VERB --help`, answered by sockctl-full).
    public var configuration: CommandConfiguration {
        CommandConfiguration(commandName: rawValue, abstract: abstract)
    }
}
