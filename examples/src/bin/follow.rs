//! Run with: `cargo run -p swamp-examples --bin follow -- <NURL> <storage index>...`
//!
//! Follows storage indexes on a Swamp node and prints every change-feed event as it
//! arrives, reconnecting and resuming by itself (WebSocket, else SSE, else long-poll).

use futures::StreamExt;
use swamp_client::feed::{FeedItem, FeedOptions, FeedRequest, follow};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let nurl = args
        .next()
        .ok_or_else(|| anyhow::anyhow!("usage: follow <NURL> <storage index>..."))?
        .parse()?;
    let storage_indexes = args.map(|s| s.parse()).collect::<Result<Vec<_>, _>>()?;
    let request = FeedRequest {
        storage_indexes,
        since: None,
        snapshot: true,
    };
    let mut events = Box::pin(follow(&nurl, request, FeedOptions::default()));
    while let Some(item) = events.next().await {
        match item {
            FeedItem::Event(event) => println!("{}", serde_json::to_string(&event)?),
            FeedItem::Unsupported => anyhow::bail!("this server has no change feed"),
            other => eprintln!("{other:?}"),
        }
    }
    Ok(())
}
