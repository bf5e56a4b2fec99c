//! The model: my replica of the drawing and the trust around it. Ops are made, signed and
//! integrated here; what that changed is handed back as [`Changes`] for the renderer. Nothing
//! here paints.

use shared::PeerId;
use shared::document::{Changes, Document, Op, OpKind, Replica, VersionVector};
use shared::signing::{
    Admission, Certificate, Keypair, Ledger, Proof, PublicKey, SignedBatch, local_author,
};
use shared::sync::{ChannelMessage, SYNC_BATCH_BYTES};
use std::cell::Cell;

/// The replica, the ledger that admits ops into it, and my signing key.
pub(super) struct Model {
    replica: Replica,
    /// Whose key signs for whom, every author's chain, and the proofs to hand on.
    ledger: Ledger,
    /// My signing key: made when the page loads, never stored.
    key: Keypair,
    /// The visible element count, while known: counting walks every element, and the app shows
    /// it after each change, so it is kept until a change could alter it (a stroke growing cannot).
    visible: Cell<Option<usize>>,
    /// The document changed since [`Model::take_changed`] last said so.
    changed: bool,
}

impl Model {
    /// An empty replica; my ops are filed under the key's own id ([`local_author`]) until
    /// [`Model::rename`].
    pub(super) fn new(key: Keypair) -> Model {
        Model {
            replica: Replica::new(local_author(&key.public())),
            ledger: Ledger::new(),
            key,
            visible: Cell::new(None),
            changed: true,
        }
    }

    pub(super) fn replica(&self) -> &Replica {
        &self.replica
    }

    pub(super) fn doc(&self) -> &Document {
        &self.replica.doc
    }

    pub(super) fn me(&self) -> &PeerId {
        &self.replica.me
    }

    /// Files my next ops under `me`: what the old id made is signed as it stands (so it can be
    /// handed on for ever), and the undo history starts afresh, since it names the old id's ops.
    pub(super) fn rename(&mut self, me: PeerId) {
        self.ledger.seal(&self.key, &self.replica.me);
        self.replica.me = me;
        self.replica.history = Default::default();
        self.changed = true;
    }

    pub(super) fn public_key(&self) -> PublicKey {
        self.key.public()
    }

    pub(super) fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    pub(super) fn trust_server(&mut self, key: PublicKey) {
        self.ledger.trust_server(key);
    }

    pub(super) fn certify(&mut self, cert: Certificate) {
        self.ledger.remember(cert);
    }

    pub(super) fn seal(&mut self, ops: &[Op], now_ms: f64) -> Option<Proof> {
        let me = self.replica.me.clone();
        self.ledger.seal_live(&self.key, &me, ops, now_ms)
    }

    /// Makes an op of mine, chained and signed.
    pub(super) fn perform(&mut self, kind: OpKind) -> (Op, Changes) {
        // An erase or a clear carries the marks that show it had the ops it names.
        let kind = self.ledger.mark(&self.replica.doc, &self.replica.me, kind);
        let (op, changes) = self.replica.perform(kind);
        self.ledger.record_mine(&op, &self.key);
        self.note(&changes);
        (op, changes)
    }

    pub(super) fn undo(&mut self) -> Option<(Op, Changes)> {
        let (op, changes) = self.replica.undo()?;
        self.ledger.record_mine(&op, &self.key);
        self.note(&changes);
        Some((op, changes))
    }

    pub(super) fn redo(&mut self) -> Option<(Op, Changes)> {
        let (op, changes) = self.replica.redo()?;
        self.ledger.record_mine(&op, &self.key);
        self.note(&changes);
        Some((op, changes))
    }

    /// Takes note of what integrating ops changed: the document changed, the visible count
    /// may have.
    fn note(&mut self, changes: &Changes) {
        if changes.integrated > 0 {
            self.changed = true;
        }
        if changes.repaint || changes.grown.iter().any(|(_, from)| *from == 0) {
            self.visible.set(None);
        }
    }

    pub(super) fn changed(&self) -> bool {
        self.changed
    }

    pub(super) fn take_changed(&mut self) -> bool {
        std::mem::take(&mut self.changed)
    }

    pub(super) fn visible_count(&self) -> usize {
        if let Some(count) = self.visible.get() {
            return count;
        }
        let count = self.replica.doc.visible().count();
        self.visible.set(Some(count));
        count
    }

    pub(super) fn hello(&self) -> ChannelMessage {
        ChannelMessage::Hello {
            have: self.replica.doc.version_vector(),
            cert: self.ledger.certificate(&self.replica.me).cloned(),
            packed: true,
        }
    }

    pub(super) fn sync_reply(
        &mut self,
        have: &VersionVector,
        elsewhere: impl Fn(&PeerId) -> bool,
    ) -> Vec<SignedBatch> {
        let me = self.replica.me.clone();
        let mut batches =
            self.ledger
                .sync_batches(&self.replica.doc, have, &me, &self.key, SYNC_BATCH_BYTES);
        for batch in &mut batches {
            batch
                .ops
                .retain(|op| op.author == me || !elsewhere(&op.author));
            batch
                .proofs
                .retain(|p| p.author == me || !elsewhere(&p.author));
            batch.certs.retain(|c| c.peer == me || !elsewhere(&c.peer));
        }
        batches.retain(|b| !b.ops.is_empty());
        batches
    }

    /// Integrates stored ops (see [`super::Board::load`]).
    pub(super) fn load(
        &mut self,
        ops: Vec<Op>,
        proofs: Vec<Proof>,
        certs: Vec<Certificate>,
    ) -> Changes {
        let mut ops: Vec<Op> = ops
            .into_iter()
            .filter(|op| match op.validate() {
                Ok(()) => true,
                Err(err) => {
                    crate::dom::warn(&format!("stored op skipped: {err}"));
                    false
                }
            })
            .collect();
        // Records hold ops in no particular order. Chains run in each author's seq order, and
        // the document takes clocks that climb (`MAX_CLOCK_STEP`): Lamport order gives both,
        // since an author's Lamport times rise with its seqs.
        ops.sort_by(|a, b| (a.lamport, a.seq, &a.author).cmp(&(b.lamport, b.seq, &b.author)));
        for cert in certs {
            self.ledger.remember(cert);
        }
        let changes = self.ledger.load(&mut self.replica.doc, ops, proofs);
        self.note(&changes);
        changes
    }

    /// Learns a peer's certificate (from its hello).
    pub(super) fn learn(&mut self, cert: &Certificate) -> Result<(), shared::signing::TrustError> {
        self.ledger.learn(cert)
    }

    /// Hands a peer's ops to the ledger, which checks signatures and chains; the document
    /// bounds clocks and the sender's budgets and holds back ops whose dependencies are not
    /// here yet.
    pub(super) fn admit(
        &mut self,
        from: &PeerId,
        ops: Vec<Op>,
        proofs: Vec<Proof>,
        certs: Vec<Certificate>,
    ) -> Admission {
        let admission = self
            .ledger
            .admit(&mut self.replica.doc, from, ops, proofs, certs);
        self.note(&admission.changes);
        admission
    }

    /// Forgets what senders no longer in the room had waiting.
    pub(super) fn retain_senders(&mut self, in_room: impl Fn(&PeerId) -> bool) {
        self.ledger.retain_senders(&in_room);
    }
}
