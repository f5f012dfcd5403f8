//! `sluice source ...` and `sluice destination ...`: sources and
//! destinations kept in the job store, by name.

use super::output::{self, CliOutput};
use super::progress::StepSpinner;
use super::Ctx;
use crate::cli::{DockerArgs, OutputFormat};
use crate::error::ExitClass;
use crate::protocol::{ConnectionStatusKind, Message};
use crate::service::managed::ActorView;
use crate::service::{ConfigInput, Ui};
use crate::store::ActorKind;
use clap::{Args, Subcommand};
use std::sync::Arc;

/// Define sources once, by name, and use them in connections.
#[derive(Debug, Subcommand)]
#[command(after_help = "\
Examples:
  sluice source create faker --connector python:airbyte-source-faker==7.2.1 \\
      --config '{\"count\": 1000}'
  sluice source list
  sluice source get faker --output json
  sluice source update faker --config faker.json
  sluice source discover faker")]
pub enum SourceCommand {
    Create(CreateArgs),
    List(ListArgs),
    Get(GetArgs),
    Update(UpdateArgs),
    /// Delete one (refused while a connection uses it).
    Delete(NameArgs),
    /// Run the connector's check with the stored config.
    Check(RunArgs),
    /// List the source's streams (its catalog).
    Discover(RunArgs),
}

/// Define destinations once, by name, and use them in connections.
#[derive(Debug, Subcommand)]
#[command(after_help = "\
Examples:
  sluice destination create local --connector jsonl --config '{\"path\": \"./out\"}'
  sluice destination list
  sluice destination check local")]
pub enum DestinationCommand {
    Create(CreateArgs),
    List(ListArgs),
    Get(GetArgs),
    Update(UpdateArgs),
    /// Delete one (refused while a connection uses it).
    Delete(NameArgs),
    /// Run the connector's check with the stored config.
    Check(RunArgs),
}

/// Create one: its config is validated against the connector's spec and
/// checked by the connector.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// A name for it (letters, digits, `-`, `_`, `.`).
    pub name: String,
    /// The connector: a built-in name, python:PACKAGE==VERSION, docker:IMAGE:TAG or exec:PATH.
    #[arg(long, value_name = "REF")]
    pub connector: String,
    /// Its config: a JSON file, or JSON text starting with `{`.
    #[arg(long, value_name = "FILE|JSON")]
    pub config: Option<String>,
    /// Save it without running the connector's check.
    #[arg(long)]
    pub no_check: bool,
    #[command(flatten)]
    pub docker: DockerArgs,
}

/// List them (secrets masked).
#[derive(Debug, Args)]
pub struct ListArgs {
    /// Show secret fields (airbyte_secret) instead of masking them.
    #[arg(long)]
    pub show_secrets: bool,
}

/// Show one (secrets masked).
#[derive(Debug, Args)]
pub struct GetArgs {
    /// Its name.
    pub name: String,
    /// Show secret fields (airbyte_secret) instead of masking them.
    #[arg(long)]
    pub show_secrets: bool,
}

/// Change the connector or the config; fields given as `**********` keep
/// their stored secret.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// Its name.
    pub name: String,
    #[arg(long, value_name = "REF")]
    pub connector: Option<String>,
    /// The new config: a JSON file, or JSON text starting with `{`.
    #[arg(long, value_name = "FILE|JSON")]
    pub config: Option<String>,
    /// Save it without running the connector's check.
    #[arg(long)]
    pub no_check: bool,
    #[command(flatten)]
    pub docker: DockerArgs,
}

#[derive(Debug, Args)]
pub struct NameArgs {
    /// Its name.
    pub name: String,
}

/// Run the connector: check its config works, or list a source's streams.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Its name.
    pub name: String,
    #[command(flatten)]
    pub docker: DockerArgs,
}

impl SourceCommand {
    /// The Docker flags of the commands that run connectors.
    pub fn docker(&self) -> Option<&DockerArgs> {
        match self {
            SourceCommand::Create(a) => Some(&a.docker),
            SourceCommand::Update(a) => Some(&a.docker),
            SourceCommand::Check(a) | SourceCommand::Discover(a) => Some(&a.docker),
            SourceCommand::List(_) | SourceCommand::Get(_) | SourceCommand::Delete(_) => None,
        }
    }
}

impl DestinationCommand {
    /// The Docker flags of the commands that run connectors.
    pub fn docker(&self) -> Option<&DockerArgs> {
        match self {
            DestinationCommand::Create(a) => Some(&a.docker),
            DestinationCommand::Update(a) => Some(&a.docker),
            DestinationCommand::Check(a) => Some(&a.docker),
            DestinationCommand::List(_)
            | DestinationCommand::Get(_)
            | DestinationCommand::Delete(_) => None,
        }
    }
}

impl CliOutput for ActorView {
    fn headers() -> Vec<&'static str> {
        vec!["Name", "Connector", "Config", "Updated"]
    }

    fn row(&self) -> Vec<String> {
        vec![
            self.name.clone(),
            self.connector.clone(),
            self.config.to_string(),
            output::timestamp(self.updated_at),
        ]
    }
}

pub async fn run_source(ctx: &Ctx, cmd: SourceCommand) -> anyhow::Result<ExitClass> {
    let cmd = match cmd {
        SourceCommand::Create(a) => Cmd::Create(a),
        SourceCommand::List(a) => Cmd::List(a),
        SourceCommand::Get(a) => Cmd::Get(a),
        SourceCommand::Update(a) => Cmd::Update(a),
        SourceCommand::Delete(a) => Cmd::Delete(a),
        SourceCommand::Check(a) => Cmd::Check(a),
        SourceCommand::Discover(a) => Cmd::Discover(a),
    };
    run(ctx, ActorKind::Source, cmd).await
}

pub async fn run_destination(ctx: &Ctx, cmd: DestinationCommand) -> anyhow::Result<ExitClass> {
    let cmd = match cmd {
        DestinationCommand::Create(a) => Cmd::Create(a),
        DestinationCommand::List(a) => Cmd::List(a),
        DestinationCommand::Get(a) => Cmd::Get(a),
        DestinationCommand::Update(a) => Cmd::Update(a),
        DestinationCommand::Delete(a) => Cmd::Delete(a),
        DestinationCommand::Check(a) => Cmd::Check(a),
    };
    run(ctx, ActorKind::Destination, cmd).await
}

enum Cmd {
    Create(CreateArgs),
    List(ListArgs),
    Get(GetArgs),
    Update(UpdateArgs),
    Delete(NameArgs),
    Check(RunArgs),
    Discover(RunArgs),
}

/// A spinner for connector steps, and a Ui that reports to it.
pub(crate) fn spinner_ui(ctx: &Ctx) -> (Arc<StepSpinner>, Ui) {
    let spinner = Arc::new(StepSpinner::new(ctx.global.quiet));
    let ui = Ui {
        progress: spinner.clone(),
        echo: super::sync::echo(
            ctx.global.verbose,
            Arc::new(super::progress::SyncProgress::new(false)),
        ),
        ..Ui::quiet()
    };
    (spinner, ui)
}

async fn run(ctx: &Ctx, kind: ActorKind, cmd: Cmd) -> anyhow::Result<ExitClass> {
    let (spinner, ui) = spinner_ui(ctx);
    let json = ctx.global.output == OutputFormat::Json;
    let what = kind.as_str();
    let work = async {
        match cmd {
            Cmd::Create(a) => {
                let config = ConfigInput::parse(a.config.as_deref())?;
                let v = ctx
                    .api
                    .actor_create(kind, &a.name, &a.connector, &config, !a.no_check, &ui)
                    .await?;
                spinner.finish();
                show_one(ctx, &v, &format!("Created {what} `{}`.", v.name))?;
            }
            Cmd::Update(a) => {
                let config = a
                    .config
                    .as_deref()
                    .map(|c| ConfigInput::parse(Some(c)))
                    .transpose()?;
                let v = ctx
                    .api
                    .actor_update(
                        kind,
                        &a.name,
                        a.connector.as_deref(),
                        config.as_ref(),
                        !a.no_check,
                        &ui,
                    )
                    .await?;
                spinner.finish();
                show_one(ctx, &v, &format!("Updated {what} `{}`.", v.name))?;
            }
            Cmd::List(a) => {
                let all = ctx.api.actor_list(kind, a.show_secrets).await?;
                output::print_list(&all, ctx.global.output)?;
            }
            Cmd::Get(a) => {
                let v = ctx.api.actor_get(kind, &a.name, a.show_secrets).await?;
                if json {
                    output::print_json(&v)?;
                } else {
                    let mut t = output::table(vec!["Field", "Value"]);
                    t.add_row(vec!["Name".to_string(), v.name.clone()]);
                    t.add_row(vec!["Connector".to_string(), v.connector.clone()]);
                    t.add_row(vec![
                        "Config".to_string(),
                        serde_json::to_string_pretty(&v.config)?,
                    ]);
                    t.add_row(vec!["Created".to_string(), output::timestamp(v.created_at)]);
                    t.add_row(vec!["Updated".to_string(), output::timestamp(v.updated_at)]);
                    output::print_table(&t)?;
                }
            }
            Cmd::Delete(a) => {
                ctx.api.actor_delete(kind, &a.name).await?;
                done(ctx, &format!("Deleted {what} `{}`.", a.name))?;
            }
            Cmd::Check(a) => {
                let status = ctx.api.actor_check(kind, &a.name, &ui).await?;
                spinner.finish();
                let ok = status.status == ConnectionStatusKind::Succeeded;
                if json {
                    super::connector::print_line(&Message::ConnectionStatus(status))?;
                } else {
                    let mut t = output::table(vec!["Status", "Message"]);
                    t.add_row(vec![
                        if ok { "SUCCEEDED" } else { "FAILED" }.to_string(),
                        status.message.unwrap_or_default(),
                    ]);
                    output::print_table(&t)?;
                }
                if !ok {
                    return Ok(ExitClass::Failed);
                }
            }
            Cmd::Discover(a) => {
                let catalog = ctx.api.source_discover(&a.name, &ui).await?;
                spinner.finish();
                if json {
                    super::connector::print_line(&Message::Catalog(catalog))?;
                } else {
                    super::connector::print_catalog(&catalog)?;
                }
            }
        }
        Ok(ExitClass::Success)
    };
    let result = stop_on_ctrl_c(ctx, &spinner, work).await;
    spinner.finish();
    result
}

/// Runs `work`; on Ctrl-C, removes the connectors it started (containers
/// do not die with sluice) and exits 130.
pub(crate) async fn stop_on_ctrl_c<T>(
    ctx: &Ctx,
    spinner: &StepSpinner,
    work: impl std::future::Future<Output = T>,
) -> T {
    tokio::select! {
        r = work => r,
        _ = tokio::signal::ctrl_c() => {
            spinner.finish();
            ctx.api.stop_connectors().await;
            std::process::exit(130);
        }
    }
}

/// One record: JSON on stdout, or a line on stderr for people.
pub(crate) fn show_one<T: serde::Serialize>(
    ctx: &Ctx,
    value: &T,
    message: &str,
) -> anyhow::Result<()> {
    if ctx.global.output == OutputFormat::Json {
        output::print_json(value)
    } else {
        done(ctx, message)
    }
}

/// A confirmation for people; `{"ok": true}`-free JSON mode prints nothing.
pub(crate) fn done(ctx: &Ctx, message: &str) -> anyhow::Result<()> {
    if ctx.global.output == OutputFormat::Json {
        output::print_json(&serde_json::json!({"message": message}))
    } else {
        if !ctx.global.quiet {
            eprintln!("{message}");
        }
        Ok(())
    }
}
