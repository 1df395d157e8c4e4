//! Run with: `cargo run -p swamp-examples --bin check -- <client node dir> <cap> [verify] [repair] [add-lease] [deep|stream]`
//!
//! Checks a file or directory (deep: the tree under it) with the client library and
//! prints the results as the JSON Tahoe's web API gives for `t=check&output=JSON`
//! (or `t=deep-check`; `stream`: one line per object, as `t=stream-deep-check`),
//! from the servers and secrets of an existing Tahoe client node
//! directory: the interop tests compare it with what Tahoe's own client says.

use swamp_client::check::CheckOptions;
use swamp_client::nodedir::load_grid;
use swamp_formats::cap::Cap;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [dir, cap, flags @ ..] = args.as_slice() else {
        anyhow::bail!("usage: check <node dir> <cap> [verify] [repair] [add-lease] [deep|stream]");
    };
    let has = |flag: &str| flags.iter().any(|f| f == flag);
    let grid = load_grid(std::path::Path::new(dir))?;
    let cap = Cap::parse_strict(cap)?;
    let options = CheckOptions {
        verify: has("verify"),
        add_lease: has("add-lease"),
    };
    if has("stream") {
        let results = grid.deep_check(&cap, options, has("repair")).await?;
        for node in &results.nodes {
            println!("{}", serde_json::to_string(&node.to_stream_json())?);
        }
        return Ok(());
    }
    let json = if has("deep") {
        grid.deep_check(&cap, options, has("repair"))
            .await?
            .to_json()
    } else if has("repair") {
        grid.check_and_repair(&cap, options).await?.to_json()
    } else {
        grid.check(&cap, options).await?.to_json()
    };
    println!("{}", serde_json::to_string_pretty(&json)?);
    Ok(())
}
