import ArgumentParser
import SockCtlCLIBase
import Foundation
import Handoff

/// `sockctl run`: hold listeners and supervise generations of a server (see Handoff.Supervisor).
struct Run: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: FullVerb.run.abstract,
        discussion: """
        Listener URLs: tcp://ADDR:PORT, tcp://[::1]:PORT, udp://ADDR:PORT, unix:///PATH, unix://@ABSTRACT. \
        Options after '?', joined by '&': name=NAME (LISTEN_FDNAMES; default tcp-PORT, udp-PORT, unix-BASENAME), \
        reuseport=1, backlog=N (default 4096), nonblock=1, v6only=0|1, mode=0660 (unix paths). \
        Listeners inherited from our own parent (systemd socket activation) are adopted by name. \
        The child gets LISTEN_FDS, LISTEN_FDNAMES, LISTEN_PID (its own pid), NOTIFY_SOCKET and SOCKCTL_GENERATION. \
        With --fd-store-max N, fds a generation sends with FDSTORE=1 (FDNAME=NAME) are held and passed to every \
        later generation after the listeners; FDSTOREREMOVE=1 with FDNAME drops them. \
        `sockctl upgrade NAME` or SIGHUP starts the next generation; SIGTERM stops everything.
        """
    )

    @Option(help: "Supervisor name; control socket /run/sockctl/NAME.sock (default: CMD's basename).")
    var name: String?

    @Option(help: "A listener URL (repeatable).")
    var listen: [String] = []

    @Option(help: "Readiness: notify | tcp | tcp://ADDR:PORT | http://ADDR:PORT/PATH | delay:2s; {generation} in ADDR or PATH becomes the new generation's number.")
    var ready: String = "notify"

    @Option(help: "How long a new generation may take to become ready.")
    var readyTimeout: String = "30s"

    @Option(help: "How long an old generation may drain after the stop signal before SIGKILL.")
    var drainTimeout: String = "30s"

    @Option(help: "Signal that tells a generation to stop (name or number).")
    var stopSignal: String = "TERM"

    @Option(help: "How many fds generations may deposit with sd_notify FDSTORE=1 (0: none); later generations get them after the listeners.")
    var fdStoreMax: Int = 0

    @Flag(help: "Check and set net.ipv4.tcp_migrate_req=1 in this network namespace (servers with their own SO_REUSEPORT listeners).")
    var migrate = false

    @Option(help: "Control socket path (default /run/sockctl/NAME.sock).")
    var controlSocket: String?

    @Argument(parsing: .captureForPassthrough, help: "-- CMD ARGS")
    var command: [String] = []

    func validate() throws {
        if command.first == "--" && command.count == 1 || command.isEmpty {
            throw ValidationError("missing the command to run: sockctl run --listen URL -- CMD ARGS")
        }
    }

    func run() throws {
        let cmd = command.first == "--" ? Array(command.dropFirst()) : command
        do {
            let specs = try ListenerSpec.parseAll(listen)
            let executable = try ProcessEnvironment.resolveCommand(cmd[0], path: ProcessInfo.processInfo.environment["PATH"])
            let name = self.name ?? (cmd[0] as NSString).lastPathComponent
            guard !name.isEmpty, !name.contains("/") else { throw HandoffError.config("--name '\(name)': no '/' allowed") }
            let control = controlSocket ?? ControlProtocol.socketPath(name: name)
            let notifyPath = ((control as NSString).deletingPathExtension) + ".notify"
            var config = SupervisorConfig(name: name, controlPath: control, notifyPath: notifyPath,
                                          listeners: specs, command: cmd, executable: executable)
            config.ready = try Readiness.parse(ready)
            config.readyTimeout = try DurationParser.parse(readyTimeout, option: "--ready-timeout")
            config.drainTimeout = try DurationParser.parse(drainTimeout, option: "--drain-timeout")
            config.stopSignal = try parseSignal(stopSignal)
            config.migrate = migrate
            guard (0...1000).contains(fdStoreMax) else { throw HandoffError.config("--fd-store-max \(fdStoreMax): expected 0...1000") }
            config.fdStoreMax = fdStoreMax
            let supervisor = Supervisor(config: config)
            try supervisor.start()
            throw ExitCode(supervisor.run())
        } catch let error as HandoffError {
            FileHandle.standardError.write(Data("sockctl run: \(error)\n".utf8))
            throw ExitCode(error.exitStatus)
        }
    }
}

func parseSignal(_ text: String) throws -> Int32 {
    let names: [String: Int32] = ["TERM": SIGTERM, "INT": SIGINT, "QUIT": SIGQUIT, "HUP": SIGHUP, "USR1": SIGUSR1, "USR2": SIGUSR2, "KILL": SIGKILL, "WINCH": SIGWINCH]
    let key = text.uppercased().hasPrefix("SIG") ? String(text.uppercased().dropFirst(3)) : text.uppercased()
    if let s = names[key] { return s }
    if let n = Int32(text), n > 0, n < 65 { return n }
    throw HandoffError.config("--stop-signal '\(text)': expected TERM, INT, QUIT, HUP, USR1, USR2, WINCH or a number")
}
