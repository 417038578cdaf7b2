//! nfnetlink batches: what makes a change all-or-nothing.
//!
//! A batch is `BATCH_BEGIN`, the nf_tables messages, `BATCH_END`, all in one
//! buffer that the socket layer sends with one syscall (the kernel must see it
//! in one skb, see the notes §3.2). Every inner message asks for an ACK, so the
//! kernel answers each with an `NLMSG_ERROR` carrying 0 or `-errno` and that
//! message's sequence number. The batch remembers, per sequence number, what
//! the message did: an [`Op`], by which the caller reads the errno (`EEXIST`
//! means an overlapping interval when adding elements, a set of another
//! type when creating a set), and a description ("add to set inet banset
//! f2b_v4 (elements 1.2.3.4 .. 5.6.7.8)") that names the object and the
//! elements at fault.

use super::{
    nft_header, nlm_flags, write_message, Attrs, EncodeError, MsgHeader, NFNL_MSG_BATCH_BEGIN,
    NFNL_MSG_BATCH_END, NFNL_SUBSYS_NFTABLES, NFPROTO_UNSPEC,
};

/// What one message of a batch does. The kernel's errno means different
/// things for different operations, and this, not the description's text,
/// is what tells them apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// NEWTABLE.
    CreateTable,
    /// DELTABLE.
    DeleteTable,
    /// NEWCHAIN.
    CreateChain,
    /// NEWSET.
    CreateSet,
    /// DELSET.
    DeleteSet,
    /// NEWRULE.
    AddRule,
    /// DELRULE.
    DeleteRule,
    /// NEWSETELEM.
    AddElements,
    /// DELSETELEM or DESTROYSETELEM with elements.
    RemoveElements,
    /// DELSETELEM without elements: empties the set.
    FlushSet,
}

/// The message of a batch that a kernel error answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Failed<'a> {
    /// What it did.
    pub op: Op,
    /// Its description, for the error message.
    pub context: &'a str,
}

/// A batch being built.
#[derive(Debug)]
pub struct Batch {
    buf: Vec<u8>,
    begin_seq: u32,
    next_seq: u32,
    ops: Vec<(u32, Op, String)>,
    error: Option<EncodeError>,
}

impl Batch {
    /// Starts a batch whose `BATCH_BEGIN` carries `first_seq`; the messages
    /// take the following numbers.
    pub fn new(first_seq: u32) -> Batch {
        let mut batch = Batch {
            buf: Vec::with_capacity(4096),
            begin_seq: first_seq,
            next_seq: first_seq,
            ops: Vec::new(),
            error: None,
        };
        batch.frame(NFNL_MSG_BATCH_BEGIN);
        batch
    }

    /// Appends one nf_tables message with `NLM_F_REQUEST | NLM_F_ACK | flags`.
    /// `op` is what it does; `context` describes it for error messages.
    pub fn push(
        &mut self,
        msg: u8,
        op: Op,
        flags: u16,
        context: impl Into<String>,
        body: impl FnOnce(&mut Attrs<'_>),
    ) {
        let seq = self.take_seq();
        let header = nft_header(msg, nlm_flags::REQUEST | nlm_flags::ACK | flags, seq);
        if let Err(e) = write_message(&mut self.buf, header, body) {
            self.error.get_or_insert(e);
        }
        self.ops.push((seq, op, context.into()));
    }

    /// Number of nf_tables messages so far (framing excluded).
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether no nf_tables message was pushed: such a batch need not be sent.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Reserves room for `additional` more bytes (large element batches).
    pub fn reserve(&mut self, additional: usize) {
        self.buf.reserve(additional);
    }

    /// Appends `BATCH_END`. Fails when any message could not be encoded.
    pub fn finish(mut self) -> Result<SealedBatch, EncodeError> {
        let end_seq = self.frame(NFNL_MSG_BATCH_END);
        if let Some(e) = self.error {
            return Err(e);
        }
        Ok(SealedBatch {
            bytes: self.buf,
            begin_seq: self.begin_seq,
            end_seq,
            ops: self.ops,
        })
    }

    fn take_seq(&mut self) -> u32 {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        seq
    }

    /// BEGIN and END: family unspec, `res_id` = the nf_tables subsystem, no ACK
    /// (the kernel acknowledges the messages, not the frame).
    fn frame(&mut self, ty: u16) -> u32 {
        let seq = self.take_seq();
        let header = MsgHeader {
            ty,
            flags: nlm_flags::REQUEST,
            seq,
            family: NFPROTO_UNSPEC,
            res_id: NFNL_SUBSYS_NFTABLES,
        };
        if let Err(e) = write_message(&mut self.buf, header, |_| {}) {
            self.error.get_or_insert(e);
        }
        seq
    }
}

/// A complete batch, ready for one send.
#[derive(Debug)]
pub struct SealedBatch {
    bytes: Vec<u8>,
    begin_seq: u32,
    end_seq: u32,
    /// Ascending by sequence number (modulo wrap-around, see `failed`).
    ops: Vec<(u32, Op, String)>,
}

impl SealedBatch {
    /// The whole batch, to send in one `sendto` (one skb).
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// The sequence number of `BATCH_BEGIN`; an error with it concerns the
    /// whole batch (see [`SealedBatch::summary`]).
    pub fn begin_seq(&self) -> u32 {
        self.begin_seq
    }

    /// The sequence number of `BATCH_END`.
    pub fn end_seq(&self) -> u32 {
        self.end_seq
    }

    /// The first sequence number after this batch.
    pub fn next_seq(&self) -> u32 {
        self.end_seq.wrapping_add(1)
    }

    /// Number of messages that will be acknowledged.
    pub fn ack_count(&self) -> usize {
        self.ops.len()
    }

    /// Whether `seq` belongs to one of this batch's acknowledged messages.
    pub fn is_op(&self, seq: u32) -> bool {
        self.index_of(seq).is_some()
    }

    /// The message with sequence number `seq`, which a kernel error
    /// answers; `None` for the framing (see [`SealedBatch::summary`]).
    pub fn failed(&self, seq: u32) -> Option<Failed<'_>> {
        self.index_of(seq).map(|i| Failed {
            op: self.ops[i].1,
            context: self.ops[i].2.as_str(),
        })
    }

    /// What the message with sequence number `seq` did, for error messages.
    pub fn context(&self, seq: u32) -> Option<&str> {
        self.failed(seq).map(|f| f.context)
    }

    /// What the batch does, for errors that concern it as a whole (an
    /// error on `BATCH_BEGIN`, such as `EPERM`): its first message's context.
    pub fn summary(&self) -> String {
        match self.ops.as_slice() {
            [] => "empty nftables batch".to_string(),
            [(_, _, only)] => only.clone(),
            [(_, _, first), rest @ ..] => format!("{first}, and {} more", rest.len()),
        }
    }

    /// Messages are numbered consecutively from `begin_seq + 1`, so the index
    /// is a subtraction (wrapping, in case the counter wrapped mid-batch).
    fn index_of(&self, seq: u32) -> Option<usize> {
        let i = seq.wrapping_sub(self.begin_seq).wrapping_sub(1) as usize;
        (i < self.ops.len()).then_some(i)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{msg_type, MsgIter};
    use super::*;

    #[test]
    fn frames_messages_and_maps_sequence_numbers() {
        let mut batch = Batch::new(100);
        batch.push(
            msg_type::NEWTABLE,
            Op::CreateTable,
            nlm_flags::CREATE,
            "create table",
            |a| a.str(1, "banset"),
        );
        let sealed = batch.finish().unwrap();
        #[rustfmt::skip]
        let want: Vec<u8> = [
            // BATCH_BEGIN: len 20, type 16, flags REQUEST, seq 100, port 0,
            // nfgenmsg { family 0, version 0, res_id 10 (big-endian) }
            &20u32.to_ne_bytes()[..], &16u16.to_ne_bytes(), &1u16.to_ne_bytes(),
            &100u32.to_ne_bytes(), &0u32.to_ne_bytes(), &[0, 0, 0, 10],
            // NEWTABLE: len 32, type 0x0a00, REQUEST|ACK|CREATE, seq 101
            &32u32.to_ne_bytes(), &0x0a00u16.to_ne_bytes(), &0x405u16.to_ne_bytes(),
            &101u32.to_ne_bytes(), &0u32.to_ne_bytes(), &[1, 0, 0, 0],
            &[11, 0, 1, 0], b"banset\0\0",
            // BATCH_END: like BEGIN with type 17, seq 102
            &20u32.to_ne_bytes(), &17u16.to_ne_bytes(), &1u16.to_ne_bytes(),
            &102u32.to_ne_bytes(), &0u32.to_ne_bytes(), &[0, 0, 0, 10],
        ].concat();
        assert_eq!(sealed.bytes(), &want[..]);
        assert_eq!(MsgIter::new(sealed.bytes()).count(), 3);
        assert_eq!(sealed.context(101), Some("create table"));
        assert_eq!(sealed.failed(101).map(|f| f.op), Some(Op::CreateTable));
        assert_eq!(sealed.context(100), None);
        assert_eq!(sealed.context(102), None);
        assert_eq!(sealed.ack_count(), 1);
        assert_eq!(sealed.next_seq(), 103);
        assert_eq!(sealed.summary(), "create table");
    }

    #[test]
    fn sequence_numbers_may_wrap() {
        let mut batch = Batch::new(u32::MAX);
        batch.push(msg_type::NEWTABLE, Op::CreateTable, 0, "a", |_| {});
        batch.push(msg_type::DELTABLE, Op::DeleteTable, 0, "b", |_| {});
        let sealed = batch.finish().unwrap();
        assert_eq!(sealed.context(0), Some("a"));
        assert_eq!(sealed.context(1), Some("b"));
        assert_eq!(sealed.failed(1).map(|f| f.op), Some(Op::DeleteTable));
        assert_eq!(sealed.end_seq(), 2);
    }
}
