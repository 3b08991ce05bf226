import ArgumentParser

@main
struct SockCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sockctl",
        abstract: "See, kill, hand off and fingerprint live Linux sockets.",
        subcommands: SockCtl.allSubcommands
    )

    /// Every verb, one command type each. Keep one entry per line so that parallel work merges cleanly.
    static let allSubcommands: [ParsableCommand.Type] = [
        List.self,
        Kill.self,
        Watch.self,
        Run.self,
        Upgrade.self,
        Status.self,
        FD.self,
        SynCommand.self,
        DaemonCommand.self,
        Netns.self,
    ]
}
