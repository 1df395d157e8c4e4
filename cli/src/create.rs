//! `tahoe create-client DIR`: a client node directory that Swamp's CLI and a real
//! Tahoe node both use; `--nurl` and `--announcement` add storage servers (also to an
//! existing directory).

use std::path::PathBuf;

use swamp_client::create::{
    NewClient, add_servers, announcement_from_nurl, create_client, parse_announcements,
};
use swamp_proto::Nurl;

use crate::fail::Failure;

/// `create-client` flags.
#[derive(clap::Args)]
pub struct CreateArgs {
    /// Where to create it (default: the -d directory, else ~/.tahoe).
    pub dir: Option<PathBuf>,
    /// The node's nickname.
    #[arg(long, default_value = "")]
    pub nickname: String,
    /// Shares needed to read a file (k).
    #[arg(long = "shares-needed", default_value_t = 3)]
    pub needed: u16,
    /// Servers that must hold shares for an upload to succeed.
    #[arg(long = "shares-happy", default_value_t = 7)]
    pub happy: u16,
    /// Shares made of each file (N).
    #[arg(long = "shares-total", default_value_t = 10)]
    pub total: u16,
    /// `[node] web.port`: where `tahoe run` (this one or real Tahoe's) serves the web API.
    #[arg(long = "webport", default_value = "tcp:3456:interface=127.0.0.1")]
    pub web_port: String,
    /// Add a storage server by its NURL (repeatable).
    #[arg(long = "nurl")]
    pub nurls: Vec<String>,
    /// Add storage servers from an announcement stanza file, `-` for stdin (repeatable).
    #[arg(long = "announcement")]
    pub announcements: Vec<PathBuf>,
    /// Only add servers to an existing client directory.
    #[arg(long = "add-only")]
    pub add_only: bool,
}

/// Runs `create-client`.
pub async fn run(args: CreateArgs, global_dir: Option<PathBuf>) -> Result<(), Failure> {
    let dir = args.dir.clone().or(global_dir).unwrap_or_else(|| {
        std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default()
            .join(".tahoe")
    });
    if !(1 <= args.needed
        && args.needed <= args.total
        && args.total <= 256
        && args.happy <= args.total)
    {
        return Err(Failure::new(format!(
            "shares: need 1 <= needed ({}) <= total ({}) <= 256 and happy ({}) <= total",
            args.needed, args.total, args.happy
        )));
    }
    let mut servers = std::collections::BTreeMap::new();
    for nurl_text in &args.nurls {
        let nurl: Nurl = nurl_text
            .parse()
            .map_err(|e| Failure::new(format!("--nurl {nurl_text}: {e}")))?;
        let (id, entry) = announcement_from_nurl(&nurl).await.map_err(|e| {
            Failure::new(format!(
                "--nurl {}:{}: {}",
                nurl.host,
                nurl.port,
                crate::chain(&e)
            ))
        })?;
        servers.insert(id, entry);
    }
    for file in &args.announcements {
        let text = if file.as_os_str() == "-" {
            let mut buf = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut buf)
                .map_err(|e| Failure::new(format!("cannot read stdin: {e}")))?;
            buf
        } else {
            std::fs::read_to_string(file)
                .map_err(|e| Failure::new(format!("cannot read {}: {e}", file.display())))?
        };
        let parsed = parse_announcements(&text)
            .map_err(|e| Failure::new(format!("{}: {e}", file.display())))?;
        servers.extend(parsed);
    }
    if !args.add_only {
        let settings = NewClient {
            nickname: args.nickname.clone(),
            needed: args.needed,
            happy: args.happy,
            total: args.total,
            web_port: args.web_port.clone(),
        };
        create_client(&dir, &settings).map_err(|e| Failure::new(crate::chain(&e)))?;
        println!("Node created in {}", dir.display());
    }
    let added = servers.len();
    if added > 0 {
        add_servers(&dir, servers).map_err(|e| Failure::new(crate::chain(&e)))?;
        println!(
            "{added} storage server(s) in {}",
            dir.join("private/servers.yaml").display()
        );
    }
    Ok(())
}
