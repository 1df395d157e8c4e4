//! Run with: `cargo run -p swamp-examples --bin mirror -- <NODEDIR> <DIRCAP> <FOLDER>`
//!
//! Keeps FOLDER equal to the Tahoe directory DIRCAP (a read-only cap is enough), on the
//! grid that the client node directory NODEDIR describes (`private/servers.yaml`), as
//! changes are pushed; prints one JSON line per thing it does. Stop it at any time: the
//! next run resumes from `FOLDER/.swamp-mirror.json`. See `swamp_examples::mirror`.

use swamp_examples::mirror::{MirrorOptions, run};
use swamp_formats::cap::Cap;
use tokio::sync::mpsc;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [nodedir, dircap, folder] = args.as_slice() else {
        anyhow::bail!("usage: mirror <NODEDIR> <DIRCAP> <FOLDER>");
    };
    let grid = swamp_client::nodedir::load_grid(nodedir.as_ref())?;
    let root = Cap::parse_lenient(dircap)?;
    let (tx, mut rx) = mpsc::channel(64);
    let print = tokio::spawn(async move {
        while let Some(event) = rx.recv().await {
            println!("{}", serde_json::to_string(&event).unwrap_or_default());
        }
    });
    let result = run(&grid, &root, folder.as_ref(), MirrorOptions::default(), tx).await;
    let _ = print.await;
    result
}
