//! `sluice ui`: the address of the running daemon's web UI, opened in the
//! browser. The daemon serves the UI on its TCP addresses only (a browser
//! cannot reach a Unix socket); the browser itself is opened by `cli.rs`,
//! which owns processes.

use super::output;
use super::{Ctx, ExitClass};
use crate::api::ApiError;
use clap::Args;

/// Open the daemon's web UI in the browser.
///
/// Asks the running daemon (or the one --host names) where it listens on
/// TCP and opens that address; prints it when no browser can be opened,
/// or with --no-open or -o json. Sign in there with the token
/// `sluice daemon token` prints.
#[derive(Debug, Args)]
#[command(after_help = "\
Examples:
  sluice daemon start --listen 127.0.0.1:8080
  sluice ui
  sluice ui -o json                  # {\"url\": \"http://127.0.0.1:8080/\", \"opened\": false}
  SLUICE_HOST=http://sluice.internal:8080 sluice ui")]
pub struct UiArgs {
    /// Print the address; do not open a browser.
    #[arg(long)]
    pub no_open: bool,
}

#[derive(serde::Serialize)]
struct Answer {
    url: String,
    opened: bool,
}

/// The UI's address among a daemon's listen addresses: its first TCP one,
/// with a wildcard address made the loopback one a browser can reach.
pub fn ui_url(listen: &[String], host: Option<&str>) -> Option<String> {
    if let Some(h) = host.filter(|h| h.starts_with("http://") || h.starts_with("https://")) {
        return Some(format!("{}/", h.trim_end_matches('/')));
    }
    let tcp = listen.iter().find(|l| l.starts_with("http://"))?;
    let url = tcp
        .replacen("http://0.0.0.0:", "http://127.0.0.1:", 1)
        .replacen("http://[::]:", "http://[::1]:", 1);
    Some(format!("{}/", url.trim_end_matches('/')))
}

/// `open` is how this machine opens a URL in a browser.
pub async fn run(
    ctx: &Ctx,
    args: UiArgs,
    open: impl Fn(&str) -> std::io::Result<()>,
) -> anyhow::Result<ExitClass> {
    let status = ctx.api.daemon_status().await?;
    let Some(url) = ui_url(&status.listen, ctx.global.host().as_deref()) else {
        return Err(ApiError::user(
            "the daemon listens only on its Unix socket, which a browser cannot reach",
        )
        .hint("restart it on a TCP address too: `sluice daemon stop && sluice daemon start --listen 127.0.0.1:8080`")
        .into());
    };
    let opened = !args.no_open && !ctx.json() && open(&url).is_ok();
    if ctx.json() {
        output::print_json(&Answer { url, opened })?;
    } else {
        println!("{url}");
        if !ctx.global.quiet {
            let how = if opened {
                "Opened in the browser"
            } else {
                "Open it in a browser"
            };
            eprintln!("{how}; sign in with the token `sluice daemon token` prints.");
        }
    }
    Ok(ExitClass::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_is_the_first_tcp_address_reachable_from_here() {
        let listen = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(ui_url(&listen(&["unix:///d/daemon.sock"]), None), None);
        assert_eq!(
            ui_url(&listen(&["unix:///s", "http://0.0.0.0:8080"]), None).as_deref(),
            Some("http://127.0.0.1:8080/")
        );
        assert_eq!(
            ui_url(&listen(&["unix:///s", "http://[::]:80"]), None).as_deref(),
            Some("http://[::1]:80/")
        );
        assert_eq!(
            ui_url(
                &listen(&["unix:///s"]),
                Some("http://sluice.internal:8080/")
            )
            .as_deref(),
            Some("http://sluice.internal:8080/")
        );
    }
}
