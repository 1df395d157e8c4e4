//! Runnable examples of the Swamp client library: see `src/bin/`.
