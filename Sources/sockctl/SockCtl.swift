import ArgumentParser
import SockCtlCLIBase

@main
struct SockCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sockctl",
        abstract: "See, kill, hand off and fingerprint live Linux sockets.",
        subcommands: SockCtl.allSubcommands
    )

    /// Every verb, one command type each. Keep one entry per line so that parallel work merges
    /// cleanly. The *Verb entries stand for commands of sockctl-full (FullVerb).
    static let allSubcommands: [ParsableCommand.Type] = [
        List.self,
        Kill.self,
        Watch.self,
        RunVerb.self,
        UpgradeVerb.self,
        StatusVerb.self,
        FDVerb.self,
        SynVerb.self,
        DaemonVerb.self,
        Netns.self,
    ]

    static func main() {
        // The verbs of sockctl-full are handed over before any parsing (same pid, fds, environment).
        FullVerb.forwardIfNeeded(CommandLine.arguments)
        main(nil)
    }
}

// Entries for `sockctl --help`; invoking them never gets here (main forwards them), except
// through a library caller, for whom run() forwards too.
struct RunVerb: ParsableCommand {
    static let configuration = FullVerb.run.configuration
    func run() { FullVerb.forwardIfNeeded(["sockctl", "run"]) }
}
struct UpgradeVerb: ParsableCommand {
    static let configuration = FullVerb.upgrade.configuration
    func run() { FullVerb.forwardIfNeeded(["sockctl", "upgrade"]) }
}
struct StatusVerb: ParsableCommand {
    static let configuration = FullVerb.status.configuration
    func run() { FullVerb.forwardIfNeeded(["sockctl", "status"]) }
}
struct FDVerb: ParsableCommand {
    static let configuration = FullVerb.fd.configuration
    func run() { FullVerb.forwardIfNeeded(["sockctl", "fd"]) }
}
struct SynVerb: ParsableCommand {
    static let configuration = FullVerb.syn.configuration
    func run() { FullVerb.forwardIfNeeded(["sockctl", "syn"]) }
}
struct DaemonVerb: ParsableCommand {
    static let configuration = FullVerb.daemon.configuration
    func run() { FullVerb.forwardIfNeeded(["sockctl", "daemon"]) }
}
