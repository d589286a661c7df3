//! `mock-hub`: serves a folder of fixture repos as a fake Hugging Face hub,
//! for end-to-end tests of the desktop app or the CLI (`HF_ENDPOINT=URL`).
//!
//! ```text
//! mock-hub --root DIR [--port PORT] [--cdn-port PORT] [--throttle BYTES_PER_SEC] [--relative-redirects]
//! ```
//!
//! Each `DIR/{org}/{name}/` folder is repo `org/name`; a `.gated` file in it
//! makes the repo gated (its text is the token with access). LFS files are
//! redirected to signed URLs on a second port, the CDN (`--cdn-port`, a free
//! one by default). Prints `MOCK_HUB_URL=http://127.0.0.1:PORT` once
//! listening, then serves until killed.

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use tandem_hub::mock::{load_repos, MockHub, RedirectStyle};

const USAGE: &str = "usage: mock-hub --root DIR [--port PORT] [--cdn-port PORT] \
                     [--throttle BYTES_PER_SEC] [--relative-redirects]";

struct Args {
    root: PathBuf,
    port: u16,
    cdn_port: u16,
    throttle: Option<u64>,
    relative_redirects: bool,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut root = None;
    let mut port = 0;
    let mut cdn_port = 0;
    let mut throttle = None;
    let mut relative_redirects = false;
    while let Some(arg) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match arg.as_str() {
            "--root" => root = Some(PathBuf::from(value("--root")?)),
            "--port" => {
                port = value("--port")?
                    .parse()
                    .map_err(|_| "--port needs a number".to_string())?
            }
            "--cdn-port" => {
                cdn_port = value("--cdn-port")?
                    .parse()
                    .map_err(|_| "--cdn-port needs a number".to_string())?
            }
            "--throttle" => {
                throttle = Some(
                    value("--throttle")?
                        .parse()
                        .map_err(|_| "--throttle needs bytes per second".to_string())?,
                )
            }
            "--relative-redirects" => relative_redirects = true,
            "--help" | "-h" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    Ok(Args {
        root: root.ok_or(format!("--root is required\n{USAGE}"))?,
        port,
        cdn_port,
        throttle,
        relative_redirects,
    })
}

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    let repos = match load_repos(&args.root) {
        Ok(repos) => repos,
        Err(err) => {
            eprintln!(
                "cannot read fixture repos in {}: {err}",
                args.root.display()
            );
            return ExitCode::FAILURE;
        }
    };
    let ids: Vec<String> = repos.iter().map(|repo| repo.id().to_string()).collect();
    let hub = match MockHub::start_with_cdn(
        SocketAddr::from(([127, 0, 0, 1], args.port)),
        SocketAddr::from(([127, 0, 0, 1], args.cdn_port)),
        repos,
    ) {
        Ok(hub) => hub,
        Err(err) => {
            eprintln!(
                "cannot listen on port {} (CDN {}): {err}",
                args.port, args.cdn_port
            );
            return ExitCode::FAILURE;
        }
    };
    hub.set_throttle(args.throttle);
    if args.relative_redirects {
        hub.set_redirect_style(RedirectStyle::Relative);
    }
    eprintln!(
        "mock-hub serving {} (LFS files from {})",
        ids.join(", "),
        hub.cdn_url()
    );
    // The URL line is what scripts wait for, so it goes out flushed.
    let mut stdout = std::io::stdout();
    let _ = writeln!(stdout, "MOCK_HUB_URL={}", hub.url());
    let _ = stdout.flush();
    hub.join();
    ExitCode::SUCCESS
}
