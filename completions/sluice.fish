# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_sluice_global_optspecs
    string join \n o/output= q/quiet v/verbose data-dir= database-url= h/help V/version
end

function __fish_sluice_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_sluice_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_sluice_using_subcommand
    set -l cmd (__fish_sluice_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c sluice -n "__fish_sluice_needs_command" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_needs_command" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_needs_command" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_needs_command" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_needs_command" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_needs_command" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sluice -n "__fish_sluice_needs_command" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_needs_command" -f -a "sync" -d 'Run one sync now: read a source, write a destination, keep the state'
complete -c sluice -n "__fish_sluice_needs_command" -f -a "connector" -d 'Run one protocol command of a connector, install or pull connectors, list them'
complete -c sluice -n "__fish_sluice_needs_command" -f -a "source" -d 'Define sources once, by name, and use them in connections'
complete -c sluice -n "__fish_sluice_needs_command" -f -a "destination" -d 'Define destinations once, by name, and use them in connections'
complete -c sluice -n "__fish_sluice_needs_command" -f -a "connection" -d 'Connect a stored source to a stored destination; run its jobs'
complete -c sluice -n "__fish_sluice_needs_command" -f -a "job" -d 'See the jobs of connections: their attempts, stats, failures and logs'
complete -c sluice -n "__fish_sluice_needs_command" -f -a "state" -d 'See or change a connection\'s state (Airbyte\'s --state format)'
complete -c sluice -n "__fish_sluice_needs_command" -f -a "db" -d 'The job store: an SQLite file in the data dir, or PostgreSQL (--database-url / SLUICE_DATABASE_URL)'
complete -c sluice -n "__fish_sluice_needs_command" -f -a "apply" -d 'Create or update sources, destinations and connections from a YAML file'
complete -c sluice -n "__fish_sluice_needs_command" -f -a "export" -d 'Write the current setup as YAML (secrets masked), in `apply`\'s format'
complete -c sluice -n "__fish_sluice_needs_command" -f -a "system" -d 'Housekeeping: remove what crashed runs left behind'
complete -c sluice -n "__fish_sluice_needs_command" -f -a "completions" -d 'Print a completion script for your shell'
complete -c sluice -n "__fish_sluice_needs_command" -f -a "generate-assets" -d 'Writes completions/ and man/ from these definitions (for packagers)'
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l source -d 'The source connector' -r
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l source-config -d 'The source config: a JSON file, or JSON text starting with `{`' -r
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l destination -d 'The destination connector' -r
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l destination-config -d 'The destination config: a JSON file, or JSON text starting with `{`' -r
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l streams -d 'Only these streams (comma-separated names, or namespace.name)' -r
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l sync-mode -d 'How to read the streams: full_refresh (everything, every time) or incremental (what is new since the state) [default: full_refresh]' -r -f -a "full_refresh\t''
incremental\t''"
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l destination-sync-mode -d 'How to write the streams: overwrite (replace the stream\'s data when the sync completes), append (add what is read), append_dedup (add, keeping the newest row per primary key) [default: overwrite for full_refresh, append for incremental]. A sync interrupted after records but before their state was committed sends them again when it resumes (Airbyte\'s at-least-once delivery): append then holds them twice, append_dedup once.' -r -f -a "overwrite\t''
append\t''
append_dedup\t''"
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l cursor -d 'The cursor of a stream for incremental syncs, as STREAM=FIELD (a nested field as a.b; repeatable), over the source\'s default' -r
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l primary-key -d 'The primary key of a stream, as STREAM=FIELD[,FIELD...] (repeatable), over the source\'s; append_dedup needs one' -r
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l state -d 'A state file: read at start if it exists, rewritten after every committed checkpoint (Airbyte\'s --state format)' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l catalog -d 'A configured catalog to use instead of discovering the source' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l namespace -d 'Where streams land: source, destination, or custom:NAME (${SOURCE_NAMESPACE} in NAME is replaced)' -r
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l prefix -d 'A prefix for every stream name in the destination' -r
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l max-line-size -d 'The longest protocol line accepted, in bytes; longer fails the sync' -r
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l log-file -d 'Write the sync\'s log here instead of the data directory' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l runtime-option -d 'An option of a runtime, as RUNTIME.NAME=VALUE (repeatable), e.g. docker.memory=1g or python.interpreter=python3.11 [env: SLUICE_*]' -r
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l pull -d 'When to pull a Docker connector\'s image [env: SLUICE_DOCKER_PULL] [default: missing]' -r -f -a "always\t'Before the first use in each run'
missing\t'When the engine does not have the image'
never\t'Never; a missing image is an error'"
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l memory -d 'The memory limit of each connector container, e.g. 512m or 2g [env: SLUICE_DOCKER_MEMORY] [default: 2g]' -r
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l cpus -d 'The CPUs each connector container may use, e.g. 0.5 [env: SLUICE_DOCKER_CPUS] [default: 2]' -r
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l network -d 'The Docker network connector containers join: host (the machine\'s network, as Airbyte runs them), bridge (the engine\'s own, isolated), or a network\'s name, to reach a database in another container [env: SLUICE_DOCKER_NETWORK] [default: host]' -r
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l local-root -d 'A host directory mounted at /local in connector containers, where file destinations write [env: SLUICE_DOCKER_LOCAL_ROOT]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand sync" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand sync" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand sync" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand sync" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand sync" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sluice -n "__fish_sluice_using_subcommand sync" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and not __fish_seen_subcommand_from spec check discover read write install pull list" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand connector; and not __fish_seen_subcommand_from spec check discover read write install pull list" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connector; and not __fish_seen_subcommand_from spec check discover read write install pull list" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and not __fish_seen_subcommand_from spec check discover read write install pull list" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and not __fish_seen_subcommand_from spec check discover read write install pull list" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and not __fish_seen_subcommand_from spec check discover read write install pull list" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and not __fish_seen_subcommand_from spec check discover read write install pull list" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and not __fish_seen_subcommand_from spec check discover read write install pull list" -f -a "spec" -d 'Show the config a connector takes (its spec)'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and not __fish_seen_subcommand_from spec check discover read write install pull list" -f -a "check" -d 'Check a config works (check) or list a source\'s streams (discover)'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and not __fish_seen_subcommand_from spec check discover read write install pull list" -f -a "discover" -d 'Check a config works (check) or list a source\'s streams (discover)'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and not __fish_seen_subcommand_from spec check discover read write install pull list" -f -a "read" -d 'Run a source\'s read and print its raw protocol messages'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and not __fish_seen_subcommand_from spec check discover read write install pull list" -f -a "write" -d 'Run a destination\'s write with protocol messages from stdin; print what it emits'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and not __fish_seen_subcommand_from spec check discover read write install pull list" -f -a "install" -d 'Install a connector now (Python connectors are otherwise installed on first use; Docker images are pulled unless the engine has them)'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and not __fish_seen_subcommand_from spec check discover read write install pull list" -f -a "pull" -d 'Pull a Docker connector\'s image now, even when the engine has it'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and not __fish_seen_subcommand_from spec check discover read write install pull list" -f -a "list" -d 'List built-in and installed connectors'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from spec" -l runtime-option -d 'An option of a runtime, as RUNTIME.NAME=VALUE (repeatable), e.g. docker.memory=1g or python.interpreter=python3.11 [env: SLUICE_*]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from spec" -l pull -d 'When to pull a Docker connector\'s image [env: SLUICE_DOCKER_PULL] [default: missing]' -r -f -a "always\t'Before the first use in each run'
missing\t'When the engine does not have the image'
never\t'Never; a missing image is an error'"
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from spec" -l memory -d 'The memory limit of each connector container, e.g. 512m or 2g [env: SLUICE_DOCKER_MEMORY] [default: 2g]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from spec" -l cpus -d 'The CPUs each connector container may use, e.g. 0.5 [env: SLUICE_DOCKER_CPUS] [default: 2]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from spec" -l network -d 'The Docker network connector containers join: host (the machine\'s network, as Airbyte runs them), bridge (the engine\'s own, isolated), or a network\'s name, to reach a database in another container [env: SLUICE_DOCKER_NETWORK] [default: host]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from spec" -l local-root -d 'A host directory mounted at /local in connector containers, where file destinations write [env: SLUICE_DOCKER_LOCAL_ROOT]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from spec" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from spec" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from spec" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from spec" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from spec" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from spec" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from spec" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from check" -l config -d 'Its config: a JSON file, or JSON text starting with `{`' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from check" -l runtime-option -d 'An option of a runtime, as RUNTIME.NAME=VALUE (repeatable), e.g. docker.memory=1g or python.interpreter=python3.11 [env: SLUICE_*]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from check" -l pull -d 'When to pull a Docker connector\'s image [env: SLUICE_DOCKER_PULL] [default: missing]' -r -f -a "always\t'Before the first use in each run'
missing\t'When the engine does not have the image'
never\t'Never; a missing image is an error'"
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from check" -l memory -d 'The memory limit of each connector container, e.g. 512m or 2g [env: SLUICE_DOCKER_MEMORY] [default: 2g]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from check" -l cpus -d 'The CPUs each connector container may use, e.g. 0.5 [env: SLUICE_DOCKER_CPUS] [default: 2]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from check" -l network -d 'The Docker network connector containers join: host (the machine\'s network, as Airbyte runs them), bridge (the engine\'s own, isolated), or a network\'s name, to reach a database in another container [env: SLUICE_DOCKER_NETWORK] [default: host]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from check" -l local-root -d 'A host directory mounted at /local in connector containers, where file destinations write [env: SLUICE_DOCKER_LOCAL_ROOT]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from check" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from check" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from check" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from check" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from check" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from check" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from discover" -l config -d 'Its config: a JSON file, or JSON text starting with `{`' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from discover" -l runtime-option -d 'An option of a runtime, as RUNTIME.NAME=VALUE (repeatable), e.g. docker.memory=1g or python.interpreter=python3.11 [env: SLUICE_*]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from discover" -l pull -d 'When to pull a Docker connector\'s image [env: SLUICE_DOCKER_PULL] [default: missing]' -r -f -a "always\t'Before the first use in each run'
missing\t'When the engine does not have the image'
never\t'Never; a missing image is an error'"
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from discover" -l memory -d 'The memory limit of each connector container, e.g. 512m or 2g [env: SLUICE_DOCKER_MEMORY] [default: 2g]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from discover" -l cpus -d 'The CPUs each connector container may use, e.g. 0.5 [env: SLUICE_DOCKER_CPUS] [default: 2]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from discover" -l network -d 'The Docker network connector containers join: host (the machine\'s network, as Airbyte runs them), bridge (the engine\'s own, isolated), or a network\'s name, to reach a database in another container [env: SLUICE_DOCKER_NETWORK] [default: host]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from discover" -l local-root -d 'A host directory mounted at /local in connector containers, where file destinations write [env: SLUICE_DOCKER_LOCAL_ROOT]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from discover" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from discover" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from discover" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from discover" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from discover" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from discover" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from discover" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from read" -l config -d 'Its config: a JSON file, or JSON text starting with `{`' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from read" -l catalog -d 'A configured catalog [default: every stream, full refresh]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from read" -l state -d 'A state file to resume from' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from read" -l runtime-option -d 'An option of a runtime, as RUNTIME.NAME=VALUE (repeatable), e.g. docker.memory=1g or python.interpreter=python3.11 [env: SLUICE_*]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from read" -l pull -d 'When to pull a Docker connector\'s image [env: SLUICE_DOCKER_PULL] [default: missing]' -r -f -a "always\t'Before the first use in each run'
missing\t'When the engine does not have the image'
never\t'Never; a missing image is an error'"
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from read" -l memory -d 'The memory limit of each connector container, e.g. 512m or 2g [env: SLUICE_DOCKER_MEMORY] [default: 2g]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from read" -l cpus -d 'The CPUs each connector container may use, e.g. 0.5 [env: SLUICE_DOCKER_CPUS] [default: 2]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from read" -l network -d 'The Docker network connector containers join: host (the machine\'s network, as Airbyte runs them), bridge (the engine\'s own, isolated), or a network\'s name, to reach a database in another container [env: SLUICE_DOCKER_NETWORK] [default: host]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from read" -l local-root -d 'A host directory mounted at /local in connector containers, where file destinations write [env: SLUICE_DOCKER_LOCAL_ROOT]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from read" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from read" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from read" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from read" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from read" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from read" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from read" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from write" -l config -d 'Its config: a JSON file, or JSON text starting with `{`' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from write" -l catalog -d 'The configured catalog the messages belong to' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from write" -l runtime-option -d 'An option of a runtime, as RUNTIME.NAME=VALUE (repeatable), e.g. docker.memory=1g or python.interpreter=python3.11 [env: SLUICE_*]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from write" -l pull -d 'When to pull a Docker connector\'s image [env: SLUICE_DOCKER_PULL] [default: missing]' -r -f -a "always\t'Before the first use in each run'
missing\t'When the engine does not have the image'
never\t'Never; a missing image is an error'"
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from write" -l memory -d 'The memory limit of each connector container, e.g. 512m or 2g [env: SLUICE_DOCKER_MEMORY] [default: 2g]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from write" -l cpus -d 'The CPUs each connector container may use, e.g. 0.5 [env: SLUICE_DOCKER_CPUS] [default: 2]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from write" -l network -d 'The Docker network connector containers join: host (the machine\'s network, as Airbyte runs them), bridge (the engine\'s own, isolated), or a network\'s name, to reach a database in another container [env: SLUICE_DOCKER_NETWORK] [default: host]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from write" -l local-root -d 'A host directory mounted at /local in connector containers, where file destinations write [env: SLUICE_DOCKER_LOCAL_ROOT]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from write" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from write" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from write" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from write" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from write" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from write" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from write" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from install" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from install" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from install" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from install" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from install" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from install" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from install" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from pull" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from pull" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from pull" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from pull" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from pull" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from pull" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from pull" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from list" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from list" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from list" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand connector; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand source; and not __fish_seen_subcommand_from create list get update delete check discover" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand source; and not __fish_seen_subcommand_from create list get update delete check discover" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand source; and not __fish_seen_subcommand_from create list get update delete check discover" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand source; and not __fish_seen_subcommand_from create list get update delete check discover" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand source; and not __fish_seen_subcommand_from create list get update delete check discover" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand source; and not __fish_seen_subcommand_from create list get update delete check discover" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand source; and not __fish_seen_subcommand_from create list get update delete check discover" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand source; and not __fish_seen_subcommand_from create list get update delete check discover" -f -a "create" -d 'Create one: its config is validated against the connector\'s spec and checked by the connector'
complete -c sluice -n "__fish_sluice_using_subcommand source; and not __fish_seen_subcommand_from create list get update delete check discover" -f -a "list" -d 'List them (secrets masked)'
complete -c sluice -n "__fish_sluice_using_subcommand source; and not __fish_seen_subcommand_from create list get update delete check discover" -f -a "get" -d 'Show one (secrets masked)'
complete -c sluice -n "__fish_sluice_using_subcommand source; and not __fish_seen_subcommand_from create list get update delete check discover" -f -a "update" -d 'Change the connector or the config; fields given as `**********` keep their stored secret'
complete -c sluice -n "__fish_sluice_using_subcommand source; and not __fish_seen_subcommand_from create list get update delete check discover" -f -a "delete" -d 'Delete one (refused while a connection uses it)'
complete -c sluice -n "__fish_sluice_using_subcommand source; and not __fish_seen_subcommand_from create list get update delete check discover" -f -a "check" -d 'Run the connector\'s check with the stored config'
complete -c sluice -n "__fish_sluice_using_subcommand source; and not __fish_seen_subcommand_from create list get update delete check discover" -f -a "discover" -d 'List the source\'s streams (its catalog)'
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from create" -l connector -d 'The connector: a built-in name, python:PACKAGE==VERSION, docker:IMAGE:TAG or exec:PATH' -r
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from create" -l config -d 'Its config: a JSON file, or JSON text starting with `{`' -r
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from create" -l runtime-option -d 'An option of a runtime, as RUNTIME.NAME=VALUE (repeatable), e.g. docker.memory=1g or python.interpreter=python3.11 [env: SLUICE_*]' -r
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from create" -l pull -d 'When to pull a Docker connector\'s image [env: SLUICE_DOCKER_PULL] [default: missing]' -r -f -a "always\t'Before the first use in each run'
missing\t'When the engine does not have the image'
never\t'Never; a missing image is an error'"
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from create" -l memory -d 'The memory limit of each connector container, e.g. 512m or 2g [env: SLUICE_DOCKER_MEMORY] [default: 2g]' -r
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from create" -l cpus -d 'The CPUs each connector container may use, e.g. 0.5 [env: SLUICE_DOCKER_CPUS] [default: 2]' -r
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from create" -l network -d 'The Docker network connector containers join: host (the machine\'s network, as Airbyte runs them), bridge (the engine\'s own, isolated), or a network\'s name, to reach a database in another container [env: SLUICE_DOCKER_NETWORK] [default: host]' -r
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from create" -l local-root -d 'A host directory mounted at /local in connector containers, where file destinations write [env: SLUICE_DOCKER_LOCAL_ROOT]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from create" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from create" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from create" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from create" -l no-check -d 'Save it without running the connector\'s check'
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from create" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from create" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from create" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from list" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from list" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from list" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from list" -l show-secrets -d 'Show secret fields (airbyte_secret) instead of masking them'
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from get" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from get" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from get" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from get" -l show-secrets -d 'Show secret fields (airbyte_secret) instead of masking them'
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from get" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from get" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from get" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from get" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from update" -l connector -r
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from update" -l config -d 'The new config: a JSON file, or JSON text starting with `{`' -r
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from update" -l runtime-option -d 'An option of a runtime, as RUNTIME.NAME=VALUE (repeatable), e.g. docker.memory=1g or python.interpreter=python3.11 [env: SLUICE_*]' -r
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from update" -l pull -d 'When to pull a Docker connector\'s image [env: SLUICE_DOCKER_PULL] [default: missing]' -r -f -a "always\t'Before the first use in each run'
missing\t'When the engine does not have the image'
never\t'Never; a missing image is an error'"
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from update" -l memory -d 'The memory limit of each connector container, e.g. 512m or 2g [env: SLUICE_DOCKER_MEMORY] [default: 2g]' -r
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from update" -l cpus -d 'The CPUs each connector container may use, e.g. 0.5 [env: SLUICE_DOCKER_CPUS] [default: 2]' -r
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from update" -l network -d 'The Docker network connector containers join: host (the machine\'s network, as Airbyte runs them), bridge (the engine\'s own, isolated), or a network\'s name, to reach a database in another container [env: SLUICE_DOCKER_NETWORK] [default: host]' -r
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from update" -l local-root -d 'A host directory mounted at /local in connector containers, where file destinations write [env: SLUICE_DOCKER_LOCAL_ROOT]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from update" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from update" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from update" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from update" -l no-check -d 'Save it without running the connector\'s check'
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from update" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from update" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from update" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from update" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from delete" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from delete" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from delete" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from delete" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from delete" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from delete" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from delete" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from check" -l runtime-option -d 'An option of a runtime, as RUNTIME.NAME=VALUE (repeatable), e.g. docker.memory=1g or python.interpreter=python3.11 [env: SLUICE_*]' -r
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from check" -l pull -d 'When to pull a Docker connector\'s image [env: SLUICE_DOCKER_PULL] [default: missing]' -r -f -a "always\t'Before the first use in each run'
missing\t'When the engine does not have the image'
never\t'Never; a missing image is an error'"
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from check" -l memory -d 'The memory limit of each connector container, e.g. 512m or 2g [env: SLUICE_DOCKER_MEMORY] [default: 2g]' -r
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from check" -l cpus -d 'The CPUs each connector container may use, e.g. 0.5 [env: SLUICE_DOCKER_CPUS] [default: 2]' -r
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from check" -l network -d 'The Docker network connector containers join: host (the machine\'s network, as Airbyte runs them), bridge (the engine\'s own, isolated), or a network\'s name, to reach a database in another container [env: SLUICE_DOCKER_NETWORK] [default: host]' -r
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from check" -l local-root -d 'A host directory mounted at /local in connector containers, where file destinations write [env: SLUICE_DOCKER_LOCAL_ROOT]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from check" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from check" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from check" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from check" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from check" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from check" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from discover" -l runtime-option -d 'An option of a runtime, as RUNTIME.NAME=VALUE (repeatable), e.g. docker.memory=1g or python.interpreter=python3.11 [env: SLUICE_*]' -r
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from discover" -l pull -d 'When to pull a Docker connector\'s image [env: SLUICE_DOCKER_PULL] [default: missing]' -r -f -a "always\t'Before the first use in each run'
missing\t'When the engine does not have the image'
never\t'Never; a missing image is an error'"
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from discover" -l memory -d 'The memory limit of each connector container, e.g. 512m or 2g [env: SLUICE_DOCKER_MEMORY] [default: 2g]' -r
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from discover" -l cpus -d 'The CPUs each connector container may use, e.g. 0.5 [env: SLUICE_DOCKER_CPUS] [default: 2]' -r
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from discover" -l network -d 'The Docker network connector containers join: host (the machine\'s network, as Airbyte runs them), bridge (the engine\'s own, isolated), or a network\'s name, to reach a database in another container [env: SLUICE_DOCKER_NETWORK] [default: host]' -r
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from discover" -l local-root -d 'A host directory mounted at /local in connector containers, where file destinations write [env: SLUICE_DOCKER_LOCAL_ROOT]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from discover" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from discover" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from discover" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from discover" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from discover" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from discover" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sluice -n "__fish_sluice_using_subcommand source; and __fish_seen_subcommand_from discover" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand destination; and not __fish_seen_subcommand_from create list get update delete check" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand destination; and not __fish_seen_subcommand_from create list get update delete check" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand destination; and not __fish_seen_subcommand_from create list get update delete check" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand destination; and not __fish_seen_subcommand_from create list get update delete check" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand destination; and not __fish_seen_subcommand_from create list get update delete check" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand destination; and not __fish_seen_subcommand_from create list get update delete check" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand destination; and not __fish_seen_subcommand_from create list get update delete check" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand destination; and not __fish_seen_subcommand_from create list get update delete check" -f -a "create" -d 'Create one: its config is validated against the connector\'s spec and checked by the connector'
complete -c sluice -n "__fish_sluice_using_subcommand destination; and not __fish_seen_subcommand_from create list get update delete check" -f -a "list" -d 'List them (secrets masked)'
complete -c sluice -n "__fish_sluice_using_subcommand destination; and not __fish_seen_subcommand_from create list get update delete check" -f -a "get" -d 'Show one (secrets masked)'
complete -c sluice -n "__fish_sluice_using_subcommand destination; and not __fish_seen_subcommand_from create list get update delete check" -f -a "update" -d 'Change the connector or the config; fields given as `**********` keep their stored secret'
complete -c sluice -n "__fish_sluice_using_subcommand destination; and not __fish_seen_subcommand_from create list get update delete check" -f -a "delete" -d 'Delete one (refused while a connection uses it)'
complete -c sluice -n "__fish_sluice_using_subcommand destination; and not __fish_seen_subcommand_from create list get update delete check" -f -a "check" -d 'Run the connector\'s check with the stored config'
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from create" -l connector -d 'The connector: a built-in name, python:PACKAGE==VERSION, docker:IMAGE:TAG or exec:PATH' -r
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from create" -l config -d 'Its config: a JSON file, or JSON text starting with `{`' -r
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from create" -l runtime-option -d 'An option of a runtime, as RUNTIME.NAME=VALUE (repeatable), e.g. docker.memory=1g or python.interpreter=python3.11 [env: SLUICE_*]' -r
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from create" -l pull -d 'When to pull a Docker connector\'s image [env: SLUICE_DOCKER_PULL] [default: missing]' -r -f -a "always\t'Before the first use in each run'
missing\t'When the engine does not have the image'
never\t'Never; a missing image is an error'"
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from create" -l memory -d 'The memory limit of each connector container, e.g. 512m or 2g [env: SLUICE_DOCKER_MEMORY] [default: 2g]' -r
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from create" -l cpus -d 'The CPUs each connector container may use, e.g. 0.5 [env: SLUICE_DOCKER_CPUS] [default: 2]' -r
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from create" -l network -d 'The Docker network connector containers join: host (the machine\'s network, as Airbyte runs them), bridge (the engine\'s own, isolated), or a network\'s name, to reach a database in another container [env: SLUICE_DOCKER_NETWORK] [default: host]' -r
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from create" -l local-root -d 'A host directory mounted at /local in connector containers, where file destinations write [env: SLUICE_DOCKER_LOCAL_ROOT]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from create" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from create" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from create" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from create" -l no-check -d 'Save it without running the connector\'s check'
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from create" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from create" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from create" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from list" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from list" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from list" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from list" -l show-secrets -d 'Show secret fields (airbyte_secret) instead of masking them'
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from get" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from get" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from get" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from get" -l show-secrets -d 'Show secret fields (airbyte_secret) instead of masking them'
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from get" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from get" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from get" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from get" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from update" -l connector -r
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from update" -l config -d 'The new config: a JSON file, or JSON text starting with `{`' -r
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from update" -l runtime-option -d 'An option of a runtime, as RUNTIME.NAME=VALUE (repeatable), e.g. docker.memory=1g or python.interpreter=python3.11 [env: SLUICE_*]' -r
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from update" -l pull -d 'When to pull a Docker connector\'s image [env: SLUICE_DOCKER_PULL] [default: missing]' -r -f -a "always\t'Before the first use in each run'
missing\t'When the engine does not have the image'
never\t'Never; a missing image is an error'"
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from update" -l memory -d 'The memory limit of each connector container, e.g. 512m or 2g [env: SLUICE_DOCKER_MEMORY] [default: 2g]' -r
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from update" -l cpus -d 'The CPUs each connector container may use, e.g. 0.5 [env: SLUICE_DOCKER_CPUS] [default: 2]' -r
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from update" -l network -d 'The Docker network connector containers join: host (the machine\'s network, as Airbyte runs them), bridge (the engine\'s own, isolated), or a network\'s name, to reach a database in another container [env: SLUICE_DOCKER_NETWORK] [default: host]' -r
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from update" -l local-root -d 'A host directory mounted at /local in connector containers, where file destinations write [env: SLUICE_DOCKER_LOCAL_ROOT]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from update" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from update" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from update" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from update" -l no-check -d 'Save it without running the connector\'s check'
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from update" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from update" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from update" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from update" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from delete" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from delete" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from delete" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from delete" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from delete" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from delete" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from delete" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from check" -l runtime-option -d 'An option of a runtime, as RUNTIME.NAME=VALUE (repeatable), e.g. docker.memory=1g or python.interpreter=python3.11 [env: SLUICE_*]' -r
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from check" -l pull -d 'When to pull a Docker connector\'s image [env: SLUICE_DOCKER_PULL] [default: missing]' -r -f -a "always\t'Before the first use in each run'
missing\t'When the engine does not have the image'
never\t'Never; a missing image is an error'"
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from check" -l memory -d 'The memory limit of each connector container, e.g. 512m or 2g [env: SLUICE_DOCKER_MEMORY] [default: 2g]' -r
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from check" -l cpus -d 'The CPUs each connector container may use, e.g. 0.5 [env: SLUICE_DOCKER_CPUS] [default: 2]' -r
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from check" -l network -d 'The Docker network connector containers join: host (the machine\'s network, as Airbyte runs them), bridge (the engine\'s own, isolated), or a network\'s name, to reach a database in another container [env: SLUICE_DOCKER_NETWORK] [default: host]' -r
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from check" -l local-root -d 'A host directory mounted at /local in connector containers, where file destinations write [env: SLUICE_DOCKER_LOCAL_ROOT]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from check" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from check" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from check" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from check" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from check" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from check" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sluice -n "__fish_sluice_using_subcommand destination; and __fish_seen_subcommand_from check" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and not __fish_seen_subcommand_from create list get update delete enable disable sync reset refresh" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand connection; and not __fish_seen_subcommand_from create list get update delete enable disable sync reset refresh" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connection; and not __fish_seen_subcommand_from create list get update delete enable disable sync reset refresh" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and not __fish_seen_subcommand_from create list get update delete enable disable sync reset refresh" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and not __fish_seen_subcommand_from create list get update delete enable disable sync reset refresh" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and not __fish_seen_subcommand_from create list get update delete enable disable sync reset refresh" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and not __fish_seen_subcommand_from create list get update delete enable disable sync reset refresh" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and not __fish_seen_subcommand_from create list get update delete enable disable sync reset refresh" -f -a "create" -d 'Create a connection: the source is discovered and its catalog configured'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and not __fish_seen_subcommand_from create list get update delete enable disable sync reset refresh" -f -a "list" -d 'List connections with their last job'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and not __fish_seen_subcommand_from create list get update delete enable disable sync reset refresh" -f -a "get" -d 'Show a connection: its settings, streams, catalog and last job'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and not __fish_seen_subcommand_from create list get update delete enable disable sync reset refresh" -f -a "update" -d 'Change a connection; what is not given stays'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and not __fish_seen_subcommand_from create list get update delete enable disable sync reset refresh" -f -a "delete" -d 'Delete a connection with its jobs and state (not the destination\'s data)'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and not __fish_seen_subcommand_from create list get update delete enable disable sync reset refresh" -f -a "enable" -d 'Make a connection active: it can sync'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and not __fish_seen_subcommand_from create list get update delete enable disable sync reset refresh" -f -a "disable" -d 'Make a connection inactive: it does not sync until enabled'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and not __fish_seen_subcommand_from create list get update delete enable disable sync reset refresh" -f -a "sync" -d 'Run a job now, inline, retrying failed attempts from the last committed state'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and not __fish_seen_subcommand_from create list get update delete enable disable sync reset refresh" -f -a "reset" -d 'Clear a connection\'s state and its data in the destination (all streams, or those named); the next sync reads everything again'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and not __fish_seen_subcommand_from create list get update delete enable disable sync reset refresh" -f -a "refresh" -d 'Re-sync everything from the start; the destination keeps the old data until the new generation lands'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from create" -l source -d 'The stored source' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from create" -l destination -d 'The stored destination' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from create" -l streams -d 'Only these streams (comma-separated names, or namespace.name)' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from create" -l sync-mode -d 'How to read the streams: full_refresh (everything, every time) or incremental (what is new since the state) [default: full_refresh]' -r -f -a "full_refresh\t''
incremental\t''"
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from create" -l destination-sync-mode -d 'How to write the streams: overwrite (replace the stream\'s data when the sync completes), append (add what is read), append_dedup (add, keeping the newest row per primary key) [default: overwrite for full_refresh, append for incremental]. A sync interrupted after records but before their state was committed sends them again when it resumes (Airbyte\'s at-least-once delivery): append then holds them twice, append_dedup once.' -r -f -a "overwrite\t''
append\t''
append_dedup\t''"
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from create" -l cursor -d 'The cursor of a stream for incremental syncs, as STREAM=FIELD (a nested field as a.b; repeatable), over the source\'s default' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from create" -l primary-key -d 'The primary key of a stream, as STREAM=FIELD[,FIELD...] (repeatable), over the source\'s; append_dedup needs one' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from create" -l schedule -d 'manual, every:DURATION (every:1h) or cron:\'0 */6 * * *\'' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from create" -l namespace -d 'Where streams land: source, destination or custom:NAME' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from create" -l prefix -d 'A prefix for every stream name in the destination' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from create" -l schema-change -d 'What a job does when the source\'s schema changed: ignore (sync the catalog as it was), propagate_columns (take new and changed columns of the selected streams), propagate_fully (also add new streams) or disable (turn the connection off)' -r -f -a "ignore\t''
propagate_columns\t''
propagate_fully\t''
disable\t''"
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from create" -l runtime-option -d 'An option of a runtime, as RUNTIME.NAME=VALUE (repeatable), e.g. docker.memory=1g or python.interpreter=python3.11 [env: SLUICE_*]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from create" -l pull -d 'When to pull a Docker connector\'s image [env: SLUICE_DOCKER_PULL] [default: missing]' -r -f -a "always\t'Before the first use in each run'
missing\t'When the engine does not have the image'
never\t'Never; a missing image is an error'"
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from create" -l memory -d 'The memory limit of each connector container, e.g. 512m or 2g [env: SLUICE_DOCKER_MEMORY] [default: 2g]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from create" -l cpus -d 'The CPUs each connector container may use, e.g. 0.5 [env: SLUICE_DOCKER_CPUS] [default: 2]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from create" -l network -d 'The Docker network connector containers join: host (the machine\'s network, as Airbyte runs them), bridge (the engine\'s own, isolated), or a network\'s name, to reach a database in another container [env: SLUICE_DOCKER_NETWORK] [default: host]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from create" -l local-root -d 'A host directory mounted at /local in connector containers, where file destinations write [env: SLUICE_DOCKER_LOCAL_ROOT]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from create" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from create" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from create" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from create" -l all-streams -d 'Every stream the source has (the default)'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from create" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from create" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from create" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from create" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from list" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from list" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from list" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from get" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from get" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from get" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from get" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from get" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from get" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from get" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from update" -l source -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from update" -l destination -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from update" -l streams -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from update" -l sync-mode -d 'How to read the streams: full_refresh or incremental' -r -f -a "full_refresh\t''
incremental\t''"
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from update" -l destination-sync-mode -d 'How to write the streams: overwrite (replace the stream\'s data when the sync completes), append (add what is read), append_dedup (add, keeping the newest row per primary key) [default: overwrite for full_refresh, append for incremental]. A sync interrupted after records but before their state was committed sends them again when it resumes (Airbyte\'s at-least-once delivery): append then holds them twice, append_dedup once.' -r -f -a "overwrite\t''
append\t''
append_dedup\t''"
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from update" -l cursor -d 'The cursor of a stream for incremental syncs, as STREAM=FIELD (a nested field as a.b; repeatable), over the source\'s default' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from update" -l primary-key -d 'The primary key of a stream, as STREAM=FIELD[,FIELD...] (repeatable), over the source\'s; append_dedup needs one' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from update" -l schedule -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from update" -l namespace -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from update" -l prefix -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from update" -l schema-change -d 'What a job does when the source\'s schema changed: ignore, propagate_columns, propagate_fully or disable' -r -f -a "ignore\t''
propagate_columns\t''
propagate_fully\t''
disable\t''"
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from update" -l runtime-option -d 'An option of a runtime, as RUNTIME.NAME=VALUE (repeatable), e.g. docker.memory=1g or python.interpreter=python3.11 [env: SLUICE_*]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from update" -l pull -d 'When to pull a Docker connector\'s image [env: SLUICE_DOCKER_PULL] [default: missing]' -r -f -a "always\t'Before the first use in each run'
missing\t'When the engine does not have the image'
never\t'Never; a missing image is an error'"
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from update" -l memory -d 'The memory limit of each connector container, e.g. 512m or 2g [env: SLUICE_DOCKER_MEMORY] [default: 2g]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from update" -l cpus -d 'The CPUs each connector container may use, e.g. 0.5 [env: SLUICE_DOCKER_CPUS] [default: 2]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from update" -l network -d 'The Docker network connector containers join: host (the machine\'s network, as Airbyte runs them), bridge (the engine\'s own, isolated), or a network\'s name, to reach a database in another container [env: SLUICE_DOCKER_NETWORK] [default: host]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from update" -l local-root -d 'A host directory mounted at /local in connector containers, where file destinations write [env: SLUICE_DOCKER_LOCAL_ROOT]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from update" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from update" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from update" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from update" -l all-streams
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from update" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from update" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from update" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from update" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from delete" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from delete" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from delete" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from delete" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from delete" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from delete" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from delete" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from enable" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from enable" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from enable" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from enable" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from enable" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from enable" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from enable" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from disable" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from disable" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from disable" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from disable" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from disable" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from disable" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from disable" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from sync" -l max-failed-attempts -d 'Attempts in a row that commit nothing before the job fails' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from sync" -l max-attempts -d 'Attempts in all before the job fails' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from sync" -l retry-backoff -d 'The wait after the first attempt that commits nothing, tripled after each further one (at most 30 min)' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from sync" -l runtime-option -d 'An option of a runtime, as RUNTIME.NAME=VALUE (repeatable), e.g. docker.memory=1g or python.interpreter=python3.11 [env: SLUICE_*]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from sync" -l pull -d 'When to pull a Docker connector\'s image [env: SLUICE_DOCKER_PULL] [default: missing]' -r -f -a "always\t'Before the first use in each run'
missing\t'When the engine does not have the image'
never\t'Never; a missing image is an error'"
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from sync" -l memory -d 'The memory limit of each connector container, e.g. 512m or 2g [env: SLUICE_DOCKER_MEMORY] [default: 2g]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from sync" -l cpus -d 'The CPUs each connector container may use, e.g. 0.5 [env: SLUICE_DOCKER_CPUS] [default: 2]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from sync" -l network -d 'The Docker network connector containers join: host (the machine\'s network, as Airbyte runs them), bridge (the engine\'s own, isolated), or a network\'s name, to reach a database in another container [env: SLUICE_DOCKER_NETWORK] [default: host]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from sync" -l local-root -d 'A host directory mounted at /local in connector containers, where file destinations write [env: SLUICE_DOCKER_LOCAL_ROOT]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from sync" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from sync" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from sync" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from sync" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from sync" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from sync" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from sync" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from reset" -l stream -d 'Only this stream (repeat for more)' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from reset" -l max-failed-attempts -d 'Attempts in a row that commit nothing before the job fails' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from reset" -l max-attempts -d 'Attempts in all before the job fails' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from reset" -l retry-backoff -d 'The wait after the first attempt that commits nothing, tripled after each further one (at most 30 min)' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from reset" -l runtime-option -d 'An option of a runtime, as RUNTIME.NAME=VALUE (repeatable), e.g. docker.memory=1g or python.interpreter=python3.11 [env: SLUICE_*]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from reset" -l pull -d 'When to pull a Docker connector\'s image [env: SLUICE_DOCKER_PULL] [default: missing]' -r -f -a "always\t'Before the first use in each run'
missing\t'When the engine does not have the image'
never\t'Never; a missing image is an error'"
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from reset" -l memory -d 'The memory limit of each connector container, e.g. 512m or 2g [env: SLUICE_DOCKER_MEMORY] [default: 2g]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from reset" -l cpus -d 'The CPUs each connector container may use, e.g. 0.5 [env: SLUICE_DOCKER_CPUS] [default: 2]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from reset" -l network -d 'The Docker network connector containers join: host (the machine\'s network, as Airbyte runs them), bridge (the engine\'s own, isolated), or a network\'s name, to reach a database in another container [env: SLUICE_DOCKER_NETWORK] [default: host]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from reset" -l local-root -d 'A host directory mounted at /local in connector containers, where file destinations write [env: SLUICE_DOCKER_LOCAL_ROOT]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from reset" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from reset" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from reset" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from reset" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from reset" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from reset" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from reset" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from refresh" -l max-failed-attempts -d 'Attempts in a row that commit nothing before the job fails' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from refresh" -l max-attempts -d 'Attempts in all before the job fails' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from refresh" -l retry-backoff -d 'The wait after the first attempt that commits nothing, tripled after each further one (at most 30 min)' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from refresh" -l runtime-option -d 'An option of a runtime, as RUNTIME.NAME=VALUE (repeatable), e.g. docker.memory=1g or python.interpreter=python3.11 [env: SLUICE_*]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from refresh" -l pull -d 'When to pull a Docker connector\'s image [env: SLUICE_DOCKER_PULL] [default: missing]' -r -f -a "always\t'Before the first use in each run'
missing\t'When the engine does not have the image'
never\t'Never; a missing image is an error'"
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from refresh" -l memory -d 'The memory limit of each connector container, e.g. 512m or 2g [env: SLUICE_DOCKER_MEMORY] [default: 2g]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from refresh" -l cpus -d 'The CPUs each connector container may use, e.g. 0.5 [env: SLUICE_DOCKER_CPUS] [default: 2]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from refresh" -l network -d 'The Docker network connector containers join: host (the machine\'s network, as Airbyte runs them), bridge (the engine\'s own, isolated), or a network\'s name, to reach a database in another container [env: SLUICE_DOCKER_NETWORK] [default: host]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from refresh" -l local-root -d 'A host directory mounted at /local in connector containers, where file destinations write [env: SLUICE_DOCKER_LOCAL_ROOT]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from refresh" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from refresh" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from refresh" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from refresh" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from refresh" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from refresh" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sluice -n "__fish_sluice_using_subcommand connection; and __fish_seen_subcommand_from refresh" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand job; and not __fish_seen_subcommand_from list get logs" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand job; and not __fish_seen_subcommand_from list get logs" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand job; and not __fish_seen_subcommand_from list get logs" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand job; and not __fish_seen_subcommand_from list get logs" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand job; and not __fish_seen_subcommand_from list get logs" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand job; and not __fish_seen_subcommand_from list get logs" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand job; and not __fish_seen_subcommand_from list get logs" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand job; and not __fish_seen_subcommand_from list get logs" -f -a "list" -d 'List jobs, newest first'
complete -c sluice -n "__fish_sluice_using_subcommand job; and not __fish_seen_subcommand_from list get logs" -f -a "get" -d 'Show a job: its attempts, per-stream records and bytes, durations and failure reasons, and the schema changes found before it ran'
complete -c sluice -n "__fish_sluice_using_subcommand job; and not __fish_seen_subcommand_from list get logs" -f -a "logs" -d 'Print the log of a job\'s attempt (the last one by default)'
complete -c sluice -n "__fish_sluice_using_subcommand job; and __fish_seen_subcommand_from list" -l connection -d 'Only this connection\'s jobs' -r
complete -c sluice -n "__fish_sluice_using_subcommand job; and __fish_seen_subcommand_from list" -l status -d 'Only jobs with this status: pending, running, succeeded, failed or cancelled' -r -f -a "pending\t''
running\t''
succeeded\t''
failed\t''
cancelled\t''"
complete -c sluice -n "__fish_sluice_using_subcommand job; and __fish_seen_subcommand_from list" -l limit -d 'At most this many (0: all)' -r
complete -c sluice -n "__fish_sluice_using_subcommand job; and __fish_seen_subcommand_from list" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand job; and __fish_seen_subcommand_from list" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand job; and __fish_seen_subcommand_from list" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand job; and __fish_seen_subcommand_from list" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand job; and __fish_seen_subcommand_from list" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand job; and __fish_seen_subcommand_from list" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand job; and __fish_seen_subcommand_from list" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand job; and __fish_seen_subcommand_from get" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand job; and __fish_seen_subcommand_from get" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand job; and __fish_seen_subcommand_from get" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand job; and __fish_seen_subcommand_from get" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand job; and __fish_seen_subcommand_from get" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand job; and __fish_seen_subcommand_from get" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand job; and __fish_seen_subcommand_from get" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand job; and __fish_seen_subcommand_from logs" -l attempt -d 'The attempt\'s number [default: the last]' -r
complete -c sluice -n "__fish_sluice_using_subcommand job; and __fish_seen_subcommand_from logs" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand job; and __fish_seen_subcommand_from logs" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand job; and __fish_seen_subcommand_from logs" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand job; and __fish_seen_subcommand_from logs" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand job; and __fish_seen_subcommand_from logs" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand job; and __fish_seen_subcommand_from logs" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand job; and __fish_seen_subcommand_from logs" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand state; and not __fish_seen_subcommand_from get set reset" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand state; and not __fish_seen_subcommand_from get set reset" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand state; and not __fish_seen_subcommand_from get set reset" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand state; and not __fish_seen_subcommand_from get set reset" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand state; and not __fish_seen_subcommand_from get set reset" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand state; and not __fish_seen_subcommand_from get set reset" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand state; and not __fish_seen_subcommand_from get set reset" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand state; and not __fish_seen_subcommand_from get set reset" -f -a "get" -d 'Print the state: a JSON array of state messages, or a legacy object'
complete -c sluice -n "__fish_sluice_using_subcommand state; and not __fish_seen_subcommand_from get set reset" -f -a "set" -d 'Replace the state with a file\'s (checked first)'
complete -c sluice -n "__fish_sluice_using_subcommand state; and not __fish_seen_subcommand_from get set reset" -f -a "reset" -d 'Clear the state of some streams, or all of it (the data stays)'
complete -c sluice -n "__fish_sluice_using_subcommand state; and __fish_seen_subcommand_from get" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand state; and __fish_seen_subcommand_from get" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand state; and __fish_seen_subcommand_from get" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand state; and __fish_seen_subcommand_from get" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand state; and __fish_seen_subcommand_from get" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand state; and __fish_seen_subcommand_from get" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand state; and __fish_seen_subcommand_from get" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand state; and __fish_seen_subcommand_from set" -s f -l file -d 'A state file in Airbyte\'s --state format' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand state; and __fish_seen_subcommand_from set" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand state; and __fish_seen_subcommand_from set" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand state; and __fish_seen_subcommand_from set" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand state; and __fish_seen_subcommand_from set" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand state; and __fish_seen_subcommand_from set" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand state; and __fish_seen_subcommand_from set" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand state; and __fish_seen_subcommand_from set" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand state; and __fish_seen_subcommand_from reset" -l stream -d 'Only this stream (repeat for more)' -r
complete -c sluice -n "__fish_sluice_using_subcommand state; and __fish_seen_subcommand_from reset" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand state; and __fish_seen_subcommand_from reset" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand state; and __fish_seen_subcommand_from reset" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand state; and __fish_seen_subcommand_from reset" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand state; and __fish_seen_subcommand_from reset" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand state; and __fish_seen_subcommand_from reset" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand state; and __fish_seen_subcommand_from reset" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand db; and not __fish_seen_subcommand_from migrate status" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand db; and not __fish_seen_subcommand_from migrate status" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand db; and not __fish_seen_subcommand_from migrate status" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand db; and not __fish_seen_subcommand_from migrate status" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand db; and not __fish_seen_subcommand_from migrate status" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand db; and not __fish_seen_subcommand_from migrate status" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand db; and not __fish_seen_subcommand_from migrate status" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand db; and not __fish_seen_subcommand_from migrate status" -f -a "migrate" -d 'Apply the migrations this binary has and the store lacks (done on first use too)'
complete -c sluice -n "__fish_sluice_using_subcommand db; and not __fish_seen_subcommand_from migrate status" -f -a "status" -d 'Show the backend, its URL (password masked) and the applied migrations'
complete -c sluice -n "__fish_sluice_using_subcommand db; and __fish_seen_subcommand_from migrate" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand db; and __fish_seen_subcommand_from migrate" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand db; and __fish_seen_subcommand_from migrate" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand db; and __fish_seen_subcommand_from migrate" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand db; and __fish_seen_subcommand_from migrate" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand db; and __fish_seen_subcommand_from migrate" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand db; and __fish_seen_subcommand_from migrate" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand db; and __fish_seen_subcommand_from status" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand db; and __fish_seen_subcommand_from status" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand db; and __fish_seen_subcommand_from status" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand db; and __fish_seen_subcommand_from status" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand db; and __fish_seen_subcommand_from status" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand db; and __fish_seen_subcommand_from status" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand db; and __fish_seen_subcommand_from status" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand apply" -s f -l file -d 'The setup file (`-` for stdin)' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand apply" -l runtime-option -d 'An option of a runtime, as RUNTIME.NAME=VALUE (repeatable), e.g. docker.memory=1g or python.interpreter=python3.11 [env: SLUICE_*]' -r
complete -c sluice -n "__fish_sluice_using_subcommand apply" -l pull -d 'When to pull a Docker connector\'s image [env: SLUICE_DOCKER_PULL] [default: missing]' -r -f -a "always\t'Before the first use in each run'
missing\t'When the engine does not have the image'
never\t'Never; a missing image is an error'"
complete -c sluice -n "__fish_sluice_using_subcommand apply" -l memory -d 'The memory limit of each connector container, e.g. 512m or 2g [env: SLUICE_DOCKER_MEMORY] [default: 2g]' -r
complete -c sluice -n "__fish_sluice_using_subcommand apply" -l cpus -d 'The CPUs each connector container may use, e.g. 0.5 [env: SLUICE_DOCKER_CPUS] [default: 2]' -r
complete -c sluice -n "__fish_sluice_using_subcommand apply" -l network -d 'The Docker network connector containers join: host (the machine\'s network, as Airbyte runs them), bridge (the engine\'s own, isolated), or a network\'s name, to reach a database in another container [env: SLUICE_DOCKER_NETWORK] [default: host]' -r
complete -c sluice -n "__fish_sluice_using_subcommand apply" -l local-root -d 'A host directory mounted at /local in connector containers, where file destinations write [env: SLUICE_DOCKER_LOCAL_ROOT]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand apply" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand apply" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand apply" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand apply" -l dry-run -d 'Print the plan; change nothing'
complete -c sluice -n "__fish_sluice_using_subcommand apply" -l prune -d 'Also delete what the file no longer names'
complete -c sluice -n "__fish_sluice_using_subcommand apply" -l check -d 'Run connectors\' checks on what is created or updated'
complete -c sluice -n "__fish_sluice_using_subcommand apply" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand apply" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand apply" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c sluice -n "__fish_sluice_using_subcommand apply" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand export" -s f -l file -d 'Write here instead of stdout' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand export" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand export" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand export" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand export" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand export" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand export" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand export" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand system; and not __fish_seen_subcommand_from sweep" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand system; and not __fish_seen_subcommand_from sweep" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand system; and not __fish_seen_subcommand_from sweep" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand system; and not __fish_seen_subcommand_from sweep" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand system; and not __fish_seen_subcommand_from sweep" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand system; and not __fish_seen_subcommand_from sweep" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand system; and not __fish_seen_subcommand_from sweep" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand system; and not __fish_seen_subcommand_from sweep" -f -a "sweep" -d 'Remove connector containers left behind: those that exited, and those whose sluice process is gone (killed, crashed, or the machine rebooted)'
complete -c sluice -n "__fish_sluice_using_subcommand system; and __fish_seen_subcommand_from sweep" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand system; and __fish_seen_subcommand_from sweep" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand system; and __fish_seen_subcommand_from sweep" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand system; and __fish_seen_subcommand_from sweep" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand system; and __fish_seen_subcommand_from sweep" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand system; and __fish_seen_subcommand_from sweep" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand system; and __fish_seen_subcommand_from sweep" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand completions" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand completions" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand completions" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand completions" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand completions" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand completions" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand completions" -s V -l version -d 'Print version'
complete -c sluice -n "__fish_sluice_using_subcommand generate-assets" -l root -d 'The directory holding completions/ and man/' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand generate-assets" -s o -l output -d 'How to print results: tables for people, JSON for scripts' -r -f -a "table\t''
json\t''"
complete -c sluice -n "__fish_sluice_using_subcommand generate-assets" -l data-dir -d 'Where sluice keeps logs and installed connectors [env: SLUICE_DATA_DIR] [default: the XDG data dir, ~/.local/share/sluice]' -r -F
complete -c sluice -n "__fish_sluice_using_subcommand generate-assets" -l database-url -d 'The job store: postgres://USER:PASSWORD@HOST/DB for PostgreSQL [env: SLUICE_DATABASE_URL] [default: sluice.db, SQLite, in the data dir]' -r
complete -c sluice -n "__fish_sluice_using_subcommand generate-assets" -s q -l quiet -d 'Print no progress and no informational messages'
complete -c sluice -n "__fish_sluice_using_subcommand generate-assets" -s v -l verbose -d 'Show connector logs as they come (-vv for debug lines too)'
complete -c sluice -n "__fish_sluice_using_subcommand generate-assets" -s h -l help -d 'Print help'
complete -c sluice -n "__fish_sluice_using_subcommand generate-assets" -s V -l version -d 'Print version'
