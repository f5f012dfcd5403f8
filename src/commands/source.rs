//! `sluice source ...` and `sluice destination ...`: sources and
//! destinations kept in the job store, by name.

use super::args::RuntimeArgs;
use super::files::{self, ConfigArg};
use super::output::{self, CliOutput};
use super::ui::{self, done, show_one};
use super::{Ctx, ExitClass};
use crate::api::{
    Actor, ActorCreate, ActorKind, ActorRun, ActorUpdate, CheckStatus, ConnectorRequest, Message,
};
use clap::{Args, Subcommand};
use serde_json::Value;

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
    #[arg(add = super::complete::actor_names())]
    pub name: String,
    /// The connector: a built-in name, python:PACKAGE==VERSION, docker:IMAGE:TAG or exec:PATH.
    #[arg(long, value_name = "REF", add = super::complete::connector_refs())]
    pub connector: String,
    /// Its config: a JSON file, or JSON text starting with `{`.
    #[arg(long, value_name = "FILE|JSON")]
    pub config: Option<String>,
    /// Save it without running the connector's check.
    #[arg(long)]
    pub no_check: bool,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
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
    #[arg(add = super::complete::actor_names())]
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
    #[arg(add = super::complete::actor_names())]
    pub name: String,
    #[arg(long, value_name = "REF", add = super::complete::connector_refs())]
    pub connector: Option<String>,
    /// The new config: a JSON file, or JSON text starting with `{`.
    #[arg(long, value_name = "FILE|JSON")]
    pub config: Option<String>,
    /// Save it without running the connector's check.
    #[arg(long)]
    pub no_check: bool,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

#[derive(Debug, Args)]
pub struct NameArgs {
    /// Its name.
    #[arg(add = super::complete::actor_names())]
    pub name: String,
}

/// Run the connector: check its config works, or list a source's streams.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Its name.
    #[arg(add = super::complete::actor_names())]
    pub name: String,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

impl CliOutput for Actor {
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

/// A config as it will be stored: paths made absolute where the
/// connector's spec says a field is a path, with a note for each.
pub(crate) async fn stored_config(
    ctx: &Ctx,
    connector: &str,
    config: Option<Value>,
    runtime: &RuntimeArgs,
) -> anyhow::Result<Option<Value>> {
    let Some(mut config) = config else {
        return Ok(None);
    };
    let req = ConnectorRequest {
        connector: connector.to_string(),
        config: None,
        options: ctx.options(Some(runtime))?,
    };
    let spec = ui::wait(ctx, ctx.api.connector_spec(req).await).await?;
    for (field, given, kept) in files::absolute_paths(&spec.connection_specification, &mut config) {
        if !ctx.global.quiet {
            eprintln!(
                "note: `{field}` {given} is kept as {kept}, so that it does not move with the current directory."
            );
        }
    }
    Ok(Some(config))
}

async fn run(ctx: &Ctx, kind: ActorKind, cmd: Cmd) -> anyhow::Result<ExitClass> {
    let json = ctx.json();
    match cmd {
        Cmd::Create(a) => {
            let config = ConfigArg::read(a.config.as_deref(), "config")?.value;
            let config = stored_config(ctx, &a.connector, config, &a.runtime).await?;
            let req = ActorCreate {
                kind,
                name: a.name.clone(),
                connector: a.connector.clone(),
                config,
                check: !a.no_check,
                options: ctx.options(Some(&a.runtime))?,
            };
            let v = ui::wait(ctx, ctx.api.actor_create(req).await).await?;
            show_one(ctx, &v, &format!("Created {kind} `{}`.", v.name))?;
        }
        Cmd::Update(a) => {
            let config = a
                .config
                .as_deref()
                .map(|c| ConfigArg::read(Some(c), "config"))
                .transpose()?;
            let config = match config.and_then(|c| c.value) {
                Some(config) => {
                    let connector = match &a.connector {
                        Some(c) => c.clone(),
                        None => ctx.api.actor_get(kind, &a.name, false).await?.connector,
                    };
                    stored_config(ctx, &connector, Some(config), &a.runtime).await?
                }
                None => None,
            };
            let req = ActorUpdate {
                kind,
                name: a.name.clone(),
                connector: a.connector.clone(),
                config,
                check: !a.no_check,
                options: ctx.options(Some(&a.runtime))?,
            };
            let v = ui::wait(ctx, ctx.api.actor_update(req).await).await?;
            show_one(ctx, &v, &format!("Updated {kind} `{}`.", v.name))?;
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
                t.add_row(vec!["Id".to_string(), v.id.clone()]);
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
            done(ctx, &format!("Deleted {kind} `{}`.", a.name))?;
        }
        Cmd::Check(a) => {
            let req = ActorRun {
                kind,
                name: a.name.clone(),
                options: ctx.options(Some(&a.runtime))?,
            };
            let status = ui::wait(ctx, ctx.api.actor_check(req).await).await?;
            let ok = status.status == CheckStatus::Succeeded;
            if json {
                super::connector::print_line(&Message::ConnectionStatus(status))?;
            } else {
                super::connector::print_check(&status)?;
            }
            if !ok {
                return Ok(ExitClass::Failed);
            }
        }
        Cmd::Discover(a) => {
            let req = ActorRun {
                kind,
                name: a.name.clone(),
                options: ctx.options(Some(&a.runtime))?,
            };
            let catalog = ui::wait(ctx, ctx.api.source_discover(req).await).await?;
            if json {
                super::connector::print_line(&Message::Catalog(catalog))?;
            } else {
                super::connector::print_catalog(&catalog)?;
            }
        }
    }
    Ok(ExitClass::Success)
}
