//! The outbox: publishes the broker has not confirmed, kept to be published
//! again on the next channel after a loss.
//!
//! A publish enters the outbox when its channel or connection fails before
//! the broker's confirm, or when it is made while the channel is down. The
//! publisher task publishes the outbox again, in the order the messages
//! were first sent and with their message ids, once a new channel is open
//! and every publish of the old one has been settled. So a send that
//! returned Ok (its message in the publish window) is delivered at least
//! once, whatever the broker did meanwhile; receivers can drop the
//! duplicates of a republish by message id.
//!
//! The outbox is bounded twice: by the publish window (every message in it
//! holds its place there, so a sender waits, and then times out, while the
//! broker is away) and by [`OUTBOX_BYTES`] of bodies for messages sent
//! while the channel is down. A message whose channel failed under it
//! enters whatever its size: it was sent already.

use std::time::Instant;

use crate::bus::Outgoing;

/// Bodies (bytes) of messages sent while the channel is down that one
/// agent's outbox takes; past it such a send fails at once with
/// [`Error::ConnectionLost`](crate::Error::ConnectionLost).
pub(crate) const OUTBOX_BYTES: usize = 16 << 20;

/// How often one message may be published again before it fails: a
/// message that kills its channel every time (which a broker refusing it
/// would do) fails loudly rather than going round for ever.
pub(super) const MAX_TRIES: u8 = 8;

/// A message on its way, before or after a publish.
pub(super) struct Job<A> {
    /// Its place in the order of sending.
    pub(super) seq: u64,
    /// How often it was published already.
    pub(super) tries: u8,
    /// When it was first published again from the outbox (on a new
    /// channel, after a loss).
    pub(super) retried: Option<Instant>,
    /// The message, to be published again after a loss.
    pub(super) message: Outgoing,
    /// Who waits for its outcome.
    pub(super) reply: A,
}

/// Unconfirmed messages waiting for a channel.
pub(super) struct Outbox<A> {
    waiting: Vec<Job<A>>,
    bytes: usize,
    limit: usize,
    /// When the messages of a lost channel started waiting here.
    since: Option<Instant>,
}

impl<A> Outbox<A> {
    pub(super) fn new(limit: usize) -> Self {
        Outbox {
            waiting: Vec::new(),
            bytes: 0,
            limit,
            since: None,
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    pub(super) fn len(&self) -> usize {
        self.waiting.len()
    }

    /// How long it has held messages.
    pub(super) fn waiting_since(&self) -> Option<Instant> {
        self.since
    }

    /// Takes a message sent while the channel is down, if there is room
    /// for its body; gives it back if not.
    pub(super) fn offer(&mut self, job: Job<A>) -> Result<(), Job<A>> {
        let len = job.message.body.len();
        if !self.waiting.is_empty() && self.bytes + len > self.limit {
            return Err(job);
        }
        self.keep(job);
        Ok(())
    }

    /// Keeps a message whose publish failed under it.
    pub(super) fn keep(&mut self, job: Job<A>) {
        self.bytes += job.message.body.len();
        self.since.get_or_insert_with(Instant::now);
        self.waiting.push(job);
    }

    /// Takes every message, in the order they were first sent.
    pub(super) fn take(&mut self) -> Vec<Job<A>> {
        self.bytes = 0;
        self.since = None;
        let mut waiting = std::mem::take(&mut self.waiting);
        waiting.sort_unstable_by_key(|job| job.seq);
        waiting
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use bytes::Bytes;

    use super::*;
    use crate::bus::Route;
    use crate::message::{Properties, SmolStr};

    fn job(seq: u64, len: usize) -> Job<()> {
        Job {
            seq,
            tries: 0,
            retried: None,
            message: Outgoing {
                route: Route::Direct("x".into()),
                properties: Arc::new(Properties::new(SmolStr::new("T"), SmolStr::new("me"))),
                body: Bytes::from(vec![0; len]),
            },
            reply: (),
        }
    }

    #[test]
    fn messages_come_out_in_the_order_they_were_sent() {
        let mut outbox = Outbox::new(100);
        outbox.keep(job(3, 10));
        outbox.keep(job(1, 10));
        assert!(outbox.offer(job(4, 10)).is_ok());
        outbox.keep(job(2, 10));
        assert_eq!(outbox.len(), 4);
        let seqs: Vec<u64> = outbox.take().iter().map(|j| j.seq).collect();
        assert_eq!(seqs, [1, 2, 3, 4]);
        assert!(outbox.is_empty() && outbox.waiting_since().is_none());
    }

    #[test]
    fn new_messages_are_bounded_by_bytes_but_failed_ones_are_kept() {
        let mut outbox = Outbox::new(100);
        assert!(outbox.offer(job(1, 60)).is_ok());
        assert!(outbox.offer(job(2, 60)).is_err(), "past the limit");
        outbox.keep(job(0, 500));
        assert_eq!(outbox.len(), 2);
        outbox.take();
        // An empty outbox takes one message of any size.
        assert!(outbox.offer(job(3, 500)).is_ok());
    }
}
