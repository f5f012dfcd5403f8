//! One file per top-level command: its arguments and its `run()`. A command
//! parses, calls the `Api`, and renders the answer; no SQL and no process
//! spawning happen here. Only this module knows clap, indicatif and
//! comfy-table.

pub mod apply;
pub mod completions;
pub mod connection;
pub mod connector;
pub mod db;
pub mod job;
pub mod output;
pub mod progress;
pub mod source;
pub mod state;
pub mod sync;
pub mod system;

use crate::api::{Api, Local};
use crate::cli::{Cli, Command, GlobalArgs};
use crate::error::ExitClass;
use crate::settings::{Flags, Settings};

/// What every command gets.
pub struct Ctx {
    pub api: Box<dyn Api>,
    pub global: GlobalArgs,
}

/// Runs the parsed command line; returns how the process should exit.
pub async fn run(cli: Cli) -> anyhow::Result<ExitClass> {
    let global = cli.global.clone();
    if let Command::GenerateAssets(args) = &cli.command {
        let written = crate::cli::write_assets(&args.root)?;
        if !global.quiet {
            eprintln!(
                "Wrote {} files under {}.",
                written.len(),
                args.root.display()
            );
        }
        return Ok(ExitClass::Success);
    }
    if let Command::Completions(args) = &cli.command {
        return completions::run(args);
    }
    let settings = Settings::from_env(&Flags {
        data_dir: global.data_dir.clone(),
        database_url: global.database_url.clone(),
        runtime: cli.command.docker_flags(),
    })?;
    let ctx = Ctx {
        api: Box::new(Local::new(settings)),
        global,
    };
    match cli.command {
        Command::Sync(args) => sync::run(&ctx, args).await,
        Command::Connector(cmd) => connector::run(&ctx, cmd).await,
        Command::System(cmd) => system::run(&ctx, cmd).await,
        Command::Source(cmd) => source::run_source(&ctx, cmd).await,
        Command::Destination(cmd) => source::run_destination(&ctx, cmd).await,
        Command::Connection(cmd) => connection::run(&ctx, cmd).await,
        Command::Job(cmd) => job::run(&ctx, cmd).await,
        Command::State(cmd) => state::run(&ctx, cmd).await,
        Command::Db(cmd) => db::run(&ctx, cmd).await,
        Command::Apply(args) => apply::apply(&ctx, args).await,
        Command::Export(args) => apply::export(&ctx, args).await,
        Command::Completions(_) | Command::GenerateAssets(_) => unreachable!("handled above"),
    }
}
