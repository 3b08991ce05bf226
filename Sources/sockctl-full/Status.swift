import ArgumentParser
import SockCtlCLIBase
import Foundation
import Handoff

/// Which `sockctl run` supervisor a control verb talks to: by name, or by its control socket.
struct SupervisorAddress: ParsableArguments {
    @Argument(help: "The supervisor's name (sockctl run --name).")
    var name: String

    @Option(help: "Control socket path (default /run/sockctl/NAME.sock).")
    var controlSocket: String?

    var path: String { controlSocket ?? ControlProtocol.socketPath(name: name) }
}

/// `sockctl status NAME`: generations, pids, listeners and upgrades of a `sockctl run` supervisor.
struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: FullVerb.status.abstract)

    @OptionGroup var supervisor: SupervisorAddress

    @Flag(help: "One JSON object.")
    var json = false

    func run() throws {
        let reply = try callSupervisor(path: supervisor.path, command: "status", name: supervisor.name)
        guard let s = reply.status else {
            FileHandle.standardError.write(Data("sockctl status: \(reply.message)\n".utf8))
            throw ExitCode(4)
        }
        if json {
            print(String(decoding: try JSONEncoder().encode(s), as: UTF8.self))
            return
        }
        print("supervisor \(s.name) pid \(s.pid): \(s.command.joined(separator: " "))")
        print("ready check: \(s.ready); upgrades: \(s.upgrades) (\(s.failedUpgrades) failed)\(s.upgradeInProgress ? ", one in progress" : ""); crash restarts: \(s.restarts)")
        if let last = s.lastUpgrade { print("last upgrade: \(last)") }
        print("listeners:")
        for l in s.listeners { print("  \(l.name)\tfd \(l.fd)\t\(l.url)\(l.inherited ? " (inherited)" : "")") }
        if let stored = s.storedFds, !stored.isEmpty { print("fd store (FDSTORE=1): \(stored.joined(separator: ", "))") }
        print("generations:")
        if s.generations.isEmpty { print("  none running (listeners held; restart pending)") }
        for g in s.generations { print("  \(g.generation)\tpid \(g.pid)\t\(g.state)\tup \(g.uptimeMs) ms") }
    }
}
