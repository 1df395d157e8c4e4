//! Change feeds: the journal of committed changes, the hub that fans them out to
//! subscribers, and the three transports (WebSocket, SSE, long-poll) on
//! `GET /storage/v1/feed`.

pub mod journal;
