import ArgumentParser
import SockCtlCLIBase
import Foundation
import Handoff

/// `sockctl fd send|hold|claim`: pass named fds between unrelated processes (SCM_RIGHTS).
struct FD: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fd",
        abstract: FullVerb.fd.abstract,
        subcommands: [Send.self, Hold.self, Claim.self]
    )

    struct Send: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "send", abstract: "Send this process's fds, by name, to a unix socket (e.g. a `sockctl fd hold`).")
        @Option(help: "The unix socket path to send to.") var to: String
        @Argument(help: "NAME=FD pairs, e.g. http=3 (fds this command inherited).") var pairs: [String]

        func run() throws {
            var fds: [FDHandoff.NamedFD] = []
            for pair in pairs {
                let kv = pair.split(separator: "=", maxSplits: 1).map(String.init)
                guard kv.count == 2, let fd = Int32(kv[1]), fd >= 0, fcntl(fd, F_GETFD) >= 0, !kv[0].isEmpty, !kv[0].contains(":") else {
                    FileHandle.standardError.write(Data("sockctl fd send: '\(pair)': expected NAME=FD with an open fd and a name without ':'\n".utf8))
                    throw ExitCode(2)
                }
                fds.append(.init(name: kv[0], fd: fd))
            }
            do { try FDHandoff.send(fds, to: to) } catch let e as HandoffError {
                FileHandle.standardError.write(Data("sockctl fd send: \(e)\n".utf8)); throw ExitCode(e.exitStatus)
            }
            print("sent \(fds.count) fd(s) to \(to)")
        }
    }

    struct Hold: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "hold", abstract: "Hold fds sent to SOCKET until a process claims them or the TTL ends (exit 1).")
        @Option(help: "The unix socket path to listen on.") var at: String
        @Option(help: "How long to hold the fds.") var ttl: String = "30s"

        func run() throws {
            do {
                let seconds = try DurationParser.parse(ttl, option: "--ttl")
                let claimed = try FDHolder.hold(at: at, ttl: seconds) { FileHandle.standardError.write(Data("sockctl fd hold: \($0)\n".utf8)) }
                if !claimed { throw ExitCode(1) }
            } catch let e as HandoffError {
                FileHandle.standardError.write(Data("sockctl fd hold: \(e)\n".utf8)); throw ExitCode(e.exitStatus)
            }
        }
    }

    struct Claim: ParsableCommand {
        static let configuration = CommandConfiguration(commandName: "claim", abstract: "Claim the fds held at SOCKET and run CMD with them (LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID).")
        @Option(help: "The holder's unix socket path.") var from: String
        @Argument(parsing: .captureForPassthrough, help: "-- CMD ARGS") var command: [String] = []

        func run() throws {
            let cmd = command.first == "--" ? Array(command.dropFirst()) : command
            guard !cmd.isEmpty else { throw ValidationError("missing the command: sockctl fd claim --from SOCKET -- CMD ARGS") }
            do {
                let exe = try ProcessEnvironment.resolveCommand(cmd[0], path: ProcessInfo.processInfo.environment["PATH"])
                let fds = try FDHolder.claim(from: from)
                var env = ProcessInfo.processInfo.environment
                for (k, v) in ListenFDs.environment(names: fds.map(\.name)) { env[k] = v }
                let pid = try ProcessEnvironment.live.spawn(exe, cmd, env, fds.map(\.fd))
                fds.forEach { close($0.fd) }
                var status: Int32 = 0
                while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
                throw ExitCode((status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f))
            } catch let e as HandoffError {
                FileHandle.standardError.write(Data("sockctl fd claim: \(e)\n".utf8)); throw ExitCode(e.exitStatus)
            }
        }
    }
}
