//! Watch sessions without a grid, on paused time: resuming from the backlog,
//! backpressure and the lagging reader, a reader that leaves, the linger.

use super::*;

fn session(backlog: usize) -> Arc<Session> {
    let limits = WatchLimits {
        backlog,
        ..WatchLimits::default()
    };
    Session::new(0xabc, String::new(), limits)
}

async fn push_n(session: &Arc<Session>, from: u64, to: u64) {
    for n in from..=to {
        session.push(json!({ "n": n })).await;
    }
}

async fn n_of(reader: &mut Reader) -> Value {
    let sent = reader.next().await.expect("an event");
    let value: Value = serde_json::from_str(&sent.json).expect("JSON");
    assert_eq!(value["cursor"], sent.cursor.as_str());
    value["n"].clone()
}

#[test]
fn cursors_round_trip_and_garbage_is_unknown() {
    let c = Cursor {
        session: 0xabc,
        seq: 42,
    };
    assert_eq!(c.text(), "0000000000000abc-42");
    assert_eq!(Cursor::parse(&c.text()), Some(c));
    for bad in ["", "-", "abc-1", "0000000000000abc-x", "zzzzzzzzzzzzzzzz-1"] {
        assert_eq!(Cursor::parse(bad), None, "{bad}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_resume_replays_what_the_backlog_still_holds_and_nothing_else() {
    let s = session(3);
    // Nobody attached: pushes never wait, the oldest go.
    push_n(&s, 1, 5).await;
    assert!(s.attach(1).is_none(), "event 2 is gone");
    assert!(s.attach(6).is_none(), "no event 6 yet");
    let mut reader = s.attach(2).expect("events 3 to 5 are held");
    assert_eq!(n_of(&mut reader).await, 3);
    assert_eq!(n_of(&mut reader).await, 4);
    assert_eq!(n_of(&mut reader).await, 5);
    assert!(s.attach(u64::MAX).is_none(), "a hostile cursor is unknown");
    // A second connection with a cursor takes the session over; the first, waiting
    // for an event, is woken and ends.
    let waiting = tokio::spawn(async move { reader.next().await.is_none() });
    tokio::task::yield_now().await;
    let mut other = s.attach(4).expect("held");
    let ended = tokio::time::timeout(STALL, waiting).await;
    assert!(ended.expect("woken").expect("ran"), "taken over: ends");
    assert_eq!(n_of(&mut other).await, 5);
    push_n(&s, 6, 6).await;
    assert_eq!(n_of(&mut other).await, 6);
}

#[tokio::test(start_paused = true)]
async fn a_full_backlog_waits_for_its_reader_then_drops_it_as_lagging() {
    let s = session(2);
    let mut reader = s.attach(0).expect("new");
    push_n(&s, 1, 2).await;
    // Full of events the reader has not taken: the third push waits for it...
    let pushing = tokio::spawn({
        let s = Arc::clone(&s);
        async move { push_n(&s, 3, 3).await }
    });
    tokio::time::sleep(STALL / 2).await;
    assert!(!pushing.is_finished(), "backpressure, not buffering");
    assert_eq!(n_of(&mut reader).await, 1);
    pushing
        .await
        .expect("the push went on once event 1 was taken");
    // ...but not for ever: a reader that takes nothing for STALL is dropped.
    let started = tokio::time::Instant::now();
    push_n(&s, 4, 4).await;
    assert!(started.elapsed() >= STALL, "waited for the reader first");
    push_n(&s, 5, 5).await;
    let error = reader.next().await.expect("an error event");
    let error: Value = serde_json::from_str(&error.json).expect("JSON");
    assert_eq!(error["event"], "error", "{error}");
    assert!(reader.next().await.is_none());
    // The session goes on for a resume from what it still holds.
    assert!(s.attach(3).is_some());
}

#[tokio::test(start_paused = true)]
async fn a_reader_that_leaves_releases_a_waiting_push_and_the_session_lingers() {
    let s = session(1);
    let reader = s.attach(0).expect("new");
    push_n(&s, 1, 1).await;
    let pushing = tokio::spawn({
        let s = Arc::clone(&s);
        async move { push_n(&s, 2, 2).await }
    });
    tokio::task::yield_now().await;
    let started = tokio::time::Instant::now();
    drop(reader);
    pushing.await.expect("pushed");
    assert!(started.elapsed() < STALL, "no wait for a reader that left");
    assert!(!s.stop.is_cancelled(), "lingering");
    tokio::time::sleep(s.limits.linger + Duration::from_millis(1)).await;
    tokio::task::yield_now().await;
    assert!(s.stop.is_cancelled(), "stopped after the linger");
}
