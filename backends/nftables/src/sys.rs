//! The netlink socket, from `banset-netlink`, sized for nf_tables and
//! speaking in [`Batch`]es.
//!
//! A batch goes out in ONE `sendto` with the send buffer raised to fit (a
//! 1M-element batch is ~28 MB), and every message of it is acknowledged
//! before `sendto` returns, so the receive buffer is raised too: room for
//! one ACK per message of a large batch. Dumps are read with a 1 MiB buffer.

use banset_netlink::{DecodeError, NlMsg, SocketOptions};

use crate::msg::batch::{Batch, SealedBatch};

pub(crate) use banset_netlink::{SocketError as SysError, Until};

/// nf_tables' sizes: a datagram buffer big enough for any dump part (they
/// stay below 64 KiB), and a receive buffer for a burst of ACKs.
const OPTIONS: SocketOptions = SocketOptions {
    datagram_buf: 1 << 20,
    rcvbuf: Some(8 << 20),
};

/// An `AF_NETLINK` / `NETLINK_NETFILTER` socket with a sequence counter.
#[derive(Debug)]
pub(crate) struct Socket(banset_netlink::Socket);

impl Socket {
    pub(crate) fn open() -> Result<Socket, SysError> {
        banset_netlink::Socket::open(OPTIONS).map(Socket)
    }

    /// A sequence number for a dump or get.
    pub(crate) fn next_seq(&mut self) -> u32 {
        self.0.next_seq()
    }

    /// A batch numbered after everything sent so far.
    pub(crate) fn batch(&self) -> Batch {
        Batch::new(self.0.peek_seq())
    }

    /// Sends the batch in one syscall and collects one reply per message.
    /// On failure returns the first failing message (in batch order); the
    /// kernel has then applied nothing.
    pub(crate) fn commit(&mut self, batch: &SealedBatch) -> Result<(), SysError> {
        self.0
            .commit_batch(batch.bytes(), batch.begin_seq(), batch.end_seq())
    }

    /// Sends one request and hands each data message of the reply to
    /// `on_msg`, until `NLMSG_DONE` or the ACK.
    pub(crate) fn request(
        &mut self,
        req: &[u8],
        seq: u32,
        until: Until,
        on_msg: &mut dyn FnMut(&NlMsg<'_>) -> Result<(), DecodeError>,
    ) -> Result<(), SysError> {
        self.0.request(req, seq, until, on_msg, &mut |_| {})
    }

    /// A dump until `NLMSG_DONE`, taken again (a bounded number of times)
    /// while the kernel flags it interrupted by a concurrent change;
    /// `on_msg` fills a fresh `T` on each attempt.
    pub(crate) fn dump<T: Default>(
        &mut self,
        req: &[u8],
        seq: u32,
        on_msg: &mut dyn FnMut(&mut T, &NlMsg<'_>) -> Result<(), DecodeError>,
    ) -> Result<T, SysError> {
        self.0.dump(req, seq, Until::Done, on_msg, &mut |_| {})
    }
}
