//! `sluice connector ...`: run one protocol command of a connector, install
//! or pull connectors, list them.

use super::args::{OutputFormat, RuntimeArgs};
use super::files::{self, ConfigArg};
use super::output::{self, CliOutput};
use super::ui::{self, Show};
use super::{Ctx, ExitClass};
use crate::api::{
    AirbyteCatalog, AirbyteStream, ByteStream, CheckResult, CheckStatus, ConnectorInfo,
    ConnectorRequest, ConnectorSpecification, Message, ReadRequest, WriteRequest,
};
use clap::{Args, Subcommand};
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::Value;
use std::path::PathBuf;
use tokio::io::AsyncWriteExt;

/// Run one protocol command of a connector, install or pull connectors, list them.
#[derive(Debug, Subcommand)]
pub enum ConnectorCommand {
    Spec(SpecArgs),
    Check(ConfigArgs),
    Discover(ConfigArgs),
    Read(ReadArgs),
    Write(WriteArgs),
    Install(InstallArgs),
    Pull(PullArgs),
    List(ListArgs),
}

impl ConnectorCommand {
    /// `read` and `write` stream a connector's own input and output: they
    /// run in this process, never through a daemon.
    pub fn streams_bytes(&self) -> bool {
        matches!(self, ConnectorCommand::Read(_) | ConnectorCommand::Write(_))
    }
}

const REF_HELP: &str =
    "The connector: a built-in name, python:PACKAGE==VERSION, docker:IMAGE:TAG or exec:PATH.";

/// Show the config a connector takes (its spec).
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  sluice connector spec sample
  sluice connector spec python:airbyte-source-faker==7.2.1 --output json
  sluice connector spec docker:airbyte/destination-duckdb:0.4.0")]
pub struct SpecArgs {
    #[arg(value_name = "REF", help = REF_HELP, add = super::complete::connector_refs())]
    pub connector: String,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// Check a config works (check) or list a source's streams (discover).
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  sluice connector check jsonl --config '{\"path\": \"./out\"}'
  sluice connector discover python:airbyte-source-faker==7.2.1 --config '{\"count\": 10}'
  sluice connector check docker:airbyte/source-postgres:3.6.28 --config pg.json --network dbnet

`check` exits 1 when the connector reports FAILED.")]
pub struct ConfigArgs {
    #[arg(value_name = "REF", help = REF_HELP, add = super::complete::connector_refs())]
    pub connector: String,
    /// Its config: a JSON file, or JSON text starting with `{`.
    #[arg(long, value_name = "FILE|JSON")]
    pub config: Option<String>,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// Run a source's read and print its raw protocol messages.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  sluice connector read sample --config '{\"count\": 3}'
  sluice connector read python:airbyte-source-faker==7.2.1 --config faker.json \\
      --catalog catalog.json --state state.json | jq -c 'select(.type == \"STATE\")'")]
pub struct ReadArgs {
    #[arg(value_name = "REF", help = REF_HELP, add = super::complete::connector_refs())]
    pub connector: String,
    /// Its config: a JSON file, or JSON text starting with `{`.
    #[arg(long, value_name = "FILE|JSON")]
    pub config: Option<String>,
    /// A configured catalog [default: every stream, full refresh].
    #[arg(long, value_name = "FILE")]
    pub catalog: Option<PathBuf>,
    /// A state file to resume from.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// Run a destination's write with protocol messages from stdin; print what
/// it emits.
#[derive(Debug, Args)]
#[command(after_help = "\
Example:
  sluice connector read sample --config '{\"count\": 3}' \\
    | sluice connector write jsonl --config '{\"path\": \"./out\"}' --catalog catalog.json")]
pub struct WriteArgs {
    #[arg(value_name = "REF", help = REF_HELP, add = super::complete::connector_refs())]
    pub connector: String,
    /// Its config: a JSON file, or JSON text starting with `{`.
    #[arg(long, value_name = "FILE|JSON")]
    pub config: Option<String>,
    /// The configured catalog the messages belong to.
    #[arg(long, value_name = "FILE")]
    pub catalog: PathBuf,
    #[command(flatten)]
    pub runtime: RuntimeArgs,
}

/// Install a connector now (Python connectors are otherwise installed on
/// first use; Docker images are pulled unless the engine has them).
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  sluice connector install python:airbyte-source-faker==7.2.1
  SLUICE_PYTHON=python3.11 sluice connector install python:airbyte-source-faker
  sluice connector install docker:airbyte/source-faker:6.2.1")]
pub struct InstallArgs {
    #[arg(value_name = "REF", help = REF_HELP, add = super::complete::connector_refs())]
    pub connector: String,
}

/// Pull a Docker connector's image now, even when the engine has it.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  sluice connector pull docker:airbyte/source-faker:6.2.1
  DOCKER_HOST=tcp://build-box:2375 sluice connector pull docker:airbyte/destination-duckdb:0.4.0")]
pub struct PullArgs {
    /// The connector: docker:IMAGE:TAG.
    #[arg(value_name = "REF", add = super::complete::connector_refs())]
    pub connector: String,
}

/// List built-in and installed connectors.
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  sluice connector list --output json")]
pub struct ListArgs {}

/// A connector request for `reference` with `config` (FILE|JSON).
fn request(
    ctx: &Ctx,
    reference: &str,
    config: Option<&str>,
    runtime: Option<&RuntimeArgs>,
) -> anyhow::Result<ConnectorRequest> {
    Ok(ConnectorRequest {
        connector: reference.to_string(),
        config: ConfigArg::read(config, "config")?.value,
        options: ctx.options(runtime)?,
    })
}

pub async fn run(ctx: &Ctx, cmd: ConnectorCommand) -> anyhow::Result<ExitClass> {
    let json = ctx.json();
    match cmd {
        ConnectorCommand::Spec(a) => {
            let req = request(ctx, &a.connector, None, Some(&a.runtime))?;
            let spec = ui::wait(ctx, ctx.api.connector_spec(req).await).await?;
            if json {
                print_line(&Message::Spec(spec))?;
            } else {
                print_spec(&spec)?;
            }
            Ok(ExitClass::Success)
        }
        ConnectorCommand::Check(a) => {
            let req = request(ctx, &a.connector, a.config.as_deref(), Some(&a.runtime))?;
            let status = ui::wait(ctx, ctx.api.connector_check(req).await).await?;
            let ok = status.status == CheckStatus::Succeeded;
            if json {
                print_line(&Message::ConnectionStatus(status))?;
            } else {
                print_check(&status)?;
            }
            Ok(if ok {
                ExitClass::Success
            } else {
                ExitClass::Failed
            })
        }
        ConnectorCommand::Discover(a) => {
            let req = request(ctx, &a.connector, a.config.as_deref(), Some(&a.runtime))?;
            let catalog = ui::wait(ctx, ctx.api.connector_discover(req).await).await?;
            if json {
                print_line(&Message::Catalog(catalog))?;
            } else {
                print_catalog(&catalog)?;
            }
            Ok(ExitClass::Success)
        }
        ConnectorCommand::Read(a) => {
            let req = ReadRequest {
                connector: a.connector.clone(),
                config: ConfigArg::read(a.config.as_deref(), "config")?.value,
                catalog: a.catalog.as_deref().map(files::read_catalog).transpose()?,
                state: a
                    .state
                    .as_deref()
                    .map(files::read_state)
                    .transpose()?
                    .flatten(),
                options: ctx.options(Some(&a.runtime))?,
            };
            let (run, output) = ctx.api.connector_read(req).await;
            // Ctrl-C asks the connector to stop; what it wrote is kept.
            let (copied, exit) = tokio::join!(
                copy_out(output),
                ui::follow(ctx, run, Show::Graceful, |_| Ok(()))
            );
            // Our own output closed (`| head`) ends the read quietly.
            copied?;
            exit?;
            Ok(ExitClass::Success)
        }
        ConnectorCommand::Write(a) => {
            let req = WriteRequest {
                connector: a.connector.clone(),
                config: ConfigArg::read(a.config.as_deref(), "config")?.value,
                catalog: files::read_catalog(&a.catalog)?,
                options: ctx.options(Some(&a.runtime))?,
            };
            let input: ByteStream = Box::pin(tokio_util::io::ReaderStream::new(tokio::io::stdin()));
            let (run, output) = ctx.api.connector_write(req, input).await;
            let (copied, exit) = tokio::join!(copy_out(output), ui::wait(ctx, run));
            copied?;
            exit?;
            Ok(ExitClass::Success)
        }
        ConnectorCommand::Install(a) => {
            let req = request(ctx, &a.connector, None, None)?;
            let info = ui::wait(ctx, ctx.api.connector_install(req).await).await?;
            if json {
                output::print_json(&info)?;
            } else if !ctx.global.quiet {
                eprintln!(
                    "{} is ready{}.",
                    info.reference,
                    info.location
                        .as_ref()
                        .map(|l| format!(" in {}", l.display()))
                        .unwrap_or_default()
                );
            }
            Ok(ExitClass::Success)
        }
        ConnectorCommand::Pull(a) => {
            let req = request(ctx, &a.connector, None, None)?;
            let info = ui::wait(ctx, ctx.api.connector_pull(req).await).await?;
            if json {
                output::print_json(&info)?;
            } else if !ctx.global.quiet {
                eprintln!("{} is ready ({}).", info.reference, info.description);
            }
            Ok(ExitClass::Success)
        }
        ConnectorCommand::List(_) => {
            let list = ctx.api.connector_list().await?;
            output::print_list(&list, ctx.global.output)?;
            Ok(ExitClass::Success)
        }
    }
}

/// Copies a connector's raw output to stdout as it comes.
async fn copy_out(mut output: ByteStream) -> anyhow::Result<()> {
    let mut out = tokio::io::stdout();
    while let Some(chunk) = output.next().await {
        out.write_all(&chunk?).await?;
    }
    out.flush().await?;
    Ok(())
}

/// A check's answer for people.
pub(crate) fn print_check(status: &CheckResult) -> anyhow::Result<()> {
    let ok = status.status == CheckStatus::Succeeded;
    let mut t = output::table(vec!["Status", "Message"]);
    t.add_row(vec![
        if ok { "SUCCEEDED" } else { "FAILED" }.to_string(),
        status.message.clone().unwrap_or_default(),
    ]);
    output::print_table(&t)
}

pub(crate) fn print_line(m: &Message) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(&m.to_line())?;
    out.flush()?;
    Ok(())
}

impl CliOutput for ConnectorInfo {
    fn headers() -> Vec<&'static str> {
        vec!["Connector", "Runtime", "Kind", "Version", "Description"]
    }

    fn row(&self) -> Vec<String> {
        vec![
            self.reference.clone(),
            self.runtime.clone(),
            self.kind.clone(),
            self.version.clone(),
            self.description.clone(),
        ]
    }
}

/// One config field of a spec, flattened to a dotted path.
#[derive(Serialize)]
struct Field {
    field: String,
    kind: String,
    required: bool,
    secret: bool,
    description: String,
}

impl CliOutput for Field {
    fn headers() -> Vec<&'static str> {
        vec!["Field", "Type", "Required", "Secret", "Description"]
    }

    fn row(&self) -> Vec<String> {
        vec![
            self.field.clone(),
            self.kind.clone(),
            if self.required { "yes" } else { "" }.into(),
            if self.secret { "yes" } else { "" }.into(),
            self.description.clone(),
        ]
    }
}

fn fields(schema: &Value, prefix: &str, out: &mut Vec<Field>) {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return;
    };
    for (name, p) in props {
        let path = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}.{name}")
        };
        let kind = match p.get("type") {
            Some(Value::String(t)) => t.clone(),
            Some(Value::Array(ts)) => ts
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join("|"),
            _ if p.get("oneOf").is_some() => "one of".into(),
            _ => String::new(),
        };
        let mut description = p
            .get("description")
            .or_else(|| p.get("title"))
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if let Some(d) = p.get("default") {
            description.push_str(&format!(" (default: {d})"));
        }
        out.push(Field {
            field: path.clone(),
            kind,
            required: required.contains(&name.as_str()),
            secret: p.get("airbyte_secret") == Some(&Value::Bool(true)),
            description: description.trim().to_string(),
        });
        fields(p, &path, out);
    }
}

fn print_spec(spec: &ConnectorSpecification) -> anyhow::Result<()> {
    let mut list = Vec::new();
    fields(&spec.connection_specification, "", &mut list);
    if list.is_empty() {
        println!("This connector takes no config.");
        return Ok(());
    }
    output::print_list(&list, OutputFormat::Table)?;
    if let Some(url) = &spec.documentation_url {
        println!("Documentation: {url}");
    }
    Ok(())
}

impl CliOutput for AirbyteStream {
    fn headers() -> Vec<&'static str> {
        vec!["Stream", "Sync modes", "Cursor", "Primary key", "Fields"]
    }

    fn row(&self) -> Vec<String> {
        let join = |v: &[String]| v.join(".");
        vec![
            self.descriptor().to_string(),
            self.supported_sync_modes
                .iter()
                .map(|m| m.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            join(&self.default_cursor_field),
            self.source_defined_primary_key
                .iter()
                .map(|k| join(k))
                .collect::<Vec<_>>()
                .join(", "),
            self.json_schema
                .get("properties")
                .and_then(Value::as_object)
                .map(|p| p.len().to_string())
                .unwrap_or_default(),
        ]
    }
}

pub(crate) fn print_catalog(catalog: &AirbyteCatalog) -> anyhow::Result<()> {
    output::print_list(&catalog.streams, OutputFormat::Table)
}
